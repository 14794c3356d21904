"""The DuckDB catalog: a snapshot of every stage's Parquet files (:mod:`.refresh`), read with
sandboxed SQL (:mod:`.query`); the file, its lock and its errors are in :mod:`.store`.

The package exports no ``query`` function: the name is its submodule's
(``from genzoo_assets.core.catalog import query; query.query(sql)``).
"""

from genzoo_assets.core.catalog.query import catalog_views, query_batches
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.store import CatalogMissingError, CatalogQueryError, catalog_path

__all__ = [
    "CatalogMissingError",
    "CatalogQueryError",
    "catalog_path",
    "catalog_views",
    "query_batches",
    "refresh_catalog",
]
