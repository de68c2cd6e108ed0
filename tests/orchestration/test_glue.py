"""The Glue transform path against moto's server mode: a LOCAL STAND-IN for AWS Glue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from fdp.errors import TerminalError
from fdp.orchestration.glue import run_glue_transform


@pytest.fixture
def glue_on_moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("glue", region_name="us-east-1", endpoint_url=f"http://{host}:{port}")
    yield client
    server.stop()


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
    assert run["Arguments"] == {"--fdp_run_date": "2024-12-24", "--fdp_source": "simulator"}


def test_missing_glue_job_is_terminal_on_moto_server_stand_in(glue_on_moto_server: Any) -> None:
    with pytest.raises(TerminalError, match="'nope' does not exist"):
        run_glue_transform("nope", dt.date(2024, 12, 24), "simulator", client=glue_on_moto_server)
