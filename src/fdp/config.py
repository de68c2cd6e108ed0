"""Typed settings, read from the environment (``FDP_*``) with local defaults.

Every stage receives a ``Settings``; nothing else reads the environment, so a test or a DAG
task can run a stage against any data directory or warehouse by building its own.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

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

SPARK_MASTERS = (
    re.compile(r"^local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?$"),
    re.compile(r"^local-cluster\[[1-9][0-9]*,[1-9][0-9]*,[1-9][0-9]*\]$"),
    re.compile(r"^spark://[^/\s:,]+:[0-9]+(,[^/\s:,]+:[0-9]+)*$"),
    re.compile(r"^yarn$"),
    re.compile(r"^k8s://\S+$"),
)
"""The masters Spark accepts: local threads, a standalone master (or its HA list), YARN, K8s."""

_SPARK_REMOTE = re.compile(r"^sc://[^/\s:;]+(:(?P<port>[0-9]{1,5}))?(/(;[^;=\s]+=[^;\s]*)*)?$")
"""A Spark Connect URL: ``sc://host[:port][/;param=value...]`` (``token=`` among the params)."""

_TOKEN = re.compile(r"[;?&/]token=([^;&\s]*)")

PREFIX = "FDP_"
NOT_SETTINGS = frozenset({"FDP_REQUIRE_ALL", "FDP_TEST_POSTGRES_URL", "FDP_WAREHOUSE_FAULT"})
"""The only ``FDP_*`` names that are not settings, all test tooling: ``FDP_REQUIRE_ALL`` (a
skipped integration test fails, tests/needs.py, .ci/run), ``FDP_TEST_POSTGRES_URL`` (the test
PostgreSQL, tests/conftest.py) and ``FDP_WAREHOUSE_FAULT`` (the loader's crash point for its
kill test). Any other ``FDP_*`` variable must be a field of ``Settings``."""


class Settings(BaseSettings):
    """fdp's settings; field ``x`` is read from ``FDP_<X>``. An ``FDP_*`` variable that names
    no field is refused (a typo must not fall back to a default)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    data_dir: str = Field("./data", description="root of raw/, rejected/, curated/, reports/")
    warehouse_url: str = Field("", description="duckdb:///path, postgresql://..., redshift://...")
    warehouse_secret_arn: str | None = Field(
        None,
        description="Secrets Manager secret holding the warehouse URL or Redshift credentials"
        " JSON (username, password, host, port, dbname, engine); used when no URL is set",
    )
    warehouse_workgroup: str | None = Field(
        None, description="Redshift Serverless workgroup the Data API loads (with the secret)"
    )
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
    spark_master: str = Field(
        "local[*]",
        description="where the Spark engine runs: local[N], spark://h:7077, yarn, k8s://",
    )
    spark_remote: str | None = Field(
        None, description="Spark Connect server (sc://host:15002/;token=...), used over the master"
    )
    spark_conf: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description='extra Spark conf as a JSON object ({"spark.x": "v"})'
    )
    glue_job_name: str = Field(
        "fdp-transform",
        description="the Glue job engine=glue runs (the stack exports its fdp-<env>-transform)",
    )
    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming webhook for run notices (a secret: never printed)"
    )
    seed: int = 42
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="symbols a run covers (comma-separated); the demo preset's when empty"
    )

    indicators: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="modules that register user indicators (comma-separated)"
    )

    @model_validator(mode="before")
    @classmethod
    def _known_names_only(cls, data: Any) -> Any:
        """Refuse the environment's unknown ``FDP_*`` names, each with its likely meaning."""
        unknown = unknown_names(os.environ, setting_names(cls))
        if unknown:
            raise ValueError("; ".join(unknown))
        return data

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in value.split(",") if s.strip())
        return value

    @field_validator("indicators", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator("spark_master")
    @classmethod
    def _check_master(cls, value: str) -> str:
        if not any(p.match(value) for p in SPARK_MASTERS):
            raise ValueError(
                f"FDP_SPARK_MASTER {value!r} is not a Spark master: expected local[N],"
                " local[*], spark://host:7077, yarn or k8s://https://host:port"
            )
        return value

    @field_validator("spark_remote")
    @classmethod
    def _check_remote(cls, value: str | None) -> str | None:
        """A Spark Connect URL; its token is masked before anything (even an error) prints."""
        if not value:
            return None
        for token in _TOKEN.findall(value):
            register_secret(token)
        match = _SPARK_REMOTE.match(value)
        if match is None or (match["port"] and not 0 < int(match["port"]) < 65536):
            raise ValueError(
                "FDP_SPARK_REMOTE is not a Spark Connect URL: expected"
                " sc://host[:port][/;key=value...] (the access token under the key 'token')"
            )
        return value

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _parse_conf(cls, value: object) -> object:
        """A JSON object of Spark properties; numbers and booleans become Spark's strings."""
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"FDP_SPARK_CONF is not JSON ({exc.msg}); expected an object such as"
                    ' {"spark.executor.memory": "4g"}'
                ) from None
        if not isinstance(value, dict):
            raise ValueError('FDP_SPARK_CONF must be a JSON object such as {"spark.x": "v"}')
        conf = {}
        for key, item in value.items():
            if isinstance(item, bool):
                item = str(item).lower()
            elif isinstance(item, int | float):
                item = str(item)
            if not isinstance(key, str) or not isinstance(item, str):
                raise ValueError(f"FDP_SPARK_CONF {key!r}: values must be strings or numbers")
            conf[key] = item
        return conf

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        """Whatever secret a setting holds is masked in every text fdp lets out."""
        for secret in (self.alphavantage_api_key, self.slack_webhook_url):
            if secret is not None:
                register_secret(secret.get_secret_value())
        for url in (self.warehouse_url, self.alphavantage_base_url, self.s3_endpoint_url):
            register_url(url)
        return self

    @model_validator(mode="after")
    def _load_indicators(self) -> Settings:
        """User indicators join the schemas before any stage derives one."""
        from fdp import indicators

        indicators.load(self.indicators)
        return self

    @model_validator(mode="after")
    def _default_warehouse(self) -> Settings:
        """A local data directory keeps a DuckDB file beside its zones; the warehouse of a
        remote one is the deployment's (``fdp.warehouse.deployment`` resolves it)."""
        if self.warehouse_workgroup and not self.warehouse_secret_arn:
            raise ValueError(
                "FDP_WAREHOUSE_WORKGROUP needs FDP_WAREHOUSE_SECRET_ARN: the Data API reads the"
                " database and its credentials from that secret"
            )
        if not self.warehouse_url and not self.warehouse_secret_arn and not self.is_remote:
            target = str(Path(self.data_dir, "warehouse.duckdb").absolute())
            object.__setattr__(self, "warehouse_url", f"duckdb:///{target}")
        return self

    @property
    def is_remote(self) -> bool:
        """True when the data directory is an object store URL such as ``s3://``."""
        return is_url(self.data_dir)

    def path(self, *parts: str) -> str:
        """A location under the data directory, as a string usable by fsspec."""
        return "/".join([self.data_dir.rstrip("/"), *parts])


def setting_names(settings: type[Settings] = Settings) -> frozenset[str]:
    """Every environment name a field of ``settings`` is read from."""
    return frozenset(PREFIX + name.upper() for name in settings.model_fields)


def unknown_names(names: Iterable[str], known: frozenset[str] | None = None) -> list[str]:
    """An error line for each ``FDP_*`` name in ``names`` that is neither a setting (of
    ``known``, all of ``Settings``' by default) nor one of ``NOT_SETTINGS``, with the closest
    setting when one is near (pydantic-settings reads names case-insensitively, and so does
    this check)."""
    known = setting_names() if known is None else known
    found = []
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known or upper in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(f"unknown setting {name}{hint}: every FDP_* variable must be a setting")
    return found
