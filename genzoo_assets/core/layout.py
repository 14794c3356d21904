"""The data directory's layout: the one place every path under it is spelled.

Everything the pipeline writes lives under one data directory (:func:`genzoo_assets.core.paths.data_dir`),
and paths stored in tables are relative to it, so a data directory can be moved or shared. Every
module that reads or writes a file there asks this module for its path; a test greps the package for
the folder names below and fails on any spelled elsewhere.

::

    species/species.parquet, frame.parquet, added.parquet, .species.lock
    <stage>/<species>/<shard>.parquet         one per per-sample stage (SAMPLE_STAGES)
    <stage>/<species>/<shard>/...             that partition's files (renders, images)
    previews/<stage>/<name>.png               contact sheets
    catalog.duckdb, results.duckdb
    shards/                                   the WebDataset export (current -> export-<id>/)
    regressor/                                checkpoint.pt, lineage.parquet, history.parquet, ...
    benchmark/<test_set>/                     predictions.parquet, report files
    planning/plans/<plan_id>.json             sampling plans (immutable, named by their content)
    planning/rounds.parquet                   which species × shard each planned round generates
"""

from __future__ import annotations

import os
from pathlib import Path

# The per-sample stages, in pipeline order: their assets, their tables and their folders share
# these names.
SAMPLE_STAGES = ("shape_params", "pose_params", "control_renders", "captions", "prompts", "images")

SPECIES_DIR = "species"
SHARDS_DIR = "shards"
REGRESSOR_DIR = "regressor"
BENCHMARK_DIR = "benchmark"
PREVIEWS_DIR = "previews"
CATALOG_FILE = "catalog.duckdb"
RESULTS_FILE = "results.duckdb"
PLANNING_DIR = "planning"

PathLike = str | os.PathLike


def species_dir(root: PathLike) -> Path:
    """The species table and its inputs."""
    return Path(root) / SPECIES_DIR


def species_table(root: PathLike) -> Path:
    """``species.parquet``: written by the ``species`` asset only, read by every stage."""
    return species_dir(root) / "species.parquet"


def species_frame(root: PathLike) -> Path:
    """``frame.parquet``: the MDD frame imported with ``genzoo species import-mdd``."""
    return species_dir(root) / "frame.parquet"


def species_added(root: PathLike) -> Path:
    """``added.parquet``: species requested with ``genzoo species add`` (append-only)."""
    return species_dir(root) / "added.parquet"


def species_lock(root: PathLike) -> Path:
    """Held by every read-modify-write of the species inputs and by the asset's rebuild."""
    return species_dir(root) / ".species.lock"


def stage_dir(root: PathLike, stage: str) -> Path:
    """The folder of one per-sample stage."""
    if stage not in SAMPLE_STAGES:
        raise ValueError(f"unknown per-sample stage {stage!r}; the stages are {SAMPLE_STAGES}")
    return Path(root) / stage


def partition_table(root: PathLike, stage: str, species: str, shard: str) -> Path:
    """``<stage>/<species>/<shard>.parquet``: one row per sample of the partition."""
    return stage_dir(root, stage) / species / f"{shard}.parquet"


def partition_files(root: PathLike, stage: str, species: str, shard: str) -> Path:
    """``<stage>/<species>/<shard>/``: the partition's image files."""
    return stage_dir(root, stage) / species / shard


def previews_dir(root: PathLike, stage: str) -> Path:
    """Contact sheets of a stage (``previews/<stage>/``)."""
    return Path(root) / PREVIEWS_DIR / stage


def catalog_file(root: PathLike) -> Path:
    return Path(root) / CATALOG_FILE


def results_file(root: PathLike) -> Path:
    return Path(root) / RESULTS_FILE


def shards_dir(root: PathLike) -> Path:
    """The WebDataset export GenZoo's trainer reads (``current`` points at the newest)."""
    return Path(root) / SHARDS_DIR


def regressor_dir(root: PathLike) -> Path:
    return Path(root) / REGRESSOR_DIR


def checkpoint_file(root: PathLike) -> Path:
    """The regressor's best checkpoint."""
    return regressor_dir(root) / "checkpoint.pt"


def lineage_file(root: PathLike) -> Path:
    """Which catalog rows trained the checkpoint."""
    return regressor_dir(root) / "lineage.parquet"


def benchmark_dir(root: PathLike, test_set: str) -> Path:
    return Path(root) / BENCHMARK_DIR / test_set


def predictions_file(root: PathLike, test_set: str) -> Path:
    return benchmark_dir(root, test_set) / "predictions.parquet"


def planning_dir(root: PathLike) -> Path:
    """Sampling plans and the ledger of planned rounds."""
    return Path(root) / PLANNING_DIR


def plan_file(root: PathLike, plan_id: str) -> Path:
    """One plan, named by the hash of its content (written once, never changed)."""
    return planning_dir(root) / "plans" / f"{plan_id}.json"


def rounds_file(root: PathLike) -> Path:
    """``rounds.parquet``: species, shard, round, plan_id of every planned partition (append-only)."""
    return planning_dir(root) / "rounds.parquet"
