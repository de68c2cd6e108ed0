"""fdp: the Financial Data Platform.

``fdp.read`` (``fdp.data.read``) returns curated prices and indicators as a data frame; it is
imported on first use, so ``import fdp`` (and every CLI command) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "read"]


def __getattr__(name: str) -> Any:
    if name == "read":
        from fdp.data import read

        return read
    raise AttributeError(f"module 'fdp' has no attribute {name!r}")
