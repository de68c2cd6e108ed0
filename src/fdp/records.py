"""The three record types of the pipeline: the one source of every schema.

Each record is a frozen dataclass whose type hints are the contract. Arrow and Polars
schemas are derived from those hints here; the Spark and SQL schemas derive from
``fields()`` in their own modules, so a column is added or retyped in exactly one place.

Stages pass whole columns, not Python objects: ``Frame[R]`` is a Polars DataFrame checked
against record type ``R``, so a stage's signature says which records it takes and returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import types
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    ClassVar,
    Generic,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import polars as pl
import pyarrow as pa

from fdp import indicators
from fdp.errors import DataError

Int32 = Annotated[int, pa.int32()]
"""An ``int`` stored in 32 bits (calendar parts)."""

TICKER_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,9}$"
TICKER_RE = re.compile(TICKER_PATTERN)

_ARROW_TYPES: dict[Any, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    int: pa.int64(),
    dt.date: pa.date32(),
    dt.datetime: pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a record: its name, Arrow type and nullability."""

    name: str
    arrow_type: pa.DataType
    nullable: bool


class Record:
    """Base of the record types; subclasses are frozen dataclasses."""

    KEY: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def columns(cls) -> tuple[Column, ...]:
        return _field_columns(cls)

    @classmethod
    def names(cls) -> list[str]:
        return [c.name for c in cls.columns()]

    @classmethod
    def arrow_schema(cls) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in cls.columns()])

    @classmethod
    def polars_schema(cls) -> pl.Schema:
        return pl.Schema(cls.arrow_schema())  # Arrow -> Polars types, without pandas


_COLUMNS: dict[type[Record], tuple[Column, ...]] = {}


def _field_columns(record: type[Record]) -> tuple[Column, ...]:
    """The columns of ``record``'s dataclass fields, from their type hints."""
    if record not in _COLUMNS:
        hints = get_type_hints(record, include_extras=True)
        fields = dataclasses.fields(record)  # type: ignore[arg-type]
        _COLUMNS[record] = tuple(_column(f.name, hints[f.name]) for f in fields)
    return _COLUMNS[record]


_WITH_INDICATORS: dict[int, tuple[Column, ...]] = {}


def _column(name: str, hint: Any) -> Column:
    nullable = False
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        nullable, hint = len(args) < len(get_args(hint)), args[0]
    if get_origin(hint) is Annotated:
        _, arrow_type = get_args(hint)
        return Column(name, arrow_type, nullable)
    return Column(name, _ARROW_TYPES[hint], nullable)


@dataclass(frozen=True, slots=True)
class StockRecord(Record):
    """A raw bar, parsed as received: the vendor's date string, nullable numbers."""

    KEY: ClassVar[tuple[str, ...]] = ("symbol", "timestamp")

    symbol: str
    timestamp: str
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adjusted_close: float | None
    volume: int | None
    dividend_amount: float | None
    split_coefficient: float | None
    source_file: str
    ingest_date: dt.date


@dataclass(frozen=True, slots=True)
class CleansedRecord(Record):
    """A checked bar: valid ticker, real date, no negative price, one row per key."""

    KEY: ClassVar[tuple[str, ...]] = ("symbol", "trade_date")

    symbol: str
    trade_date: dt.date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adjusted_close: float | None
    volume: int
    dividend_amount: float
    split_coefficient: float
    source_file: str
    ingest_date: dt.date


@dataclass(frozen=True, slots=True)
class EnrichedStockRecord(Record):
    """A curated row: the bar, its indicators, calendar parts and lineage (when it was
    computed, from which ingest). The indicator columns are not fields: they are the
    registry's (``fdp.indicators``), nullable floats after ``split_adjusted_close``, so a user
    indicator joins every schema without a code change here."""

    KEY: ClassVar[tuple[str, ...]] = ("symbol", "trade_date")

    @classmethod
    def columns(cls) -> tuple[Column, ...]:
        version = indicators.version()
        cached = _WITH_INDICATORS.get(version)
        if cached is None:
            fields = _field_columns(cls)
            at = next(i for i, c in enumerate(fields) if c.name == indicators.P) + 1
            added = tuple(Column(n, pa.float64(), True) for n in indicators.columns())
            cached = _WITH_INDICATORS[version] = (*fields[:at], *added, *fields[at:])
        return cached

    price_id: str
    symbol: str
    trade_date: dt.date
    trade_timestamp: dt.datetime
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adjusted_close: float | None
    volume: int
    dividend_amount: float
    split_coefficient: float
    split_adjusted_close: float | None
    # The indicator columns (``fdp.indicators``, built-in and user-declared) come here.
    year: Int32
    quarter: Int32
    month: Int32
    day: Int32
    day_of_week: Int32
    processing_timestamp: dt.datetime
    ingest_date: dt.date
    """The raw batch the bar came from: a batch transformed later but ingested earlier never
    replaces it (the latest ingest wins across runs, whatever order they run in)."""


R = TypeVar("R", bound=Record)


class Frame(Generic[R]):
    """A Polars DataFrame whose columns are exactly those of record type ``R``.

    Construction checks names, order, types and non-null columns, so a stage that returns
    ``Frame[CleansedRecord]`` cannot hand a wrongly shaped table to the next one.
    """

    __slots__ = ("df", "record")

    def __init__(self, record: type[R], df: pl.DataFrame, *, origin: str = "frame") -> None:
        self.record = record
        self.df = check(record, df, origin=origin)

    def __len__(self) -> int:
        return self.df.height

    @classmethod
    def empty(cls, record: type[R]) -> Frame[R]:
        return cls(record, pl.DataFrame(schema=record.polars_schema()))

    def to_arrow(self) -> pa.Table:
        return self.df.to_arrow().cast(self.record.arrow_schema())


def check(record: type[Record], df: pl.DataFrame, *, origin: str = "frame") -> pl.DataFrame:
    """Return ``df`` with the columns of ``record``, in order; raise ``DataError`` naming
    ``origin`` and the column when a column is missing, mistyped or null where it may not be."""
    schema = record.polars_schema()
    missing = [n for n in schema if n not in df.columns]
    if missing:
        raise DataError(f"{origin}: missing column(s) {missing} for {record.__name__}")
    df = df[schema.names()]  # zero-copy: ``select`` would rechunk a multi-chunk frame
    for name, dtype in schema.items():
        if df.schema[name] != dtype:
            raise DataError(
                f"{origin}: column {name!r} is {df.schema[name]}, {record.__name__} needs {dtype}"
            )
    for col in record.columns():
        if not col.nullable and df[col.name].null_count():
            raise DataError(f"{origin}: column {col.name!r} of {record.__name__} holds nulls")
    return df


def check_finite(frame: Frame[R], origin: str) -> Frame[R]:
    """``frame`` when every float value in it is finite or null.

    Otherwise a ``DataError`` naming ``origin``, the column and the first offending row's key:
    a NaN or an infinity must never enter the lake or a warehouse (a NaN never equals itself,
    so no later reconciliation of its row could succeed). One pass over the float columns.
    """
    floats = [c.name for c in frame.record.columns() if pa.types.is_floating(c.arrow_type)]
    if not floats or not len(frame):
        return frame
    found = frame.df.select(pl.col(floats).is_finite().not_().any()).row(0, named=True)
    column = next((name for name in floats if found[name]), None)
    if column is None:
        return frame
    key = list(frame.record.KEY)
    row = frame.df.filter(~pl.col(column).is_finite()).select(*key, column).row(0, named=True)
    where = " ".join(str(row[k]) for k in key)
    raise DataError(
        f"{origin}: column {column!r} holds {row[column]} at {where}: not a finite number",
        file=origin,
        symbol=row.get("symbol"),
        date=row.get("trade_date", row.get("timestamp")),
        field=column,
        hint="NaN and infinity never enter the lake or a warehouse: reject the bar upstream",
    )


ROW_KEY = list(EnrichedStockRecord.KEY)
"""The key of a cleansed or curated row: (symbol, trade_date)."""


def after_previous_key() -> pl.Expr:
    """Whether each row's key is greater than the previous row's (null on the first row)."""
    *leading, last = ROW_KEY
    expr = pl.col(last) > pl.col(last).shift()
    for name in reversed(leading):
        col, prev = pl.col(name), pl.col(name).shift()
        expr = (col > prev) | ((col == prev) & expr)
    return expr


def in_key_order(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by key, returned as is when it already is (a backfill's rows are); the
    check runs lazily, so a frame of many chunks is not copied into one first."""
    if df.height < 2:
        return df
    ordered = df.lazy().select(after_previous_key().fill_null(True).all()).collect().item()
    return df if ordered else df.sort(ROW_KEY)
