"""NYSE holidays as published by the exchange: a reference independent of the calendar library."""

from __future__ import annotations

import datetime as dt

HOLIDAYS_2024 = frozenset(
    dt.date(2024, m, d)
    for m, d in [
        (1, 1),
        (1, 15),
        (2, 19),
        (3, 29),
        (5, 27),
        (6, 19),
        (7, 4),
        (9, 2),
        (11, 28),
        (12, 25),
    ]
)
