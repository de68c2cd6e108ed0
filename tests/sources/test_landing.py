"""The raw zone on a local path: exact bytes, metadata beside them, replace-one-object only."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from fdp.config import Settings
from fdp.errors import ConfigError, DataError
from fdp.records import StockRecord
from fdp.sources.landing import RawZone

DAY = dt.date(2026, 11, 20)
OTHER_DAY = dt.date(2026, 11, 19)
FETCHED = dt.datetime(2026, 11, 20, 21, 5, tzinfo=dt.UTC)


def daily(symbol: str, close: str = "101.5000") -> bytes:
    """A TIME_SERIES_DAILY answer (five fields per bar), as the vendor formats it."""
    return json.dumps(
        {
            "Meta Data": {"1. Information": "Daily Prices", "2. Symbol": symbol},
            "Time Series (Daily)": {
                "2026-11-20": {
                    "1. open": "100.0000",
                    "2. high": "102.0000",
                    "3. low": "99.5000",
                    "4. close": close,
                    "5. volume": "12345",
                },
                "2026-11-19": {
                    "1. open": "98.0000",
                    "2. high": "100.0000",
                    "3. low": "97.0000",
                    "4. close": "99.0000",
                    "5. volume": "2000",
                },
            },
        },
        indent=4,
    ).encode()


def adjusted(symbol: str) -> bytes:
    """A TIME_SERIES_DAILY_ADJUSTED answer (eight fields per bar)."""
    bar = {
        "1. open": "50.0",
        "2. high": "52.0",
        "3. low": "49.0",
        "4. close": "51.0",
        "5. adjusted close": "25.5",
        "6. volume": "700",
        "7. dividend amount": "0.2500",
        "8. split coefficient": "2.0",
    }
    return json.dumps(
        {"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": {"2026-11-20": bar}}
    ).encode()


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_land_keeps_bytes_and_writes_metadata(settings: Settings) -> None:
    zone = RawZone(settings)
    payload = daily("AAPL")
    landed = zone.land(
        "alpha_vantage",
        DAY,
        "AAPL",
        payload,
        rows=2,
        url="https://v.example/query?function=TIME_SERIES_DAILY&apikey=K3Y&symbol=AAPL",
        fetched_at=FETCHED,
    )

    path = Path(zone.object_path("alpha_vantage", DAY, "AAPL"))
    assert (
        path
        == Path(
            settings.data_dir, "raw/source=alpha_vantage/ingest_date=2026-11-20/symbol=AAPL.json"
        ).absolute()
    )
    assert path.read_bytes() == payload
    meta = zone.metadata("alpha_vantage", DAY, "AAPL")
    assert meta == {
        "path": f"file://{path}",
        "source": "alpha_vantage",
        "ingest_date": "2026-11-20",
        "symbol": "AAPL",
        "fetched_at": "2026-11-20T21:05:00+00:00",
        "url": "https://v.example/query?function=TIME_SERIES_DAILY&apikey=***&symbol=AAPL",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "rows": 2,
        "size": len(payload),
    }
    assert landed.path == f"file://{path}"
    assert "K3Y" not in json.dumps(meta)


def test_same_bytes_again_writes_nothing(settings: Settings) -> None:
    zone = RawZone(settings)
    zone.land("alpha_vantage", DAY, "AAPL", daily("AAPL"), rows=2, fetched_at=FETCHED)
    root = Path(settings.data_dir)
    before = files(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}

    later = FETCHED + dt.timedelta(hours=1)
    again = zone.land("alpha_vantage", DAY, "AAPL", daily("AAPL"), rows=2, fetched_at=later)

    assert files(root) == before
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.json")} == mtimes
    assert again.fetched_at == FETCHED.isoformat()  # the first fetch of these bytes


def test_replacing_one_symbol_touches_nothing_else(settings: Settings) -> None:
    zone = RawZone(settings)
    for day in (OTHER_DAY, DAY):
        for symbol in ("AAPL", "MSFT"):
            zone.land("alpha_vantage", day, symbol, daily(symbol), rows=2, fetched_at=FETCHED)
    zone.land("simulator", DAY, "AAPL", daily("AAPL"), rows=2, fetched_at=FETCHED)
    root = Path(settings.data_dir)
    before = files(root)

    zone.land("alpha_vantage", DAY, "AAPL", daily("AAPL", "110.0000"), rows=2)

    after = files(root)
    assert set(after) == set(before)  # no temp file left, nothing deleted
    changed = {name for name in after if after[name] != before[name]}
    batch = "raw/source=alpha_vantage/ingest_date=2026-11-20"
    assert changed == {f"{batch}/symbol=AAPL.json", f"{batch}/symbol=AAPL.meta.json"}
    closes = zone.read_batch("alpha_vantage", DAY).df.filter(pl.col("timestamp") == "2026-11-20")
    assert dict(zip(closes["symbol"], closes["close"], strict=True)) == {
        "AAPL": 110.0,
        "MSFT": 101.5,
    }


def test_read_batch_parses_both_endpoints_and_parquet_parts(settings: Settings) -> None:
    zone = RawZone(settings)
    zone.land("simulator", DAY, "AAPL", daily("AAPL"), rows=2)
    zone.land("simulator", DAY, "IBM", adjusted("IBM"), rows=1)
    part = pl.DataFrame(
        {
            "symbol": ["ZZ"],
            "timestamp": ["2026-11-20"],
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "adjusted_close": [1.5],
            "volume": [10],
            "dividend_amount": [0.0],
            "split_coefficient": [1.0],
            "source_file": ["sim"],
            "ingest_date": [DAY],
        },
        schema=StockRecord.polars_schema(),
    )
    zone.land_parquet("simulator", DAY, part.to_arrow(), 0)

    df = zone.read_batch("simulator", DAY).df.sort("symbol", "timestamp")

    assert df["symbol"].to_list() == ["AAPL", "AAPL", "IBM", "ZZ"]
    aapl = df.row(1, named=True)
    assert (aapl["open"], aapl["high"], aapl["low"], aapl["close"], aapl["volume"]) == (
        100.0,
        102.0,
        99.5,
        101.5,
        12345,
    )
    assert (aapl["adjusted_close"], aapl["dividend_amount"], aapl["split_coefficient"]) == (
        None,
        None,
        None,
    )
    ibm = df.row(2, named=True)
    assert (ibm["adjusted_close"], ibm["volume"], ibm["dividend_amount"]) == (25.5, 700, 0.25)
    assert ibm["split_coefficient"] == 2.0
    assert aapl["source_file"].endswith("ingest_date=2026-11-20/symbol=AAPL.json")
    assert set(df["ingest_date"]) == {DAY}


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        pytest.param(
            lambda d: d["Time Series (Daily)"]["2026-11-19"].update({"3. low": "x"}),
            "AAPL 2026-11-19: field 'low' is not a number: 'x'",
            id="not-a-number",
        ),
        pytest.param(
            lambda d: d["Time Series (Daily)"]["2026-11-20"].pop("4. close"),
            "AAPL 2026-11-20: field 'close' missing",
            id="missing-field",
        ),
        pytest.param(
            lambda d: d["Time Series (Daily)"].update({"2026-11-18": "closed"}),
            "AAPL 2026-11-18: bar is a JSON str",
            id="bar-not-object",
        ),
        pytest.param(lambda d: d.pop("Meta Data"), "no 'Meta Data'", id="no-meta"),
    ],
)
def test_bad_raw_object_names_file_symbol_date_field(
    settings: Settings, mutate: object, says: str
) -> None:
    doc = json.loads(daily("AAPL"))
    mutate(doc)  # type: ignore[operator]
    zone = RawZone(settings)
    zone.land("simulator", DAY, "AAPL", json.dumps(doc).encode(), rows=2)

    with pytest.raises(DataError) as caught:
        zone.read_batch("simulator", DAY)

    assert says in str(caught.value)
    assert "ingest_date=2026-11-20/symbol=AAPL.json" in str(caught.value)
    error = caught.value
    assert error.file is not None
    assert error.file.endswith("ingest_date=2026-11-20/symbol=AAPL.json")
    if "AAPL 2026" in says:
        assert (error.symbol, error.date) == ("AAPL", says.split()[1].rstrip(":"))


def test_an_object_holding_another_symbols_bars_is_refused(settings: Settings) -> None:
    """``symbol=AAPL.json`` whose document says MSFT would replace MSFT's history."""
    zone = RawZone(settings)
    zone.land("alpha_vantage", DAY, "MSFT", daily("MSFT"), rows=2)
    zone.land("alpha_vantage", DAY, "AAPL", daily("MSFT", "1.0000"), rows=2)
    with pytest.raises(DataError) as caught:
        zone.read_batch("alpha_vantage", DAY)
    error = caught.value
    assert "the document is for 'MSFT'" in str(error)
    assert error.file is not None
    assert error.file.endswith("ingest_date=2026-11-20/symbol=AAPL.json")
    assert (error.symbol, error.field) == ("AAPL", "symbol")
    # The same object under its own name reads, once the wrong one is replaced.
    zone.land("alpha_vantage", DAY, "AAPL", daily("AAPL"), rows=2)
    assert set(zone.read_batch("alpha_vantage", DAY).df["symbol"]) == {"AAPL", "MSFT"}


def test_a_repeated_date_in_a_raw_object_is_refused(settings: Settings) -> None:
    """The strict path refuses a repeated date (a decoder would keep the last one)."""
    payload = daily("AAPL").replace(b'"2026-11-19"', b'"2026-11-20"')
    zone = RawZone(settings)
    zone.land("alpha_vantage", DAY, "AAPL", payload, rows=2)
    with pytest.raises(DataError) as caught:
        zone.read_batch("alpha_vantage", DAY)
    error = caught.value
    assert "AAPL 2026-11-20: date repeated in the time series" in str(error)
    assert (error.symbol, error.date, error.field) == ("AAPL", "2026-11-20", "timestamp")


@pytest.mark.parametrize("name", ["AAPL.json", "symbol=aapl.json", "symbol=AAPL.json.json"])
def test_a_json_file_not_named_by_the_zone_is_refused(settings: Settings, name: str) -> None:
    zone = RawZone(settings)
    stray = Path(zone.batch_dir("alpha_vantage", DAY), name)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(daily("AAPL"))
    with pytest.raises(DataError, match="not a raw-zone object name") as caught:
        zone.read_batch("alpha_vantage", DAY)
    assert caught.value.file == f"file://{stray}"


def test_a_parquet_part_of_the_wrong_shape_names_its_file(settings: Settings) -> None:
    zone = RawZone(settings)
    url = zone.land_parquet("simulator", DAY, pl.DataFrame({"symbol": ["A"]}).to_arrow(), 0)
    with pytest.raises(DataError, match="missing column") as caught:
        zone.read_batch("simulator", DAY)
    assert caught.value.file == url


def test_truncated_raw_object_is_a_data_error(settings: Settings) -> None:
    zone = RawZone(settings)
    zone.land("simulator", DAY, "AAPL", daily("AAPL")[:40], rows=0)
    with pytest.raises(DataError, match=r"symbol=AAPL\.json: malformed JSON"):
        zone.read_batch("simulator", DAY)


def test_bad_keys_are_config_errors(settings: Settings) -> None:
    zone = RawZone(settings)
    with pytest.raises(ConfigError, match="unknown source 'yahoo'"):
        zone.batch_dir("yahoo", DAY)
    with pytest.raises(ConfigError, match=r"invalid ticker '\.\./x'"):
        zone.object_path("simulator", DAY, "../x")
    with pytest.raises(ValueError, match="timezone-aware"):
        zone.land("simulator", DAY, "AAPL", b"{}", rows=0, fetched_at=dt.datetime(2026, 1, 1))  # noqa: DTZ001


def test_empty_batch_reads_as_empty_frame(settings: Settings) -> None:
    assert len(RawZone(settings).read_batch("alpha_vantage", DAY)) == 0


@pytest.mark.parametrize(
    "payload",
    [
        daily("AAPL").replace(b'"2026-11-19"', b'"2026-11-20"'),
        daily("MSFT"),
    ],
    ids=["repeated date", "another symbol"],
)
def test_the_cli_refuses_an_ambiguous_raw_object_with_exit_2(
    settings: Settings, payload: bytes
) -> None:
    from click.testing import CliRunner

    from fdp.cli import main

    RawZone(settings).land("alpha_vantage", DAY, "AAPL", payload, rows=2)
    result = CliRunner().invoke(
        main, ["validate", "--date", DAY.isoformat(), "--source", "alpha_vantage"]
    )
    assert result.exit_code == 2, result.output
    assert "symbol=AAPL.json" in result.output
    assert "Traceback" not in result.output
    assert not (Path(settings.data_dir) / "curated").exists()
