"""The ``fdp`` group: settings from the environment, shared options, and the one place that
turns errors into the documented exit status and a readable message."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fdp.config import Settings
from fdp.errors import ConfigError, DataError, FdpError
from fdp.sources import SOURCES

F = TypeVar("F", bound=Callable[..., Any])

FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2199, 12, 31)
"""Dates fdp accepts on the command line: market data outside them is a typing slip."""


class _Group(click.Group):
    """Runs a command; fdp's errors become a message and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        from fdp.cli import output

        try:
            return super().invoke(ctx)
        except (ConfigError, DataError) as exc:
            output.print_error("error", exc)
            sys.exit(2)
        except FdpError as exc:
            output.print_error("failed", exc)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            output.print_crash(exc)
            sys.exit(1)


class DateType(click.ParamType[dt.date]):
    """An ISO date (YYYY-MM-DD) between ``FIRST_DATE`` and ``LAST_DATE``."""

    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)
        if not FIRST_DATE <= day <= LAST_DATE:
            self.fail(f"{day} is outside {FIRST_DATE} to {LAST_DATE}", param, ctx)
        return day


DATE = DateType()


def source_option(default: str | None = None) -> Callable[[F], F]:
    """``--source``: which source's raw batches a command reads or lands."""
    return click.option(
        "--source",
        type=click.Choice(SOURCES),
        default=default,
        show_default=default is not None,
        help="raw-zone source of the batch"
        + ("" if default else " (default: the only source with a batch for the date)"),
    )


def date_options(what: str) -> Callable[[F], F]:
    """``--date D`` or ``--start A --end B``."""

    def add(command: F) -> F:
        command = click.option("--end", type=DATE, help="last run date of a range")(command)
        command = click.option("--start", type=DATE, help="first run date of a range")(command)
        return click.option("--date", "run_date", type=DATE, help=f"the run date {what}")(command)

    return add


def one_date_or_range(
    run_date: dt.date | None, start: dt.date | None, end: dt.date | None
) -> tuple[dt.date, dt.date] | dt.date:
    """A single date, or a (start, end) range the right way round."""
    from fdp.pipeline import check_range

    if run_date is not None and start is None and end is None:
        return run_date
    if run_date is None and start is not None and end is not None:
        check_range(start, end)
        return start, end
    raise ConfigError("give --date D, or --start A and --end B")


def settings(**overrides: Any) -> Settings:
    """Settings from the environment (and the command's own options); a bad value is a usage
    error naming the variable."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(f"invalid FDP_* setting: {exc}") from None


@click.group(cls=_Group)
@click.version_option(package_name="fdp")
def main() -> None:
    """fdp: the Financial Data Platform."""


def _register() -> None:
    from fdp.cli import actions, data, query, report, sources, stages, tools

    for module in (sources, stages, query, data, report, actions, tools):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
