"""Market data sources and the raw zone they land in."""
