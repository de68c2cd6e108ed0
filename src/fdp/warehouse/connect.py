"""From a warehouse URL to its destination; drivers are imported only when used."""

from __future__ import annotations

from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.redaction import redact
from fdp.warehouse.base import Retry, Warehouse
from fdp.warehouse.deployment import warehouse_url


def connect(url: str, settings: Settings | None = None) -> Warehouse:
    """The destination for ``url`` (duckdb:///, postgresql://, redshift://), retrying
    transient faults as ``settings`` says; an empty ``url`` is the deployment's warehouse
    (``FDP_WAREHOUSE_SECRET_ARN``, see ``fdp.warehouse.deployment``)."""
    s = settings or Settings()
    url = url or warehouse_url(s)
    policy = Retry(s.warehouse_attempts, s.warehouse_retry_base_s)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "duckdb":
        from fdp.warehouse.duck import DuckDBWarehouse

        return DuckDBWarehouse(url, policy)
    if scheme in ("postgresql", "postgres"):
        from fdp.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url, policy)
    if scheme == "redshift":
        from fdp.warehouse.redshift import RedshiftWarehouse

        return RedshiftWarehouse(url, policy)
    raise ConfigError(
        f"unsupported warehouse URL {redact(url)}: use duckdb:///, postgresql:// or redshift://"
    )
