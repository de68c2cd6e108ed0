"""The cleansing rules, declared once as data: what each tests and the reason a rejected row
carries. ``fdp.transform.kernel`` renders them (every engine runs that kernel), and the docs
can list them from here.

A rule tests one column (of the raw row, or ``trade_date`` and the upper-cased ``symbol``
derived from it) with one of a few checks; a row failing several rules is rejected by the
first. A reason template shows the raw ``{value}`` of ``shown`` (the tested column unless
given) and ``{other}`` of ``other``, so a rejection names the value that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fdp.records import TICKER_PATTERN

Check = Literal["ticker", "date", "not_after", "finite", "non_negative", "positive"]
"""``ticker``: matches ``TICKER_PATTERN`` once upper-cased; ``date``: a YYYY-MM-DD date;
``not_after``: not later than ``other``; ``finite``: a number, not NaN or infinite;
``non_negative``: >= 0; ``positive``: > 0. A null passes every check but ``date``."""


@dataclass(frozen=True, slots=True)
class CleanseRule:
    """Rows whose ``column`` fails ``check`` are rejected as ``name`` with ``reason``."""

    name: str
    column: str
    check: Check
    reason: str
    other: str | None = None
    shown: str | None = None

    @property
    def shown_column(self) -> str:
        return self.shown or self.column


PRICES = ("open", "high", "low", "close", "adjusted_close")
FLOATS = (*PRICES, "dividend_amount", "split_coefficient")
"""The float fields of a bar: a NaN or an infinity in any of them rejects the row."""

RULES = (
    CleanseRule(
        "symbol_pattern", "symbol", "ticker", f"symbol {{value}} does not match {TICKER_PATTERN}"
    ),
    CleanseRule(
        "trade_date",
        "trade_date",
        "date",
        "timestamp {value} is not a YYYY-MM-DD date",
        shown="timestamp",
    ),
    CleanseRule(
        "after_ingest_date",
        "trade_date",
        "not_after",
        "trade date {value} is after its ingest date {other}",
        other="ingest_date",
        shown="timestamp",
    ),
    *(
        CleanseRule(f"non_finite_{c}", c, "finite", f"{c} {{value}} is not a finite number")
        for c in FLOATS
    ),
    *(
        CleanseRule(f"negative_{c}", c, "non_negative", f"{c} {{value}} < 0")
        for c in (*PRICES, "volume", "dividend_amount")
    ),
    CleanseRule(
        "split_coefficient", "split_coefficient", "positive", "split_coefficient {value} <= 0"
    ),
)
"""Every cleansing rule, in the order a row's first failure is named."""

DUPLICATE_KEY = "duplicate_key"
"""A valid row of a (symbol, trade_date) that a later ingest of the batch supersedes."""
