"""The retry policy's error translation and the Slack notifier, over a real loopback server."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fdp.errors import DataError, TransientError
from fdp.orchestration.notify import failure_text, on_failure, post_slack, success_text


class _Webhook(BaseHTTPRequestHandler):
    status = 200
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.received = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000"


def _context(error: Exception) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="financial_data_pipeline",
        task_id="validate",
        try_number=1,
        log_url="http://airflow/log",
    )
    when = dt.datetime(2024, 12, 24, 5, tzinfo=dt.UTC)
    return {"task_instance": ti, "logical_date": when, "exception": error}


def test_failure_callback_posts_to_the_slack_webhook(
    webhook: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDP_SLACK_WEBHOOK_URL", _url(webhook))
    on_failure(_context(DataError("symbol=AAPL date=2024-12-24 field=close: negative")))
    [message] = webhook.received  # type: ignore[attr-defined]
    text = message["text"]
    assert "financial_data_pipeline.validate failed" in text
    assert "2024-12-24T05:00:00+00:00" in text
    assert "DataError: symbol=AAPL date=2024-12-24 field=close: negative" in text
    assert "<http://airflow/log|log>" in text


def test_notifier_is_optional_and_never_raises(webhook: ThreadingHTTPServer) -> None:
    assert post_slack("hello") is False  # no FDP_SLACK_WEBHOOK_URL: logged only
    webhook.status = 500  # type: ignore[attr-defined]
    assert post_slack("hello", _url(webhook)) is False
    assert post_slack("hello", "http://127.0.0.1:9/closed", timeout_s=2) is False
    webhook.status = 200  # type: ignore[attr-defined]
    assert post_slack("hello", _url(webhook)) is True


def test_texts_name_what_happened() -> None:
    assert "no exception recorded" in failure_text({})
    results = [
        {"stage": "ingest", "rows_in": 2, "rows_out": 2, "rows_rejected": 0},
        {"stage": "validate", "rows_in": 2, "rows_out": 1, "rows_rejected": 1},
    ]
    text = success_text("dag", "2024-12-24", results)
    assert text.endswith("session 2024-12-24: ingest 2->2, validate 2->1 (1 rejected)")


@pytest.mark.airflow
def test_terminal_errors_fail_at_once_and_transient_ones_propagate(airflow_home: Path) -> None:
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # Airflow 2.10
        from airflow.exceptions import AirflowFailException

    from fdp.orchestration.policy import run_with_policy

    def bad_data() -> None:
        raise DataError("file=x symbol=AAPL: bad close")

    def rate_limited() -> None:
        raise TransientError("rate limit", retry_after=60)

    with pytest.raises(AirflowFailException, match="DataError: file=x symbol=AAPL") as failed:
        run_with_policy(bad_data)
    assert isinstance(failed.value.__cause__, DataError)
    with pytest.raises(TransientError):
        run_with_policy(rate_limited)

    def bug() -> None:
        raise TypeError("missing argument")

    with pytest.raises(AirflowFailException, match="unexpected TypeError"):
        run_with_policy(bug)

    def connection_reset() -> None:
        raise ConnectionResetError("peer reset")

    with pytest.raises(ConnectionResetError):
        run_with_policy(connection_reset)
    assert run_with_policy(lambda: 7) == 7
