"""The Dagster entry point: everything under ``genzoo_assets/defs`` (dg-style defs folder)."""

from pathlib import Path

import dagster as dg

from genzoo_assets.defs.partition_range import ignore_mixed_policy_warning

# Set here, not in the job's module: the defs folder is imported with the filters saved.
ignore_mixed_policy_warning()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
