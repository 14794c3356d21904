"""The sampling plan: from validation errors joined with their samples' factors to a bounded
proposal per planned factor and the next round's species × shard partitions.

A plan is a JSON document named by the hash of its content (``plan_id``): the same metrics, the
same catalog rows and the same settings give the same plan, byte for byte, and materialising the
asset again without new errors adds no round. ``planning/rounds.parquet`` is the ledger of planned
partitions (species, shard, round, plan_id): a partition, once planned, keeps its plan, so a rerun
draws it again under the same proposal. Only training species are planned: the held-out families
(the test set) and the validation species never get planned shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genzoo_assets.core import layout, paths
from genzoo_assets.core.dataset.splits import DEFAULT_HELDOUT_FAMILIES
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.planning.error_model import fit_error_model, predictive_power
from genzoo_assets.core.planning.factors import FACTORS, sample_factors
from genzoo_assets.core.planning.proposal import bounded_proposal
from genzoo_assets.core.sampling.planned import PartitionPlan, base_distribution
from genzoo_assets.core.tables import read_table, write_table_atomic

PLAN_FORMAT = 1
VALIDATION_TEST_SET = "val"
ROUND_COLUMNS = ["species", "shard", "round", "plan_id"]
LOWER_IS_BETTER = {"pa_mpjpe", "s_mpjpe", "pa_v2v", "s_v2v"}
HIGHER_IS_BETTER = {"pck@0.10", "pck@0.15", "pck@0.5", "auc"}


class PlanInputError(InputError):
    """The plan's inputs cannot give a plan (no validation errors, a test-set row, bad settings)."""


@dataclass(frozen=True)
class PlanSettings:
    ratio: float = 2.0  # no level's proposal departs from its base by more than this factor
    sharpness: float = 1.0  # γ in q ∝ p·(e/ē)^γ
    metric: str = "pa_mpjpe"  # the per-sample error the plan chases (a PCK becomes 1 − PCK)
    round_shards: int = 8  # partitions in the next round, shared out over the training species
    heldout_families: tuple[str, ...] = DEFAULT_HELDOUT_FAMILIES  # the test set: never planned


def sample_errors(metrics: pd.DataFrame, metric: str, method: str = "genzoo") -> pd.Series:
    """Per-sample error of ``method`` on the validation set, indexed by sample id.

    Refuses any test set but validation: the held-out test set must never steer generation.
    """
    if metric not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
        raise PlanInputError(
            f"plan metric {metric!r} is not one of {sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER)}"
        )
    others = sorted(set(metrics["test_set"]) - {VALIDATION_TEST_SET})
    if others:
        raise PlanInputError(
            f"plan inputs hold rows of test set(s) {others}: only the validation set "
            f"({VALIDATION_TEST_SET!r}) may steer generation"
        )
    rows = metrics[(metrics["method"] == method) & metrics[metric].notna()]
    if rows.empty:
        raise PlanInputError(
            f"no {metric} of method {method!r} on the validation set: materialise the "
            f"`benchmark` partition '{VALIDATION_TEST_SET}' and `results` first"
        )
    values = rows[metric].to_numpy(dtype=np.float64)
    values = values if metric in LOWER_IS_BETTER else 1.0 - values
    return pd.Series(values, index=rows["sample_id"].astype(str).to_numpy(), name="error")


def _ledger(root) -> pd.DataFrame:
    path = layout.rounds_file(root)
    if not path.exists():
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(ROUND_COLUMNS, (str, str, "int64", str))}
        )
    return read_table(path)[ROUND_COLUMNS]


def _allocate(shares: dict[str, float], total: int) -> dict[str, int]:
    """Largest-remainder apportionment of ``total`` shards by ``shares`` (ties by name)."""
    raw = {s: total * q for s, q in shares.items()}
    out = {s: int(np.floor(v)) for s, v in raw.items()}
    rest = sorted(shares, key=lambda s: (-(raw[s] - out[s]), s))
    for s in rest[: total - sum(out.values())]:
        out[s] += 1
    return out


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def make_plan(
    errors: pd.Series,
    samples: pd.DataFrame,
    train_species: pd.DataFrame,
    settings: PlanSettings,
) -> dict:
    """The plan document (without round and partitions: :func:`record_round` adds them).

    ``errors``: per-sample validation error by sample id (:func:`sample_errors`); ``samples``: their
    catalog rows (``sample_id``, ``posture``, ``yaw_deg``, ``pitch_deg``, ``betas``,
    ``keypoints_2d``, ``keypoints_vis``, ``render_resolution``, ``species``, ``family``);
    ``train_species``: the species the round may generate (``species``, ``family``).
    """
    if settings.round_shards < 1:
        raise PlanInputError(f"round_shards must be at least 1, got {settings.round_shards}")
    train_species = train_species[~train_species["family"].isin(settings.heldout_families)]
    if train_species.empty:
        raise PlanInputError(
            "no training species to plan (held-out families are never planned): export a "
            "dataset with a train split"
        )
    rows = samples[samples["sample_id"].astype(str).isin(errors.index)]
    rows = rows.drop_duplicates("sample_id").sort_values("sample_id", kind="stable")
    if rows.empty:
        raise PlanInputError(
            "none of the scored validation samples is in the catalog: refresh the catalog"
        )
    factors = sample_factors(rows.reset_index(drop=True))
    error = errors.loc[factors["sample_id"]].to_numpy(dtype=np.float64)
    model = fit_error_model(factors, error, FACTORS)
    base = base_distribution()
    species = sorted(set(train_species["species"]))
    family = dict(zip(train_species["species"], train_species["family"].fillna("")))
    family_error = model.level_error("family")
    base["species"] = {s: 1.0 / len(species) for s in species}
    level_error = {
        "posture": model.level_error("posture"),
        "yaw_bin": model.level_error("yaw_bin"),
        "pitch_bin": model.level_error("pitch_bin"),
        # validation species are not training species: a training species takes its family's error
        "species": {s: family_error[family[s]] for s in species if family[s] in family_error},
    }
    planned = {}
    for factor, levels in base.items():
        q = bounded_proposal(levels, level_error[factor], settings.ratio, settings.sharpness)
        planned[factor] = {
            "levels": list(levels),
            "base": [levels[k] for k in levels],
            "proposal": [q[k] for k in levels],
            "error": [level_error[factor].get(k) for k in levels],
        }
    power = predictive_power(factors, error, FACTORS)
    body = {
        "format": PLAN_FORMAT,
        "settings": {
            "ratio": settings.ratio,
            "sharpness": settings.sharpness,
            "metric": settings.metric,
            "round_shards": settings.round_shards,
            "heldout_families": sorted(settings.heldout_families),
        },
        "inputs": {
            "n_samples": len(factors),
            "errors_sha256": hashlib.sha256(
                pd.DataFrame({"id": factors["sample_id"], "e": error}).to_csv(index=False).encode()
            ).hexdigest(),
            "mean_error": model.mean,
        },
        "factors": planned,
        "family": {s: family[s] for s in species},
        "error_by_factor": {
            f: t.drop(columns="prior_strength").to_dict(orient="list")
            | {"prior_strength": float(t["prior_strength"].iloc[0])}
            for f, t in model.tables.items()
        },
        "model": {k: (None if not np.isfinite(v) else float(v)) for k, v in power.items()},
    }
    return {"plan_id": _digest(body), **body}


def _used_shards(root, catalog_shards: pd.DataFrame, ledger: pd.DataFrame) -> dict[str, int]:
    """Per species, one past the highest shard already generated or planned."""
    used = pd.concat([catalog_shards[["species", "shard"]], ledger[["species", "shard"]]])
    return {s: int(g["shard"].astype(int).max()) + 1 for s, g in used.groupby("species", sort=True)}


def record_round(root, plan: dict, catalog_shards: pd.DataFrame, num_shards: int = 64) -> dict:
    """Write the plan and its round into the ledger, once; returns the plan with ``round`` and
    ``partitions``. A plan already in the ledger (same inputs, same settings) adds nothing.

    ``catalog_shards``: the (species, shard) partitions that already hold samples.
    """
    ledger = _ledger(root)
    mine = ledger[ledger["plan_id"] == plan["plan_id"]]
    if not mine.empty:
        return load_plan(root, plan["plan_id"])
    q = dict(zip(plan["factors"]["species"]["levels"], plan["factors"]["species"]["proposal"]))
    nxt = _used_shards(root, catalog_shards, ledger)
    free = {s: num_shards - nxt.get(s, 0) for s in q}
    open_q = {s: v for s, v in q.items() if free[s] > 0}
    if not open_q:
        raise PlanInputError(f"every training species has used all {num_shards} shards")
    total = sum(open_q.values())
    alloc = _allocate({s: v / total for s, v in open_q.items()}, plan["settings"]["round_shards"])
    alloc = {s: min(n, free[s]) for s, n in alloc.items() if n > 0}
    round_no = int(ledger["round"].max()) + 1 if not ledger.empty else 1
    partitions = [
        {"species": s, "shard": f"{nxt.get(s, 0) + i:03d}"}
        for s in sorted(alloc)
        for i in range(alloc[s])
    ]
    n_alloc = sum(alloc.values())
    base_species = dict(
        zip(plan["factors"]["species"]["levels"], plan["factors"]["species"]["base"])
    )
    plan = plan | {
        "round": round_no,
        "partitions": partitions,
        # the species a round really draws from: its shard shares (base / that = the weight)
        "species_weight": {s: base_species[s] / (n / n_alloc) for s, n in sorted(alloc.items())},
    }
    paths.write_bytes_atomic(
        layout.plan_file(root, plan["plan_id"]),
        json.dumps(plan, sort_keys=True, indent=1).encode(),
    )
    new = pd.DataFrame(
        [{**p, "round": round_no, "plan_id": plan["plan_id"]} for p in partitions],
        columns=ROUND_COLUMNS,
    )
    write_table_atomic(
        pd.concat([ledger, new], ignore_index=True).astype({"round": "int64"}),
        layout.rounds_file(root),
    )
    return plan


def load_plan(root, plan_id: str) -> dict:
    path = layout.plan_file(root, plan_id)
    if not path.is_file():
        raise PlanInputError(f"plan {plan_id} is in the ledger but {path} is missing")
    return json.loads(path.read_text())


def partition_plan(root: str | os.PathLike, species: str, shard: str) -> PartitionPlan | None:
    """The plan a species × shard partition is drawn under (None: a uniform partition)."""
    ledger = _ledger(root)
    hit = ledger[(ledger["species"] == species) & (ledger["shard"] == shard)]
    if hit.empty:
        return None
    plan = load_plan(root, str(hit["plan_id"].iloc[0]))
    factors = {
        f: dict(zip(d["levels"], zip(d["base"], d["proposal"])))
        for f, d in plan["factors"].items()
        if f != "species"
    }
    return PartitionPlan(
        plan_id=plan["plan_id"],
        round=int(plan["round"]),
        species_weight=float(plan["species_weight"][species]),
        factors=factors,
    )


def newest_round(root: str | os.PathLike) -> tuple[int, str, list[tuple[str, str]]] | None:
    """(round, plan_id, its partitions) of the newest planned round, or None."""
    ledger = _ledger(root)
    if ledger.empty:
        return None
    last = ledger[ledger["round"] == ledger["round"].max()]
    return (
        int(last["round"].iloc[0]),
        str(last["plan_id"].iloc[0]),
        list(zip(last["species"], last["shard"])),
    )
