"""The Dagster entry point: everything under ``genzoo_assets/defs`` (dg-style defs folder)."""

import warnings
from pathlib import Path

import dagster as dg

# `generate_samples` (and any ad-hoc selection, such as the `genzoo` commands') spans the CPU
# stages (one partition a run) and the GPU stages (``defs.partition_range.MODEL_BACKFILL``):
# Dagster warns whenever it resolves the job, and runs it
# one partition a run, which is what its requests (one partition key each) mean. Several partitions
# a run come from asset backfills, which group the assets by policy (docs/ARCHITECTURE.md, "GPU
# steps"). Set here, not in the job's module: the defs folder is imported with the filters saved.
warnings.filterwarnings(
    "ignore",
    message=r"Asset job \S+ materializes assets with varying BackfillPolicies",
    category=UserWarning,
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
