"""The embedded engine: the plan runs in this process over the whole batch, in slices of whole
symbols, streaming each slice's changed rows into the staged partition files."""

from __future__ import annotations

from fdp import lake
from fdp.engines import Staged, TransformJob
from fdp.sources.landing import RawZone
from fdp.transform import plan


class PolarsEngine:
    """The default engine; needs no server."""

    name = "polars"

    def stage(self, job: TransformJob) -> Staged:
        raw = RawZone(job.settings).read(job.source, job.run_date)
        admission = job.admit(raw.fingerprint)
        planned = plan.prepare(job.settings, raw.rows, admission.rejected)
        # The raw rows are not needed past here: freed before the lake is written.
        del raw
        counts = plan.Counts()
        changed = plan.changed_rows(planned, job.run_date, counts, processed_at=job.processed_at)
        partitions = lake.stage(job.settings, changed)
        return Staged(
            rows_in=planned.rows_in,
            rejected=planned.rejected,
            computed=counts.computed,
            written=counts.written,
            run=lake.StagedRun(job.run_date, partitions, lake.stage_changes(counts.manifest())),
            gate_overridden=admission.overridden,
        )
