"""The warehouse a deployment names, resolved into a warehouse URL.

``FDP_WAREHOUSE_URL`` wins when set. Otherwise ``FDP_WAREHOUSE_SECRET_ARN`` names a Secrets
Manager secret holding either the URL itself or credentials JSON as AWS stores them for a
database (``username``, ``password``, ``host``, ``port``, ``dbname``, ``engine``): a Redshift
one is loaded through the Data API (the workgroup ``FDP_WAREHOUSE_WORKGROUP``, or the secret's
``dbClusterIdentifier``) with the secret as its credentials, a PostgreSQL one over the wire.
A local data directory with neither keeps its DuckDB file (``Settings`` sets that URL); a
remote one with neither is a configuration error: a DuckDB file cannot live in an object store.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fdp.aws_secrets import read_secret
from fdp.config import Settings, is_url
from fdp.errors import ConfigError
from fdp.redaction import register_secret, register_url

REDSHIFT_STAGING = "redshift-staging"
"""The lake prefix the Redshift loader stages its COPY files under (expired by the stack)."""
DEFAULT_IAM_ROLE = "default"
"""COPY runs as the namespace's default IAM role (the stack sets it), so no ARN is configured."""


def warehouse_url(settings: Settings) -> str:
    """The URL of the warehouse ``settings`` name (reading the secret when one is set)."""
    if settings.warehouse_url:
        return settings.warehouse_url
    arn = settings.warehouse_secret_arn
    if arn:
        return from_secret(settings, arn, read_secret(settings, arn))
    raise ConfigError(
        f"FDP_DATA_DIR {settings.data_dir} is an object store and no warehouse is set: set"
        " FDP_WAREHOUSE_URL, or FDP_WAREHOUSE_SECRET_ARN (and FDP_WAREHOUSE_WORKGROUP for"
        " Redshift Serverless); a DuckDB file cannot live in an object store"
    )


def from_secret(settings: Settings, arn: str, text: str) -> str:
    """The warehouse URL secret ``arn`` holds, as text ``text``; its password is masked in
    every later output before anything else happens."""
    if is_url(text):
        register_url(text)
        return text
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"secret {arn} holds neither a warehouse URL nor database credentials JSON"
            " (username, password, host, port, dbname, engine)"
        )
    register_secret(str(doc.get("password") or ""))
    engine = str(doc.get("engine") or "").lower()
    if settings.warehouse_workgroup or engine == "redshift":
        return _data_api_url(settings, arn, doc)
    if engine in ("postgres", "postgresql"):
        return _postgres_url(arn, doc)
    raise ConfigError(
        f"secret {arn}: engine {engine or '(none)'!r} is not a warehouse fdp loads;"
        " expected redshift or postgres"
    )


def _data_api_url(settings: Settings, arn: str, doc: dict[str, Any]) -> str:
    """A ``redshift://`` URL for the Data API, with the secret as its credentials."""
    if settings.warehouse_workgroup:
        name, where = settings.warehouse_workgroup, {"serverless": "true"}
    elif doc.get("dbClusterIdentifier"):
        name, where = str(doc["dbClusterIdentifier"]), {}
    else:
        raise ConfigError(
            f"secret {arn} is a Redshift secret without dbClusterIdentifier: set"
            " FDP_WAREHOUSE_WORKGROUP to the Redshift Serverless workgroup"
        )
    query = where | {
        "secret_arn": arn,
        "iam_role": DEFAULT_IAM_ROLE,
        "staging": settings.path(REDSHIFT_STAGING),
    }
    if settings.aws_region:
        query["region"] = settings.aws_region
    return f"redshift://{name}/{quote(str(doc.get('dbname') or 'dev'))}?{urlencode(query)}"


def _postgres_url(arn: str, doc: dict[str, Any]) -> str:
    missing = [k for k in ("username", "password", "host") if not doc.get(k)]
    if missing:
        raise ConfigError(f"secret {arn}: PostgreSQL credentials without {', '.join(missing)}")
    user, password = quote(str(doc["username"]), safe=""), quote(str(doc["password"]), safe="")
    url = (
        f"postgresql://{user}:{password}@{doc['host']}:{doc.get('port') or 5432}"
        f"/{quote(str(doc.get('dbname') or 'postgres'))}"
    )
    register_url(url)
    return url
