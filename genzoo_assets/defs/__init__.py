"""Dagster layer: one thin module per stage; each asset reads files, calls one core function, writes."""
