"""The raw zone: vendor bytes exactly as received, one object per (source, date, symbol), in
the layout of ``fdp.sources.layout``.

Landing the same key again replaces only that object, atomically (write aside, then
rename; a single PUT on object stores). Nothing else is ever modified or deleted. Landing
bytes identical to those already stored writes nothing, so a re-run leaves the zone exactly
as the first run left it (metadata included). URLs are stored with their secrets redacted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from fdp.config import Settings
from fdp.errors import ConfigError, DataError
from fdp.records import TICKER_RE, Frame, StockRecord
from fdp.redaction import redact
from fdp.sources.layout import META_SUFFIX, RAW, batch_relpath, is_data_object
from fdp.sources.vendor_json import parse_daily
from fdp.storage import filesystem, parquet_bytes, put_bytes

READERS = 4
"""Bulk Parquet parts read at a time."""


@dataclass(frozen=True, slots=True)
class LandedObject:
    """Where an object landed and what was recorded beside it."""

    path: str
    source: str
    ingest_date: str
    symbol: str
    fetched_at: str
    url: str | None
    sha256: str
    rows: int
    size: int


class RawZone:
    """Read and append to the raw zone under ``settings.data_dir`` (local or ``s3://``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fs, self.root = filesystem(settings.path(RAW), settings)

    def batch_dir(self, source: str, ingest_date: dt.date) -> str:
        return f"{self.root}/{batch_relpath(source, ingest_date)}"

    def object_path(self, source: str, ingest_date: dt.date, symbol: str) -> str:
        if not TICKER_RE.match(symbol):
            raise ConfigError(f"invalid ticker {symbol!r}: expected {TICKER_RE.pattern}")
        return f"{self.batch_dir(source, ingest_date)}/symbol={symbol}.json"

    def land(
        self,
        source: str,
        ingest_date: dt.date,
        symbol: str,
        payload: bytes,
        *,
        rows: int,
        url: str | None = None,
        fetched_at: dt.datetime | None = None,
    ) -> LandedObject:
        """Store ``payload`` untouched for (source, date, symbol), with its metadata beside it.

        When the stored object already holds these exact bytes nothing is written and the
        stored metadata (first fetch time) is returned.
        """
        path = self.object_path(source, ingest_date, symbol)
        sha256 = hashlib.sha256(payload).hexdigest()
        stored = self._unchanged(path, sha256)
        if stored is not None:
            return stored
        when = fetched_at or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            raise ValueError("fetched_at must be timezone-aware (UTC)")
        landed = LandedObject(
            path=self.uri(path),
            source=source,
            ingest_date=ingest_date.isoformat(),
            symbol=symbol,
            fetched_at=when.astimezone(dt.UTC).isoformat(),
            url=None if url is None else redact(url),
            sha256=sha256,
            rows=rows,
            size=len(payload),
        )
        self._put(path, payload)
        self._put(_meta_path(path), orjson.dumps(asdict(landed), option=orjson.OPT_INDENT_2))
        return landed

    def _unchanged(self, path: str, sha256: str) -> LandedObject | None:
        """The stored metadata when ``path`` and its metadata both hold ``sha256``."""
        meta_path = _meta_path(path)
        if not (self.fs.exists(meta_path) and self.fs.exists(path)):
            return None
        meta = orjson.loads(self.fs.cat_file(meta_path))
        if (
            meta.get("sha256") != sha256
            or hashlib.sha256(self.fs.cat_file(path)).hexdigest() != sha256
        ):
            return None
        return LandedObject(**meta)

    def land_parquet(self, source: str, ingest_date: dt.date, table: pa.Table, part: int) -> str:
        """Store one part of a bulk batch as Parquet (atomically, like every object)."""
        path = f"{self.batch_dir(source, ingest_date)}/part-{part:05d}.parquet"
        self._put(path, parquet_bytes(table))
        return str(self.uri(path))

    def metadata(self, source: str, ingest_date: dt.date, symbol: str) -> dict[str, Any]:
        path = _meta_path(self.object_path(source, ingest_date, symbol))
        return dict(orjson.loads(self.fs.cat_file(path)))

    def json_objects(self, source: str, ingest_date: dt.date) -> list[str]:
        """Paths of the JSON objects of one batch, sorted (metadata files excluded)."""
        objects = self._list(self.batch_dir(source, ingest_date))
        return sorted(p for p in objects if p.endswith(".json") and is_data_object(object_name(p)))

    def parquet_objects(self, source: str, ingest_date: dt.date) -> list[str]:
        objects = self._list(self.batch_dir(source, ingest_date))
        return sorted(
            p for p in objects if p.endswith(".parquet") and is_data_object(object_name(p))
        )

    def read_batch(self, source: str, ingest_date: dt.date) -> Frame[StockRecord]:
        """Every bar landed for (source, date), parsed into ``StockRecord``s."""
        return self.read(source, ingest_date).rows

    def read(self, source: str, ingest_date: dt.date) -> RawBatch:
        """Every bar landed for (source, date), and the fingerprint of the bytes they were
        parsed from (so a check of the fingerprint covers exactly what was read)."""
        # Objects are read side by side: one Parquet part alone keeps a single core busy.
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            read = list(
                pool.map(
                    lambda p: self.read_object(p, ingest_date), self.objects(source, ingest_date)
                )
            )
        fingerprint = batch_fingerprint({o.name: o.digest for o in read})
        if not read:
            return RawBatch(Frame.empty(StockRecord), fingerprint)
        origin = self.batch_dir(source, ingest_date)
        rows = pl.concat([o.rows.df for o in read])
        return RawBatch(Frame(StockRecord, rows, origin=origin), fingerprint)

    def objects(self, source: str, ingest_date: dt.date) -> list[str]:
        """Paths of a batch's data objects: its JSON objects, then its Parquet parts."""
        return self.json_objects(source, ingest_date) + self.parquet_objects(source, ingest_date)

    def read_object(self, path: str, ingest_date: dt.date) -> RawObject:
        """One data object of the batch of ``ingest_date``, parsed, with its digest: what a
        reader anywhere (this process, a Spark executor) makes of it."""
        data = self.fs.cat_file(path)
        digest = hashlib.sha256(data).hexdigest()
        if path.endswith(".json"):
            rows = parse_daily(
                data,
                source_file=self.uri(path),
                ingest_date=ingest_date,
                symbol=self.object_symbol(path),
            )
            return RawObject(object_name(path), digest, rows)
        # Polars' own reader: several times faster than pyarrow's plus a conversion.
        try:
            rows = Frame(StockRecord, pl.read_parquet(io.BytesIO(data)), origin=self.uri(path))
        except DataError as exc:
            raise exc.with_context(file=self.uri(path)) from None
        return RawObject(object_name(path), digest, rows)

    def fingerprint(self, source: str, ingest_date: dt.date) -> str:
        """The batch's fingerprint without parsing it (``read`` computes the same)."""
        paths = self.objects(source, ingest_date)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            digests = pool.map(lambda p: hashlib.sha256(self.fs.cat_file(p)).hexdigest(), paths)
            return batch_fingerprint(dict(zip(map(object_name, paths), digests, strict=True)))

    def object_symbol(self, path: str) -> str:
        """The symbol a JSON object of the zone is named for (``symbol=<SYM>.json``): the
        document inside must be for that symbol. Any other name is refused, so a file
        dropped into a batch by hand is never read as some symbol's history."""
        name = object_name(path)
        symbol = name.removeprefix("symbol=").removesuffix(".json")
        if name != f"symbol={symbol}.json" or not TICKER_RE.match(symbol):
            raise DataError(
                f"{self.uri(path)}: not a raw-zone object name (symbol=<SYM>.json)",
                file=self.uri(path),
                hint="land vendor files with RawZone.land, which names them",
            )
        return symbol

    def _list(self, directory: str) -> list[str]:
        if not self.fs.exists(directory):
            return []
        return [str(p) for p in self.fs.ls(directory, detail=False)]

    def uri(self, path: str) -> str:
        """A path of this zone as a URL (``file://``, ``s3://``) for messages and metadata."""
        return str(self.fs.unstrip_protocol(path))

    def _put(self, path: str, data: bytes) -> None:
        put_bytes(self.fs, path, data)


@dataclass(frozen=True, slots=True)
class RawObject:
    """One data object as read: its name in the batch, its sha256, and its bars."""

    name: str
    digest: str
    rows: Frame[StockRecord]


@dataclass(frozen=True, slots=True)
class RawBatch:
    """A raw batch as read: its bars, and the fingerprint of the objects they came from."""

    rows: Frame[StockRecord]
    fingerprint: str


def batch_fingerprint(digests: dict[str, str]) -> str:
    """sha256 over a batch's (object name, object sha256) pairs, in name order: it changes
    when any object is added, removed or altered, and not when the data directory moves."""
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def object_name(path: str) -> str:
    """An object's name in its batch (what the fingerprint and the readers record)."""
    return path.rsplit("/", 1)[-1]


def _meta_path(object_path: str) -> str:
    return object_path.removesuffix(".json") + META_SUFFIX
