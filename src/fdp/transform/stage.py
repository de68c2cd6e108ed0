"""The transform stage: a run date's raw batch to curated rows, incrementally and idempotently,
the same on every engine.

The engine reads the batch, has the gate admit its fingerprint, runs the plan
(``fdp.transform.plan``) and stages the partitions it changes; the stage then writes the rows
kept out, keeps the rows they replace in the version history (``fdp.history``) and publishes
the staged files under the lake's lease. So the rules of a run (gate
first, the latest ingest wins, unchanged rows untouched, atomic partitions, one writer) are
the stage's and the lake's, whichever engine computed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from fdp import history, lake
from fdp.config import Settings
from fdp.engines import Engine, TransformJob, get_engine
from fdp.quality.gate import Gate
from fdp.rejected import write_rejected


@dataclass(frozen=True, slots=True)
class TransformResult:
    """What a run did."""

    run_date: dt.date
    rows_in: int
    rejected: int
    rows_written: int
    partitions_replaced: int
    changed_keys: int
    duration_s: float
    gate_overridden: bool = False


@lake.leased("transform")
def transform(
    settings: Settings,
    run_date: dt.date,
    *,
    gate: Gate,
    engine: Engine | None = None,
    on_partition: Callable[[lake.Partition], None] | None = None,
    now: dt.datetime | None = None,
) -> TransformResult:
    """Bring the curated lake up to date with the raw batch of (``gate.source``, ``run_date``).

    The batch must pass ``gate`` (a passing validation of exactly the bytes read) before
    anything is computed; a malformed raw object raises ``DataError`` naming it.
    """
    started = time.perf_counter()
    engine = engine or get_engine(settings.engine, settings)
    job = TransformJob(
        settings=settings,
        source=gate.source,
        run_date=run_date,
        processed_at=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
        admit=gate.admit,
    )
    staged = engine.stage(job)
    write_rejected(settings, "cleanse", run_date, staged.rejected, source=gate.source)
    history.record(settings, staged.run)
    replaced = lake.publish(settings, staged.run, on_partition)
    return TransformResult(
        run_date=run_date,
        rows_in=staged.rows_in,
        rejected=staged.rejected.height,
        rows_written=staged.written,
        partitions_replaced=len(replaced),
        changed_keys=staged.computed,
        duration_s=time.perf_counter() - started,
        gate_overridden=staged.gate_overridden,
    )
