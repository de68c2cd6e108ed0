"""The warehouse: DuckDB (default, embedded), PostgreSQL and Redshift behind one interface.

``load_run`` is the load stage; ``record_pipeline_run`` and
``record_dq_results`` feed the observability tables the dashboards read.
"""

from __future__ import annotations

from fdp.warehouse.connect import connect
from fdp.warehouse.loader import LoadResult, load_rows, load_run, read_changes
from fdp.warehouse.migrations import migrate
from fdp.warehouse.observability import (
    DqResult,
    PipelineRun,
    SymbolInfo,
    record_dq_results,
    record_pipeline_run,
    upsert_symbols,
)

__all__ = [
    "DqResult",
    "LoadResult",
    "PipelineRun",
    "SymbolInfo",
    "connect",
    "load_rows",
    "load_run",
    "migrate",
    "read_changes",
    "record_dq_results",
    "record_pipeline_run",
    "upsert_symbols",
]
