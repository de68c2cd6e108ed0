"""One error root for fdp, split by what the caller should do about it.

Orchestrators (the CLI, the Airflow DAG) decide from the class, never from message text:
a ``TransientError`` may succeed if retried later, a ``TerminalError`` never will.

An error also carries *where* the problem is (file, symbol, date, field) and a hint saying what
to do, as fields: the CLI renders them, ``pipeline_runs`` stores them. Every message passes
through ``fdp.redaction`` when it is built, so no error can carry a secret out of the process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fdp.redaction import redact

WHERE = ("file", "symbol", "date", "field")
"""The structured fields that say where an error is, in the order they are shown."""


class FdpError(Exception):
    """Root of every error fdp raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        symbol: str | None = None,
        date: dt.date | str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = redact(message)
        self.file = None if file is None else redact(str(file))
        self.symbol = symbol
        self.date = None if date is None else str(date)
        self.field = field
        self.hint = None if hint is None else redact(hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        """The message (redacted when it was built; redacted again for secrets learnt since)."""
        return redact(self.message)

    def details(self) -> dict[str, str]:
        """The structured fields that are set (``hint`` last), for renderers and stores."""
        found = {name: getattr(self, name) for name in (*WHERE, "hint")}
        return {k: redact(v) for k, v in found.items() if v is not None}

    def with_context(self, **fields: Any) -> FdpError:
        """This error with ``fields`` filled where it has none (the caller knew more)."""
        for name, value in fields.items():
            if getattr(self, name, None) is None and value is not None:
                setattr(self, name, str(value) if name == "date" else value)
        return self


class TerminalError(FdpError):
    """Retrying cannot help: bad input, bad configuration, a failed quality gate."""


class TransientError(FdpError):
    """A retry later may succeed: rate limits, network faults, a busy database."""

    def __init__(self, message: str, retry_after: float | None = None, **where: Any) -> None:
        super().__init__(message, **where)
        self.retry_after = retry_after


class ConfigError(TerminalError):
    """A setting or command-line value is invalid; exit status 2."""


class DataError(TerminalError):
    """Input data is malformed; the message names the file, symbol, date and field."""


class MissingDependencyError(TerminalError):
    """An optional extra is not installed; the message carries the pip command."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'fdp[{extra}]'")
