"""The DuckDB catalog: a snapshot of every stage's Parquet files (:mod:`refresh`), read with
sandboxed SQL (:mod:`query`); the file, its lock and its errors are in :mod:`store`."""

# `query` stays the submodule (callers write `query.query(...)`); importing the function of the same
# name here would shadow it, and `from genzoo_assets.core.catalog import query` would get the function.
from genzoo_assets.core.catalog import query
from genzoo_assets.core.catalog.query import catalog_views, query_batches
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.store import CatalogMissingError, CatalogQueryError, catalog_path

__all__ = [
    "CatalogMissingError",
    "CatalogQueryError",
    "catalog_path",
    "catalog_views",
    "query",
    "query_batches",
    "refresh_catalog",
]
