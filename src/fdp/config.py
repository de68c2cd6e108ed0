"""Typed settings, read from the environment (``FDP_*``) with local defaults.

Every stage receives a ``Settings``; nothing else reads the environment, so a test or a DAG
task can run a stage against any data directory or warehouse by building its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fdp.redaction import register_secret, register_url

Engine = Literal["polars", "spark"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(location: str) -> bool:
    """Whether ``location`` names its scheme (``s3://``, ``file://``); anything else is a plain
    local path, never parsed as a URL (``::`` or ``?`` in it are just characters)."""
    return bool(_URL.match(location))


ALPHA_VANTAGE_URL = "https://www.alphavantage.co/query"


class Settings(BaseSettings):
    """fdp's settings; field ``x`` is read from ``FDP_X``."""

    model_config = SettingsConfigDict(env_prefix="FDP_", frozen=True, extra="ignore")

    data_dir: str = Field("./data", description="root of raw/, rejected/, curated/, reports/")
    warehouse_url: str = Field("", description="duckdb:///path, postgresql://..., redshift://...")
    engine: Engine = "polars"
    alphavantage_api_key: SecretStr | None = None
    alphavantage_secret_name: str | None = Field(
        None, description="AWS Secrets Manager secret holding the API key (aws extra)"
    )
    alphavantage_base_url: str = ALPHA_VANTAGE_URL
    alphavantage_calls_per_minute: int = Field(5, gt=0)
    alphavantage_calls_per_day: int = Field(25, gt=0)
    http_timeout_s: float = Field(30.0, gt=0)
    alphavantage_rate_window_s: float = Field(
        60.0, gt=0, description="window of the per-minute quota (shortened in tests)"
    )
    http_max_retries: int = Field(4, ge=0, description="retries of a transient HTTP failure")
    http_backoff_base_s: float = Field(1.0, gt=0, description="first retry's backoff ceiling")
    http_backoff_max_s: float = Field(60.0, gt=0, description="cap of the exponential backoff")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint for s3:// data dirs (MinIO, LocalStack, moto)"
    )
    aws_region: str | None = Field(None, description="AWS region for S3 and Secrets Manager")
    secrets_endpoint_url: str | None = Field(
        None, description="Secrets Manager endpoint (LocalStack, moto); AWS's when unset"
    )
    warehouse_attempts: int = Field(5, gt=0, description="tries per warehouse connect or load")
    warehouse_retry_base_s: float = Field(
        0.5, ge=0, description="first backoff delay; doubles per attempt, capped at 30 s"
    )
    query_timeout_s: float = Field(
        60.0, gt=0, description="longest an `fdp query` statement may run before it is cancelled"
    )
    lease_timeout_s: float = Field(
        300.0, ge=0, description="how long a lake writer waits for the lake's lease, then fails"
    )
    lease_ttl_s: float = Field(
        60.0, gt=0, description="object-store lease life without a heartbeat (a crash's bound)"
    )
    seed: int = 42
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="symbols a run covers (comma-separated); the demo preset's when empty"
    )

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in value.split(",") if s.strip())
        return value

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        """Whatever secret a setting holds is masked in every text fdp lets out."""
        if self.alphavantage_api_key is not None:
            register_secret(self.alphavantage_api_key.get_secret_value())
        for url in (self.warehouse_url, self.alphavantage_base_url, self.s3_endpoint_url):
            register_url(url)
        return self

    @model_validator(mode="after")
    def _default_warehouse(self) -> Settings:
        if not self.warehouse_url:
            target = f"{self.data_dir.rstrip('/')}/warehouse.duckdb"
            if not is_url(self.data_dir):
                target = str(Path(target).absolute())
            object.__setattr__(self, "warehouse_url", f"duckdb:///{target}")
        return self

    @property
    def is_remote(self) -> bool:
        """True when the data directory is an object store URL such as ``s3://``."""
        return is_url(self.data_dir)

    def path(self, *parts: str) -> str:
        """A location under the data directory, as a string usable by fsspec."""
        return "/".join([self.data_dir.rstrip("/"), *parts])
