"""Catalog: Parquet tables written atomically, a DuckDB snapshot of them (refreshed incrementally), provenance."""

from genzoo_assets.core.catalog.duckdb_catalog import (
    CatalogMissingError,
    CatalogQueryError,
    catalog_path,
    catalog_views,
    query,
    refresh_catalog,
)
from genzoo_assets.core.catalog.parquet import TableWriteError, read_table, write_table_atomic

__all__ = [
    "CatalogMissingError",
    "CatalogQueryError",
    "TableWriteError",
    "catalog_path",
    "catalog_views",
    "query",
    "read_table",
    "refresh_catalog",
    "write_table_atomic",
]
