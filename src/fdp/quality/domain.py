"""The batch a custom GX metric sees: the one place fdp reads GX's compute domain.

fdp's own rules (completeness, future bars) are computed by Polars on both GX engines; their
metrics differ only in what they ask of the batch, so the reading lives here once.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
from great_expectations.core.metric_domain_types import MetricDomainTypes


def pandas_columns(engine: Any, domain_kwargs: dict[str, Any], columns: list[str]) -> pl.DataFrame:
    """``columns`` of the pandas engine's batch, as Polars."""
    df, _, _ = engine.get_compute_domain(
        domain_kwargs=domain_kwargs, domain_type=MetricDomainTypes.TABLE
    )
    return pl.DataFrame(pl.from_arrow(pa.Table.from_pandas(df[columns], preserve_index=False)))


def spark_frame(engine: Any, domain_kwargs: dict[str, Any]) -> Any:
    """The Spark engine's batch, as a Spark DataFrame (reduced by the caller before it is
    brought to the driver)."""
    df, _, _ = engine.get_compute_domain(
        domain_kwargs=domain_kwargs, domain_type=MetricDomainTypes.TABLE
    )
    return df
