"""Everything the command line prints, and the one rule for printing it: text from vendors,
users and data is shown as text, never read as markup, and it is redacted.

Rich renders tables and progress bars; a value reaches it as ``rich.text.Text`` (which Rich
never parses for markup), titles and messages too. Error lines go through ``click`` with an
explicit style, so an error can be printed before Rich is imported (a command that finds
nothing to do answers fast).
"""

from __future__ import annotations

import traceback
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import click

from fdp.errors import WHERE, FdpError
from fdp.redaction import redact

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text


@cache
def console() -> Console:
    """Standard output (tables, summaries)."""
    from rich.console import Console

    return Console(highlight=False)


@cache
def err_console() -> Console:
    """Standard error (progress, per-stage lines)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def text(value: object, style: str = "") -> Text:
    """``value`` as literal, redacted text (``None`` as an empty cell)."""
    from rich.text import Text

    return Text(printable(value), style=style)


def printable(value: object) -> str:
    """``value`` redacted, with control characters (terminal escapes, carriage returns) shown
    escaped: a value cannot move the cursor or recolour the terminal. Line breaks and tabs are
    kept (query plans and gate failures span lines)."""
    plain = "" if value is None else redact(str(value))
    return "".join(c if c in "\n\t" or c.isprintable() else repr(c)[1:-1] for c in plain)


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    numbers: Collection[str] = (),
) -> Table:
    """A table whose title, headers and cells are all literal text; ``numbers`` name the
    columns aligned right."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=text(title))
    for name in columns:
        grid.add_column(text(name), overflow="fold", justify="right" if name in numbers else "left")
    for row in rows:
        grid.add_row(*(c if isinstance(c, Text) else text(c) for c in row))
    return grid


def say(*parts: object) -> None:
    """Print a line (or a renderable) on standard output."""
    console().print(*(text(p) if isinstance(p, str) else p for p in parts))


def note(message: str, style: str = "") -> None:
    """Print a line on standard error."""
    err_console().print(text(message, style))


def error_lines(exc: FdpError) -> list[str]:
    """The message, then where (the fields its message does not already say), then the hint."""
    message = str(exc)
    details = exc.details()
    where = [f"{k}: {details[k]}" for k in WHERE if k in details and details[k] not in message]
    lines = [message]
    if where:
        lines.append("  " + ", ".join(where))
    if "hint" in details:
        lines.append(f"  hint: {details['hint']}")
    return lines


def print_error(label: str, exc: FdpError) -> None:
    """``label: message`` in red, then its details, on standard error."""
    first, *rest = error_lines(exc)
    click.echo(click.style(f"{label}:", fg="red") + " " + printable(first), err=True)
    for line in rest:
        click.echo(printable(line), err=True)


def print_crash(exc: BaseException) -> None:
    """An unexpected exception: its redacted traceback, for a bug report."""
    click.echo(printable("".join(traceback.format_exception(exc))).rstrip(), err=True)
    message = printable(f"{type(exc).__name__}: {exc}")
    click.echo(click.style("internal error:", fg="red") + f" {message}", err=True)


def results_table(title: str, results: Sequence[Any]) -> Table:
    """One row per task result: stage, date, rows, seconds."""
    numbers = ("rows in", "rows out", "rejected", "seconds")
    return table(
        title,
        ("stage", "date", *numbers),
        (
            (
                r.stage,
                r.run_date,
                f"{r.rows_in:,}",
                f"{r.rows_out:,}",
                f"{r.rows_rejected:,}",
                f"{r.duration_s:.2f}",
            )
            for r in results
        ),
        numbers,
    )


def stage_line(result: Any) -> None:
    """The one line a finished stage prints while a run goes on."""
    from rich.text import Text

    line = Text.assemble(
        ("✓ ", "green"),
        text(
            f"{result.stage:<9} {result.run_date}  {result.rows_out:>9,} rows"
            f"  {result.duration_s:6.2f} s"
        ),
    )
    err_console().print(line)
