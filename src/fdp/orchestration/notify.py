"""Failure and success notices: logged always, posted to a Slack webhook when configured.

The webhook URL is the ``slack_webhook_url`` setting (``FDP_SLACK_WEBHOOK_URL``), a secret
never logged.
A notice that cannot be delivered is logged and dropped: a callback must not fail a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from fdp.config import Settings

log = logging.getLogger(__name__)


def post_slack(text: str, url: str | None = None, timeout_s: float = 10.0) -> bool:
    """Post ``text`` to the webhook (``url`` or the setting's); True when Slack accepted it."""
    if not url:
        try:
            webhook = Settings().slack_webhook_url
        except ValueError as exc:  # bad settings fail the tasks themselves, not the notice
            log.warning("Slack notice not sent: %s", exc)
            return False
        url = webhook.get_secret_value() if webhook else None
    if not url:
        return False
    try:
        response = httpx.post(url, json={"text": text}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        log.warning("Slack notice not delivered: %s", type(exc).__name__)
        return False
    if response.status_code >= 300:
        log.warning("Slack notice refused: HTTP %s", response.status_code)
        return False
    return True


def failure_text(context: Mapping[str, Any]) -> str:
    """One line naming the DAG, task, logical date, try and error, plus the log link."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    when = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    error = context.get("exception")
    parts = [
        f":red_circle: fdp {dag_id}.{task_id} failed",
        f"logical date {when.isoformat() if when is not None else '?'}",
        f"try {getattr(ti, 'try_number', '?')}",
        f"{type(error).__name__}: {error}"
        if error is not None
        else str(context.get("reason") or "no exception recorded"),
    ]
    url = getattr(ti, "log_url", None)
    if url:
        parts.append(f"<{url}|log>")
    return " | ".join(parts)


def on_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: log the failure and post it to Slack if configured."""
    text = failure_text(context)
    log.error("%s", text)
    post_slack(text)


def success_text(dag_id: str, session: str, results: list[Mapping[str, Any]]) -> str:
    """A run's summary: rows in/out/rejected per stage."""
    stages = ", ".join(
        f"{r['stage']} {r['rows_in']}->{r['rows_out']}"
        + (f" ({r['rows_rejected']} rejected)" if r.get("rows_rejected") else "")
        for r in results
    )
    return f":white_check_mark: fdp {dag_id} session {session}: {stages}"
