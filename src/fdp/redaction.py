"""The one redaction applied to every string that leaves the process.

Console lines, log records, error messages, ``pipeline_runs``, reports and raw-zone metadata all
pass through ``redact``. It masks three things wherever they appear in a text:

- the values of secrets fdp has read (the vendor API key, passwords of configured URLs), each
  also in its URL-encoded forms, registered with ``register_secret`` as they are read;
- the password of any URL's user-info (``scheme://user:password@host`` keeps the user);
- the values of secret-bearing query parameters (``apikey=``, ``token=``, ...).

A value is masked by content, not by where it sits, so a vendor answer that echoes the request
URL into a field, or a library message that quotes it, is covered too.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4
"""Shorter values are not registered: masking every ``a`` in a text would hide the message."""

_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:apikey|api_key|key|token|access_token|secret|password|passwd|pwd)=)"
    r"[^&#\s\"'<>]*"
)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:\"'<>]*):[^/@\s\"'<>]*@")

_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) in every later ``redact``."""
    global _ordered
    if value is None or len(value.strip()) < MIN_SECRET:
        return
    forms = {value, value.strip(), quote(value, safe=""), quote_plus(value)}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET)
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def register_url(url: str | None) -> None:
    """Register the password of ``url``'s user-info, if it has one."""
    if not url:
        return
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secret(password)
        register_secret(unquote(password))


def redact(text: str) -> str:
    """``text`` with every registered secret, URL password and secret parameter masked."""
    out = _SECRET_PARAM.sub(rf"\g<1>{MASK}", text)
    out = _USERINFO.sub(rf"\g<1>:{MASK}@", out)
    for secret in _ordered:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def _redacted_record(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: let the handler report it
            return record
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # A handler formats the traceback later, quoting the exception's message: keep
            # the type and the redacted message, not the frames' text.
            exc = record.exc_info[1]
            record.msg = f"{record.msg} ({type(exc).__name__}: {redact(str(exc))})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return record

    make.fdp_redacting = True  # type: ignore[attr-defined]
    return make


def install_log_redaction() -> None:
    """Redact every log record of the process, whichever logger or handler takes it
    (records are redacted as they are created). Idempotent."""
    with _lock:
        factory = logging.getLogRecordFactory()
        if not getattr(factory, "fdp_redacting", False):
            logging.setLogRecordFactory(_redacted_record(factory))
