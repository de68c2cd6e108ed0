"""The Glue transform path against moto's server mode: a LOCAL STAND-IN for AWS Glue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fdp.errors import TerminalError
from fdp.orchestration.glue import run_glue_transform


@pytest.fixture
def glue_on_moto_server(aws_env: str) -> Any:
    import boto3

    return boto3.client("glue", region_name="us-east-1", endpoint_url=aws_env)


def test_glue_job_run_started_and_awaited_on_moto_server_stand_in(glue_on_moto_server: Any) -> None:
    client = glue_on_moto_server
    client.create_job(
        Name="fdp-transform",
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://bucket/fdp_transform.py"},
    )
    run = run_glue_transform(
        "fdp-transform", dt.date(2024, 12, 24), "simulator", poll_s=0.01, client=client
    )
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["Arguments"] == {"--date": "2024-12-24", "--source": "simulator"}


def test_missing_glue_job_is_terminal_on_moto_server_stand_in(glue_on_moto_server: Any) -> None:
    with pytest.raises(TerminalError, match="'nope' does not exist"):
        run_glue_transform("nope", dt.date(2024, 12, 24), "simulator", client=glue_on_moto_server)
