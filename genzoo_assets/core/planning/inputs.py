"""What the planner reads: validation errors from ``results.duckdb`` joined with the scored
samples' catalog rows, the training species and the held-out families of the current export, and
the partitions that already hold samples.

Only the validation set's rows are read (``test_set = 'val'``); the held-out test set's metrics
never reach the planner.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from genzoo_assets.core import layout
from genzoo_assets.core.catalog import query
from genzoo_assets.core.catalog.results import result_tables
from genzoo_assets.core.catalog.store import sql_ident, sql_literal
from genzoo_assets.core.dataset.webdataset import INDEX, heldout_split, resolve_export
from genzoo_assets.core.planning.plan import VALIDATION_TEST_SET, PlanInputError
from genzoo_assets.core.tables import read_table

FACTOR_INPUTS = (
    "posture",
    "yaw_deg",
    "pitch_deg",
    "betas",
    "keypoints_2d",
    "keypoints_vis",
    "render_resolution",
)


@dataclass(frozen=True)
class PlanInputs:
    metrics: pd.DataFrame  # sample_id, test_set, method, the metric
    samples: pd.DataFrame  # sample_id, species, family and the FACTOR_INPUTS the catalog has
    train_species: pd.DataFrame  # species, family
    partitions: pd.DataFrame  # species, shard: partitions that already hold samples
    heldout_families: tuple[str, ...] = ()  # the export's test split: never planned


def read_plan_inputs(root, metric: str) -> PlanInputs:
    """Read everything the plan needs (the catalog and ``results.duckdb`` must exist)."""
    if "metrics" not in result_tables(root):
        raise PlanInputError(
            "results.duckdb has no metrics: materialise `benchmark` (partition "
            f"'{VALIDATION_TEST_SET}') and `results` first"
        )
    have = set(query.query("SELECT * FROM samples LIMIT 0", data_dir=root).columns)
    wanted = [c for c in ("family", *FACTOR_INPUTS) if c in have]
    cols = ", ".join(f"s.{sql_ident(c)}" for c in wanted)
    metrics = query.query(
        f"SELECT m.sample_id, m.test_set, m.method, m.{sql_ident(metric)} FROM metrics m "
        f"WHERE m.test_set = {sql_literal(VALIDATION_TEST_SET)} ORDER BY m.sample_id, m.method",
        data_dir=root,
    )
    samples = query.query(
        f"SELECT s.sample_id, s.species{', ' + cols if cols else ''} FROM samples s "
        f"WHERE s.sample_id IN (SELECT sample_id FROM metrics "
        f"WHERE test_set = {sql_literal(VALIDATION_TEST_SET)}) ORDER BY s.sample_id",
        data_dir=root,
    )
    family = "family" if "family" in have else "''"
    families = query.query(
        f"SELECT DISTINCT species, {family} AS family FROM samples ORDER BY species",
        data_dir=root,
    )
    partitions = query.query(
        "SELECT DISTINCT species, shard FROM samples ORDER BY species, shard", data_dir=root
    )
    index = read_table(resolve_export(layout.shards_dir(root)) / INDEX)
    train = sorted(
        {str(s).split(".")[0] for s in index.loc[index["split"] == "train", "sample_id"]}
    )
    train_species = families[families["species"].isin(train)].reset_index(drop=True)
    families, _ = heldout_split(layout.shards_dir(root))
    return PlanInputs(metrics, samples, train_species, partitions, families)
