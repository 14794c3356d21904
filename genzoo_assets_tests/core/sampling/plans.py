"""What the planned-sampling tests share: the plan they draw under (lying, the two back views and one
pitch level made hard), and a table stripped of what differs between two runs of it."""

import json

import pandas as pd

from genzoo_assets.core.planning.proposal import bounded_proposal
from genzoo_assets.core.sampling.planned import (
    PITCH_BINS,
    YAW_BINS,
    PartitionPlan,
    base_distribution,
)

HARD = {
    "posture": {"lying": 5.0, "sitting": 2.0},
    "yaw_bin": {YAW_BINS[0]: 5.0, YAW_BINS[-1]: 5.0},
    "pitch_bin": {PITCH_BINS[2]: 5.0},
}


def favouring_plan(plan_hash: str, ratio: float, species_weight: float) -> PartitionPlan:
    """A round-1 plan whose proposal favours the :data:`HARD` levels, bounded by ``ratio``."""
    factors = {}
    for factor, levels in base_distribution().items():
        err = {k: HARD[factor].get(k, 1.0) for k in levels}
        q = bounded_proposal(levels, err, ratio, sharpness=2.0)
        factors[factor] = {k: (levels[k], q[k]) for k in levels}
    return PartitionPlan(plan_hash, 1, species_weight, factors)


def without_run_identity(df: pd.DataFrame) -> pd.DataFrame:
    """The table without what legitimately differs between runs: provenance's run id and clock."""
    prov = [json.loads(p) for p in df["provenance"]]
    for p in prov:
        p.pop("created_at"), p.pop("run_id")
    return df.drop(columns="provenance").assign(
        provenance=[json.dumps(p, sort_keys=True) for p in prov]
    )
