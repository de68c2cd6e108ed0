"""The ``fdp`` command line: a thin layer over the stage functions.

Exit status: 0 success, 1 a failed run or quality gate, 2 bad usage or bad input.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from rich.console import Console

from fdp.config import Settings
from fdp.errors import ConfigError, DataError, FdpError

console = Console(stderr=False)
err_console = Console(stderr=True)


class _Group(click.Group):
    """Turns fdp's errors into one red line and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, DataError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(2)
        except FdpError as exc:
            err_console.print(f"[red]failed:[/red] {exc}", highlight=False)
            sys.exit(1)


class DateType(click.ParamType[dt.date]):
    """An ISO date (YYYY-MM-DD) on the command line."""

    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


DATE = DateType()


@click.group(cls=_Group)
@click.version_option(package_name="fdp")
def main() -> None:
    """fdp: the Financial Data Platform."""


def settings() -> Settings:
    """Settings from the environment; a bad value is a usage error naming the variable."""
    try:
        return Settings()
    except ValueError as exc:
        raise ConfigError(f"invalid FDP_* setting: {exc}") from None
