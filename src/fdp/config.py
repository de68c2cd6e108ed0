"""Typed settings, read from the environment (``FDP_*``) with local defaults.

Every stage receives a ``Settings``; nothing else reads the environment, so a test or a DAG
task can run a stage against any data directory or warehouse by building its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Engine = Literal["polars", "spark"]

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
    seed: int = 42

    @model_validator(mode="after")
    def _default_warehouse(self) -> Settings:
        if not self.warehouse_url:
            target = f"{self.data_dir.rstrip('/')}/warehouse.duckdb"
            if "://" not in self.data_dir:
                target = str(Path(target).absolute())
            object.__setattr__(self, "warehouse_url", f"duckdb:///{target}")
        return self

    @property
    def is_remote(self) -> bool:
        """True when the data directory is an object store URL such as ``s3://``."""
        return "://" in self.data_dir

    def path(self, *parts: str) -> str:
        """A location under the data directory, as a string usable by fsspec."""
        return "/".join([self.data_dir.rstrip("/"), *parts])
