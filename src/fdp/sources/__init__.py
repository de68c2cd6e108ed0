"""Market data sources and the raw zone they land in."""

SOURCES = ("simulator", "alpha_vantage")
"""The sources a raw batch can come from (the raw zone's ``source=`` partition)."""
