"""Species sampling frame: MDD loader, bundled species and dog breeds, the species table and plan."""

from genzoo_assets.core.taxonomy.bundled import bundled_species, dog_breeds
from genzoo_assets.core.taxonomy.mdd import DEFAULT_DROP_TAXA, MDDFormatError, filter_mdd, load_mdd
from genzoo_assets.core.taxonomy.table import (
    TABLE_COLUMNS,
    InvalidSpeciesError,
    UnknownSpeciesError,
    add_species,
    build_species_table,
    resolve_species,
    slugify,
    validate_partition_key,
)

__all__ = [
    "DEFAULT_DROP_TAXA",
    "TABLE_COLUMNS",
    "InvalidSpeciesError",
    "MDDFormatError",
    "UnknownSpeciesError",
    "add_species",
    "build_species_table",
    "bundled_species",
    "dog_breeds",
    "filter_mdd",
    "load_mdd",
    "resolve_species",
    "slugify",
    "validate_partition_key",
]
