"""What the CLI prints is text: never read as Rich markup, never a terminal control sequence,
never a secret."""

from __future__ import annotations

import pytest

from fdp.cli import output
from fdp.errors import DataError
from fdp.redaction import register_secret

HOSTILE = "[/red] [bold]x[/bold] \x1b[2J\x1b[31mred\r overwritten \x07"


def test_an_error_prints_markup_and_escapes_literally(capsys: pytest.CaptureFixture[str]) -> None:
    register_secret("PRINTKEY-77")
    output.print_error(
        "error", DataError(f"bad value {HOSTILE} PRINTKEY-77", file="f.json", hint=HOSTILE)
    )
    err = capsys.readouterr().err
    assert "[/red] [bold]x[/bold]" in err
    assert "\\x1b[2J" in err
    assert "\\r" in err
    assert "\x1b[2J" not in err
    assert "\r" not in err
    assert "\x07" not in err
    assert "PRINTKEY-77" not in err
    assert "file: f.json" in err


def test_table_cells_and_titles_are_text(capsys: pytest.CaptureFixture[str]) -> None:
    output.say(output.table(f"title {HOSTILE}", ("a [b]", "c"), [(HOSTILE, None)]))
    out = capsys.readouterr().out
    assert out.count("[/red] [bold]x[/bold]") == 2
    assert "a [b]" in out
    assert "\x1b[2J" not in out
