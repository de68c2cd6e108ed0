"""How Airflow retries fdp's tasks: the class of the error decides, never its message.

A ``TransientError`` (rate limit, network, busy database) or a raw I/O error propagates and
is retried with exponential backoff. Anything else becomes ``AirflowFailException``, which
fails the task at once whatever its retries: a ``TerminalError`` (bad data, bad configuration,
a failed quality gate) never succeeds on retry, and neither does a bug (``TypeError``...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from fdp.errors import TerminalError, TransientError

API_POOL = "alpha_vantage_api"
"""The Airflow pool that caps concurrent vendor API calls (create it with ``pools.json``)."""

RETRY_DEFAULTS: dict[str, Any] = {
    "retries": 4,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=15),
}

T = TypeVar("T")


def _fail_exception() -> type[Exception]:
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # Airflow 2.10
        from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    return AirflowFailException


RETRYABLE: tuple[type[Exception], ...] = (TransientError, OSError)


def run_with_policy(call: Callable[[], T]) -> T:
    """``call()``; an error that a retry cannot fix is re-raised as Airflow's no-retry failure."""
    try:
        return call()
    except RETRYABLE:
        raise
    except TerminalError as exc:
        raise _fail_exception()(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        message = f"unexpected {type(exc).__name__} (a bug, not retried): {exc}"
        raise _fail_exception()(message) from exc
