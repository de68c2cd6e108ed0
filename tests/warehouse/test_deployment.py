"""The warehouse from the deployment: ``FDP_WAREHOUSE_SECRET_ARN`` (a Secrets Manager secret
holding the URL or the credentials JSON AWS stores) and ``FDP_WAREHOUSE_WORKGROUP`` (Redshift
Serverless through the Data API), read from moto, the LOCAL STAND-IN for AWS; a remote data
directory without a warehouse is a configuration error, never a local DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.redaction import redact
from fdp.warehouse.connect import connect
from fdp.warehouse.deployment import REDSHIFT_STAGING, warehouse_url
from fdp.warehouse.redshift import RedshiftWarehouse, Target, copy_statement

PASSWORD = "Rs-Pw-7f3kQ9zL"  # a test credential


def redshift_secret() -> dict[str, Any]:
    """Credentials as AWS stores them for a Redshift Serverless admin (the stack's secret)."""
    return {
        "engine": "redshift",
        "username": "fdp_admin",
        "password": PASSWORD,
        "host": "fdp-dev.123456789012.us-east-1.redshift-serverless.amazonaws.com",
        "port": 5439,
        "dbname": "fdp",
    }


def put_secret(aws_env: str, name: str, value: str) -> str:
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    return str(client.create_secret(Name=name, SecretString=value)["ARN"])


def deployed(aws_env: str, arn: str, **more: Any) -> Settings:
    return Settings(
        data_dir="s3://fdp-dev-lake",
        warehouse_secret_arn=arn,
        secrets_endpoint_url=aws_env,
        aws_region="us-east-1",
        **more,
    )


def test_moto_redshift_secret_and_workgroup_load_through_the_data_api(aws_env: str) -> None:
    import boto3

    arn = put_secret(aws_env, "fdp/dev/warehouse-a", json.dumps(redshift_secret()))
    settings = deployed(aws_env, arn, warehouse_workgroup="fdp-dev")
    url = warehouse_url(settings)

    target = Target.parse(url)
    assert target.where() == {"Database": "fdp", "WorkgroupName": "fdp-dev", "SecretArn": arn}
    assert target.staging == f"s3://fdp-dev-lake/{REDSHIFT_STAGING}"
    assert target.region == "us-east-1"
    assert "IAM_ROLE default" in copy_statement(f"{target.staging}/x.parquet", target.iam_role)
    assert PASSWORD not in url
    assert redact(f"login failed for {PASSWORD}") == "login failed for ***"
    assert isinstance(connect("", settings), RedshiftWarehouse)
    # the Data API (moto) takes exactly these arguments: botocore checks their shapes
    data_api = boto3.client("redshift-data", endpoint_url=aws_env, region_name="us-east-1")
    statement = data_api.execute_statement(Sql="SELECT 1", **target.where())
    described = data_api.describe_statement(Id=statement["Id"])
    assert (described["SecretArn"], described["Database"]) == (arn, "fdp")


def test_moto_provisioned_redshift_secret_names_its_cluster(aws_env: str) -> None:
    doc = redshift_secret() | {"dbClusterIdentifier": "fdp-cluster"}
    arn = put_secret(aws_env, "fdp/dev/warehouse-b", json.dumps(doc))
    target = Target.parse(warehouse_url(deployed(aws_env, arn)))
    cluster = {"Database": "fdp", "ClusterIdentifier": "fdp-cluster", "SecretArn": arn}
    assert target.where() == cluster


def test_moto_redshift_secret_without_a_workgroup_asks_for_one(aws_env: str) -> None:
    arn = put_secret(aws_env, "fdp/dev/warehouse-c", json.dumps(redshift_secret()))
    with pytest.raises(ConfigError, match="set FDP_WAREHOUSE_WORKGROUP"):
        warehouse_url(deployed(aws_env, arn))


def test_moto_secret_holding_a_url_is_that_url_with_its_password_masked(aws_env: str) -> None:
    url = "postgresql://loader:Pg-Secret-51x@db.internal:5432/warehouse"
    arn = put_secret(aws_env, "fdp/dev/warehouse-d", f"{url}\n")
    assert warehouse_url(deployed(aws_env, arn)) == url
    assert "Pg-Secret-51x" not in redact(f"could not connect to {url} (Pg-Secret-51x)")


@pytest.mark.postgres
def test_moto_postgres_credentials_json_reach_a_real_postgres(
    aws_env: str, pg_database: str
) -> None:
    from urllib.parse import urlsplit

    from fdp.warehouse.migrations import MIGRATIONS, migrate

    pg = urlsplit(pg_database)
    doc = {
        "engine": "postgres",
        "username": pg.username or "postgres",
        "password": "p@ss/word:1",  # trust auth ignores it; it must survive quoting
        "host": pg.hostname,
        "port": pg.port or 5432,
        "dbname": pg.path.lstrip("/"),
    }
    arn = put_secret(aws_env, "fdp/dev/warehouse-e", json.dumps(doc))
    settings = deployed(aws_env, arn)
    warehouse = connect(settings.warehouse_url, settings)
    migrate(warehouse)  # the session's database: other tests may have migrated it already
    done = warehouse.query("SELECT max(version) AS v FROM schema_migrations").to_pylist()
    assert done == [{"v": MIGRATIONS[-1].version}]
    assert "p@ss/word:1" not in redact(f"{warehouse_url(settings)} p@ss/word:1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a url or json Sekret-Text-1", "neither a warehouse URL nor database credentials"),
        ('["a"]', "neither a warehouse URL nor database credentials"),
        (json.dumps({"engine": "mysql", "password": "Sekret-Text-1"}), "'mysql' is not a"),
        (json.dumps({"engine": "postgres", "password": "Sekret-Text-1"}), "without username"),
    ],
)
def test_moto_unusable_secret_is_a_config_error_that_never_prints_it(
    aws_env: str, text: str, message: str
) -> None:
    arn = put_secret(aws_env, f"fdp/dev/bad-{abs(hash(text))}", text)
    with pytest.raises(ConfigError, match=message) as refused:
        warehouse_url(deployed(aws_env, arn))
    assert "Sekret-Text-1" not in str(refused.value)


def test_moto_missing_secret_is_a_config_error_naming_it(aws_env: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fdp/none-AbCdEf"
    with pytest.raises(ConfigError, match="fdp/none-AbCdEf"):
        warehouse_url(deployed(aws_env, arn))


def test_an_explicit_url_wins_without_reading_the_secret() -> None:
    settings = Settings(
        data_dir="s3://fdp-dev-lake",
        warehouse_url="postgresql://u@h/db",
        warehouse_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x",
        secrets_endpoint_url="http://127.0.0.1:9",  # nothing listens: a read would fail
    )
    assert warehouse_url(settings) == "postgresql://u@h/db"


def test_a_workgroup_needs_the_secret() -> None:
    with pytest.raises(ValueError, match="FDP_WAREHOUSE_WORKGROUP needs FDP_WAREHOUSE_SECRET_ARN"):
        Settings(data_dir="s3://fdp-dev-lake", warehouse_workgroup="fdp-dev")


def test_remote_data_dir_without_a_warehouse_asks_for_one_and_writes_nothing_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir="s3://fdp-dev-lake/prod")
    assert settings.warehouse_url == ""  # never duckdb:///s3:/...
    with pytest.raises(ConfigError, match="FDP_WAREHOUSE_SECRET_ARN"):
        connect(settings.warehouse_url, settings)
    result = CliRunner().invoke(
        main, ["load", "--date", "2024-01-02"], env={"FDP_DATA_DIR": "s3://fdp-dev-lake/prod"}
    )
    assert result.exit_code == 2, result.output
    assert "no warehouse is set: set FDP_WAREHOUSE_URL, or FDP_WAREHOUSE_SECRET_ARN" in (
        result.output
    )
    assert list(tmp_path.iterdir()) == []


def test_a_local_data_dir_keeps_its_duckdb_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    assert settings.warehouse_url == f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
