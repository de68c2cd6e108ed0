"""Hostile vendor files through the whole pipeline: nothing bad gets in, nothing crashes.

Each example lands 1-3 small vendor files (a few bars each) in the raw zone, spoiled by a few
mutations: of their bytes (a truncation, a flipped byte, junk, noise) and of their values
(NaN, infinities, 1e308, negatives, text, empty strings, repeated dates, another symbol in the
metadata, dates after the ingest date or that do not exist), then runs the stage functions of
``fdp.pipeline`` on the default embedded DuckDB warehouse. Each example must end in one of:

- a ``DataError`` naming one of the landed files (the CLI's exit 2),
- a failed quality gate (``QualityGateError``, exit 1), or
- a run that completes, every row it kept out listed with its rule and reason;

never any other exception. Afterwards the lake and the warehouse hold no non-finite value, no
bar after its ingest date and no value outside the suite's ranges, and a clean batch the next
day still runs end to end (a bad value once stored would break every later load).
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from fdp import lake, pipeline
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import DataError
from fdp.quality.runner import QualityGateError
from fdp.quality.suite import read_rules
from fdp.records import EnrichedStockRecord, Frame, check_finite
from fdp.rejected import read_rejected
from fdp.sources.landing import RawZone
from fdp.sources.vendor_json import ADJUSTED_FIELDS
from fdp.warehouse.connect import connect
from fdp.warehouse.loader import load_rows

SOURCE = "alpha_vantage"
SYMBOLS = ("AAA", "BBB", "CCC")
DAYS = sessions(dt.date(2024, 3, 4), dt.date(2024, 3, 8))
INGEST = DAYS[-1]
NEXT = dt.date(2024, 3, 11)
"""The next session: a clean batch must still run after any hostile one."""
FIELDS = list(ADJUSTED_FIELDS)
VALUES = ["NaN", "Infinity", "-Infinity", "1e308", "1e309", "-1", "abc", "", "nan", "1e-320"]
DATES = ["2999-01-01", "2024-03-09", "2024-02-30", "2024-13-01", "1024-01-02", "2024-3-5", ""]
OTHER_SYMBOLS = ["BBB", "ZZZ", "aaa", ""]

Bars = list[tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Mutation:
    """One spoiling edit of file ``file``: ``kind`` is value, date, repeat, symbol (of the
    document) or truncate, flip, junk, noise (of its bytes)."""

    kind: str
    file: int = 0
    bar: int = 0
    other: int = 0
    field: str = ""
    text: str = ""
    where: float = 0.0
    junk: bytes = b""


def _bars(k: int, days: list[dt.date]) -> Bars:
    """Plausible bars, newest first, as the vendor writes them."""
    out: Bars = []
    for i, day in enumerate(days):
        base = 100.0 + 10 * k + i
        out.append(
            (
                day.isoformat(),
                {
                    "1. open": f"{base:.4f}",
                    "2. high": f"{base + 2:.4f}",
                    "3. low": f"{base - 1:.4f}",
                    "4. close": f"{base + 1:.4f}",
                    "5. adjusted close": f"{base + 1:.4f}",
                    "6. volume": str(1000 + i),
                    "7. dividend amount": "0.0000",
                    "8. split coefficient": "1.0",
                },
            )
        )
    return out[::-1]


def _encode(symbol: str, bars: Bars) -> bytes:
    """The vendor's layout; a repeated date (which a dict cannot hold) is written through a
    placeholder key."""
    series, repeats = {}, {}
    for day, bar in bars:
        key = day if day not in series else f"@repeat{len(repeats)}@"
        repeats[key] = day
        series[key] = bar
    doc = {"Meta Data": {"1. Information": "Daily", "2. Symbol": symbol}}
    payload = orjson.dumps(doc | {"Time Series (Daily)": series}, option=orjson.OPT_INDENT_2)
    for key, day in repeats.items():
        payload = payload.replace(orjson.dumps(key), orjson.dumps(day), 1)
    return payload


def _payloads(
    files: int, mutations: list[Mutation], days: list[dt.date] = DAYS
) -> dict[str, bytes]:
    """Each file's bytes: the document edits first, then the byte edits."""
    symbols = {s: s for s in SYMBOLS[:files]}
    bars = {s: _bars(k, days) for k, s in enumerate(symbols)}
    for m in mutations:
        name = SYMBOLS[m.file % files]
        rows = bars[name]
        day, bar = rows[m.bar % len(rows)]
        if m.kind == "value":
            rows[m.bar % len(rows)] = (day, bar | {m.field: m.text})
        elif m.kind == "date":
            rows[m.bar % len(rows)] = (m.text, bar)
        elif m.kind == "repeat":
            rows[m.other % len(rows)] = (day, rows[m.other % len(rows)][1])
        elif m.kind == "symbol":
            symbols[name] = m.text
    payloads = {name: _encode(symbols[name], bars[name]) for name in symbols}
    for m in mutations:
        name = SYMBOLS[m.file % files]
        data = bytearray(payloads[name])
        at = min(int(m.where * len(data)), len(data) - 1)
        if m.kind == "truncate":
            del data[at:]
        elif m.kind == "flip":
            data[at] ^= m.junk[0] if m.junk and m.junk[0] else 0x01
        elif m.kind == "junk":
            data[at:at] = m.junk
        elif m.kind == "noise":
            data = bytearray(m.junk)
        payloads[name] = bytes(data)
    return payloads


def _document_edits() -> st.SearchStrategy[Mutation]:
    bar, file = st.integers(0, len(DAYS) - 1), st.integers(0, 2)
    return st.one_of(
        st.builds(
            Mutation,
            kind=st.just("value"),
            file=file,
            bar=bar,
            field=st.sampled_from(FIELDS),
            text=st.sampled_from(VALUES),
        ),
        st.builds(Mutation, kind=st.just("date"), file=file, bar=bar, text=st.sampled_from(DATES)),
        st.builds(Mutation, kind=st.just("repeat"), file=file, bar=bar, other=bar),
        st.builds(Mutation, kind=st.just("symbol"), file=file, text=st.sampled_from(OTHER_SYMBOLS)),
    )


def _byte_edits() -> st.SearchStrategy[Mutation]:
    where, file = st.floats(0, 1, exclude_max=True), st.integers(0, 2)
    return st.one_of(
        st.builds(Mutation, kind=st.just("truncate"), file=file, where=where),
        st.builds(
            Mutation,
            kind=st.just("flip"),
            file=file,
            where=where,
            junk=st.binary(min_size=1, max_size=1),
        ),
        st.builds(
            Mutation,
            kind=st.just("junk"),
            file=file,
            where=where,
            junk=st.binary(min_size=1, max_size=8),
        ),
        st.builds(Mutation, kind=st.just("noise"), file=file, junk=st.binary(max_size=64)),
    )


@st.composite
def hostile_batches(draw: st.DrawFn) -> tuple[int, list[Mutation]]:
    files = draw(st.integers(1, 3))
    edits = draw(st.lists(_document_edits(), min_size=0, max_size=3))
    edits += draw(st.lists(_byte_edits(), max_size=1))
    return files, edits if edits else [draw(_document_edits())]


# --- the invariants -----------------------------------------------------------------------------

_FLOATS = [c.name for c in EnrichedStockRecord.columns() if pa.types.is_floating(c.arrow_type)]


def _ranges() -> list[tuple[str, pl.Expr]]:
    """(column, rows outside the suite's range for it) for each range rule of the suite."""
    _, rules, _ = read_rules()
    out = []
    for rule in rules:
        if rule.type != "expect_column_values_to_be_between" or "column" not in rule.kwargs:
            continue
        kw, col = rule.kwargs, pl.col(rule.kwargs["column"])
        low = col <= kw["min_value"] if kw.get("strict_min") else col < kw["min_value"]
        high = col >= kw["max_value"] if kw.get("strict_max") else col > kw["max_value"]
        out.append((rule.name, low | high))
    return out


def _check_stored(rows: pl.DataFrame, where: str) -> None:
    """No non-finite value, no bar after its ingest date, nothing outside the suite's ranges."""
    floats = [c for c in rows.columns if rows.schema[c] == pl.Float64]
    assert set(_FLOATS) <= set(floats), where
    bad = rows.filter(pl.any_horizontal(~pl.col(c).is_finite() for c in floats))
    assert bad.is_empty(), f"{where}: non-finite values\n{bad}"
    future = rows.filter(pl.col("trade_date") > pl.col("ingest_date"))
    assert future.is_empty(), f"{where}: bars after their ingest date\n{future}"
    for rule, outside in _ranges():
        found = rows.filter(outside)
        assert found.is_empty(), f"{where}: {rule} broken\n{found}"


def _warehouse_rows(settings: Settings) -> pl.DataFrame:
    path = Path(settings.warehouse_url.removeprefix("duckdb:///"))
    if not path.exists():
        return pl.DataFrame(schema=EnrichedStockRecord.polars_schema())
    with duckdb.connect(str(path), read_only=True) as con:
        return pl.DataFrame(con.sql("SELECT * FROM fact_stock_prices").arrow())


def _land(settings: Settings, day: dt.date, payloads: dict[str, bytes]) -> list[str]:
    zone = RawZone(settings)
    return [zone.land(SOURCE, day, s, p, rows=0).path for s, p in payloads.items()]


def _run(settings: Settings, day: dt.date) -> None:
    pipeline.validate(settings, day, source=SOURCE)
    pipeline.transform(settings, day, source=SOURCE)
    pipeline.load(settings, day)
    pipeline.reconcile(settings, day)


def _outcome(settings: Settings, files: list[str]) -> str:
    """Run the hostile batch; return how it ended (any other exception fails the test)."""
    stopped: DataError | QualityGateError | None = None
    try:
        _run(settings, INGEST)
    except (DataError, QualityGateError) as exc:
        stopped = exc
    if isinstance(stopped, DataError):
        where = f"a DataError must name a landed file: {stopped!r} {stopped.details()}"
        assert stopped.file in files, where
        assert str(stopped).startswith(stopped.file)
        return "data error"
    if isinstance(stopped, QualityGateError):
        assert stopped.report.failures
        return "gate failed"
    for stage in ("quality", "cleanse"):
        rejected = read_rejected(settings, INGEST, stage, source=SOURCE)
        assert rejected["rule"].is_not_null().all()
        assert (rejected["reason"].str.len_chars() > 0).all()
    return "ran"


def _check_everything(files: int, mutations: list[Mutation], days: list[dt.date] = DAYS) -> str:
    symbols = SYMBOLS[:files]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=str(Path(tmp, "data")))
        landed = _land(settings, INGEST, _payloads(files, mutations, days))
        outcome = _outcome(settings, landed)
        _check_stored(lake.scan(settings).collect(), "lake")
        _check_stored(_warehouse_rows(settings), "warehouse")
        if outcome == "ran":  # what the batch stored must not break the next day's run
            clean = {s: _encode(s, _bars(k, [*days, NEXT])) for k, s in enumerate(symbols)}
            _land(settings, NEXT, clean)
            _run(settings, NEXT)
            stored = _warehouse_rows(settings)
            _check_stored(stored, "warehouse after a clean batch")
            assert set(stored.filter(pl.col("trade_date") == NEXT)["symbol"]) == set(symbols)
    return outcome


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_batches())
def test_hostile_files_end_in_a_data_error_a_failed_gate_or_rejected_rows(
    case: tuple[int, list[Mutation]],
) -> None:
    files, mutations = case
    note(f"{files} file(s), {mutations}")
    event(_check_everything(files, mutations))  # how examples end: --hypothesis-show-statistics


GATE, DATA, RAN = "gate failed", "data error", "ran"
# Every kind of edit at least once whatever hypothesis draws, with the ending each must have
# (None: a byte edit whose ending depends on where it lands; any allowed ending will do).
EXAMPLES = {
    "NaN open": (1, [Mutation("value", bar=1, field="1. open", text="NaN")], GATE),
    "NaN adjusted close": (
        1,
        [Mutation("value", bar=2, field="5. adjusted close", text="NaN")],
        GATE,
    ),
    "infinite dividend": (
        2,
        [Mutation("value", file=1, field="7. dividend amount", text="Infinity")],
        GATE,
    ),
    "1e308 high": (1, [Mutation("value", bar=4, field="2. high", text="1e308")], GATE),
    "overflowing close": (1, [Mutation("value", field="4. close", text="1e309")], GATE),
    "negative volume": (1, [Mutation("value", field="6. volume", text="-1")], GATE),
    "text low": (1, [Mutation("value", field="3. low", text="abc")], DATA),
    "empty close": (1, [Mutation("value", field="4. close", text="")], DATA),
    "tiny dividend": (
        1,
        [Mutation("value", bar=3, field="7. dividend amount", text="1e-320")],
        RAN,
    ),
    "tiny split": (
        1,
        [Mutation("value", bar=3, field="8. split coefficient", text="1e-320")],
        GATE,
    ),
    "repeated date": (2, [Mutation("repeat", bar=1, other=2)], DATA),
    "another symbol": (2, [Mutation("symbol", text="BBB")], DATA),
    "lower-case symbol": (1, [Mutation("symbol", text="aaa")], GATE),
    "future date": (1, [Mutation("date", bar=0, text="2999-01-01")], GATE),
    "next day": (1, [Mutation("date", bar=0, text="2024-03-09")], GATE),
    "impossible date": (1, [Mutation("date", bar=0, text="2024-02-30")], GATE),
    "ancient date": (1, [Mutation("date", bar=4, text="1024-01-02")], GATE),
    "truncated": (3, [Mutation("truncate", file=2, where=0.5)], DATA),
    "flipped byte": (1, [Mutation("flip", where=0.3, junk=b"\x20")], None),
    "junk": (1, [Mutation("junk", where=0.9, junk=b"\x00}")], DATA),
    "noise": (1, [Mutation("noise", junk=b"\xff\xfe[]")], DATA),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_each_kind_of_hostile_input_ends_as_it_should(name: str) -> None:
    files, mutations, expected = EXAMPLES[name]
    outcome = _check_everything(files, mutations)
    assert expected is None or outcome == expected


def test_bad_rows_within_tolerance_are_rejected_with_their_rule() -> None:
    """130 bars: one NaN and one bar from 2999 stay within the gate's 1 %: the run goes on
    without them, each rejected with its rule (and the checks above still hold)."""
    days = sessions(dt.date(2023, 9, 1), INGEST)
    edits = [
        Mutation("value", bar=5, field="1. open", text="NaN"),
        Mutation("date", bar=0, text="2999-01-01"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=str(Path(tmp, "data")))
        _land(settings, INGEST, _payloads(1, edits, days))
        _run(settings, INGEST)
        rejected = read_rejected(settings, INGEST, "quality", source=SOURCE)
        assert sorted(zip(rejected["timestamp"], rejected["rule"], strict=True)) == [
            (days[-6].isoformat(), "open_in_range;open_le_high"),  # NaN is validated as +inf
            ("2999-01-01", "not_after_ingest"),
        ]
        stored = lake.scan(settings).collect()
        assert stored.height == len(days) - 2
        _check_stored(stored, "lake")
        _check_stored(_warehouse_rows(settings), "warehouse")
    assert _check_everything(1, edits, days) == "ran"


def test_the_unspoiled_batch_runs_clean() -> None:
    """The control: without an edit, every bar reaches the warehouse and nothing is rejected."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=str(Path(tmp, "data")))
        _land(settings, INGEST, _payloads(3, []))
        _run(settings, INGEST)
        assert _warehouse_rows(settings).height == 3 * len(DAYS)
        assert read_rejected(settings, INGEST).is_empty()


# --- the last line of defence: nothing non-finite enters the lake or a warehouse --------------


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The lake rows of the unspoiled batch of one symbol."""
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("curated") / "data"))
    _land(settings, INGEST, _payloads(1, []))
    _run(settings, INGEST)
    return lake.scan(settings).collect()


def _spoiled(rows: pl.DataFrame, **values: float) -> Frame[EnrichedStockRecord]:
    """``rows`` with ``values`` set on their third row."""
    index = pl.int_range(pl.len()) == 2
    return Frame(
        EnrichedStockRecord,
        rows.with_columns(
            pl.when(index).then(pl.lit(v, pl.Float64)).otherwise(pl.col(c)).alias(c)
            for c, v in values.items()
        ),
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_finite_names_the_column_and_the_first_key(
    curated: pl.DataFrame, value: float
) -> None:
    frame = _spoiled(curated, sma_5=value, close=value)
    with pytest.raises(DataError) as caught:
        check_finite(frame, "somewhere")
    error = caught.value
    # The first float column of the record that holds one: close comes before sma_5.
    assert (error.file, error.field) == ("somewhere", "close")
    assert (error.symbol, error.date) == ("AAA", DAYS[2].isoformat())
    assert str(error).startswith("somewhere: column 'close' holds")
    assert check_finite(_spoiled(curated), "x").df.height == len(DAYS)


def test_neither_the_lake_nor_a_warehouse_takes_a_nan(curated: pl.DataFrame) -> None:
    """Called directly (as a stage skipping the gate and the cleanse would): refused, and
    nothing written."""
    frame = _spoiled(curated, daily_return=math.nan)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=str(Path(tmp, "data")))
        with pytest.raises(DataError, match="daily_return"):
            lake.upsert(settings, [frame])
        assert lake.partitions(settings) == []
        warehouse = connect(settings.warehouse_url, settings)
        from fdp.warehouse.migrations import migrate

        migrate(warehouse)
        with pytest.raises(DataError, match="daily_return") as caught:
            load_rows(warehouse, frame, "hostile rows")
        assert caught.value.symbol == "AAA"
        assert _warehouse_rows(settings).is_empty()


def test_the_mutations_really_spoil_the_files() -> None:
    """The harness itself: each edit changes the bytes it says it changes."""
    clean = _payloads(2, [])
    assert _payloads(2, [Mutation("repeat", bar=1, other=2)])["AAA"].count(b'"2024-03-07"') == 2
    assert b'"2. Symbol": "BBB"' in _payloads(2, [Mutation("symbol", text="BBB")])["AAA"]
    assert b'"NaN"' in _payloads(1, [Mutation("value", field="1. open", text="NaN")])["AAA"]
    assert len(_payloads(1, [Mutation("truncate", where=0.5)])["AAA"]) == len(clean["AAA"]) // 2
    flipped = _payloads(1, [Mutation("flip", where=0.5, junk=b"\x01")])["AAA"]
    assert sum(a != b for a, b in zip(flipped, clean["AAA"], strict=True)) == 1
