"""One error root for fdp, split by what the caller should do about it.

Orchestrators (the CLI, the Airflow DAG) decide from the class, never from message text:
a ``TransientError`` may succeed if retried later, a ``TerminalError`` never will.
"""

from __future__ import annotations


class FdpError(Exception):
    """Root of every error fdp raises on purpose."""


class TerminalError(FdpError):
    """Retrying cannot help: bad input, bad configuration, a failed quality gate."""


class TransientError(FdpError):
    """A retry later may succeed: rate limits, network faults, a busy database."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(TerminalError):
    """A setting or command-line value is invalid; exit status 2."""


class DataError(TerminalError):
    """Input data is malformed; the message names the file, symbol, date and field."""


class MissingDependencyError(TerminalError):
    """An optional extra is not installed; the message carries the pip command."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'fdp[{extra}]'")
