"""Drawing a partition under a sampling plan: the base distribution of each planned factor, the
plan's proposal over its bins, and the importance weight that takes a planned sample back to base.

The planned factors are the ones a sampler chooses: the posture, the yaw bin and the pitch bin of
the viewpoint, and the species (the plan chooses which species get the round's shards). Each is
drawn independently under the base distribution and under a proposal, so a sample's weight is the
product of its factors' ``base / proposal`` ratios: a consumer that weights planned samples by it
estimates base-distribution statistics.

Within a bin a planned draw follows the base distribution restricted to that bin: yaw uniform
over the bin, pitch the base's clipped normal N(10°, 10°) on [-10°, 60°] restricted to the bin (by
inverting its CDF), so the proposal changes only how often each bin comes up.

A backend whose base is not the plan's (a pose bank: uniform over its rows, with its own posture
and orientation frequencies) draws under ``planning.proposal.tilted_proposal``: each level moved
by the ratio the plan moved it (``proposal / base``), within the plan's own bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from genzoo_assets.core.sampling.camera_model import view_rotation
from genzoo_assets.core.sampling.camera_sampler import ViewSample
from genzoo_assets.core.sampling.pose_procedural import POSTURE_WEIGHTS

YAW_EDGES = tuple(float(x) for x in range(-180, 181, 45))  # 8 bins of 45°, bin 4 = facing camera
PITCH_MEAN, PITCH_STD, PITCH_RANGE = 10.0, 10.0, (-10.0, 60.0)  # camera_sampler.sample_view's
PITCH_EDGES = (-10.0, 5.0, 20.0, 35.0, 60.0)
PLANNED_FACTORS = ("species", "posture", "yaw_bin", "pitch_bin")


def _labels(edges) -> list[str]:
    return [f"[{a:g},{b:g})" for a, b in zip(edges[:-1], edges[1:])]


YAW_BINS = _labels(YAW_EDGES)
PITCH_BINS = _labels(PITCH_EDGES)


def yaw_bin(yaw_deg) -> np.ndarray:
    """Index of each yaw (degrees, any range: wrapped into [-180, 180)) among ``YAW_BINS``."""
    y = (np.asarray(yaw_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0
    return np.clip(np.searchsorted(YAW_EDGES, y, side="right") - 1, 0, len(YAW_BINS) - 1)


def pitch_bin(pitch_deg) -> np.ndarray:
    """Index of each pitch (degrees) among ``PITCH_BINS``; outside the range → the end bins."""
    p = np.asarray(pitch_deg, dtype=np.float64)
    return np.clip(np.searchsorted(PITCH_EDGES, p, side="right") - 1, 0, len(PITCH_BINS) - 1)


def _pitch_cdf_bounds(k: int) -> tuple[float, float]:
    """The underlying normal's CDF at bin ``k``'s edges; the clipped mass goes to the end bins."""
    lo = -np.inf if k == 0 else PITCH_EDGES[k]
    hi = np.inf if k == len(PITCH_BINS) - 1 else PITCH_EDGES[k + 1]
    return float(ndtr((lo - PITCH_MEAN) / PITCH_STD)), float(ndtr((hi - PITCH_MEAN) / PITCH_STD))


def base_distribution() -> dict[str, dict[str, float]]:
    """The base probability of every level of the sampler-chosen factors but species (whose base is
    uniform over the planned species, set by the planner)."""
    total = sum(POSTURE_WEIGHTS.values())
    yaw = np.diff(YAW_EDGES) / 360.0
    pitch = [b - a for a, b in map(_pitch_cdf_bounds, range(len(PITCH_BINS)))]
    return {
        "posture": {k: v / total for k, v in POSTURE_WEIGHTS.items()},
        "yaw_bin": dict(zip(YAW_BINS, map(float, yaw))),
        "pitch_bin": dict(zip(PITCH_BINS, map(float, pitch))),
    }


@dataclass(frozen=True)
class PartitionPlan:
    """What a partition drawn under a plan needs: per factor, ``{level: (base, proposal)}``.

    ``species_weight`` is this partition's species' base / proposal share (the plan's shard
    allocation). A factor missing from ``factors`` is drawn from its base (weight 1).
    """

    plan_id: str
    round: int
    species_weight: float = 1.0
    factors: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def proposal(self, factor: str) -> dict[str, float] | None:
        levels = self.factors.get(factor)
        return None if levels is None else {k: q for k, (_, q) in levels.items()}

    def ratio(self, factor: str, level: str) -> float:
        """base / proposal of one level (1 when the factor is not planned)."""
        levels = self.factors.get(factor)
        if levels is None:
            return 1.0
        if level not in levels:
            raise ValueError(f"plan {self.plan_id}: factor {factor!r} has no level {level!r}")
        base, proposal = levels[level]
        return base / proposal

    def tilt(self, factor: str) -> dict[str, float]:
        """proposal / base of each level of ``factor`` (empty when the factor is not planned)."""
        return {k: q / p for k, (p, q) in self.factors.get(factor, {}).items()}


def _choose(rng: np.random.Generator, labels: list[str], proposal: dict[str, float]) -> int:
    p = np.array([proposal[k] for k in labels], dtype=np.float64)
    return int(rng.choice(len(labels), p=p / p.sum()))


def planned_view(rng: np.random.Generator, plan: PartitionPlan) -> ViewSample:
    """A viewpoint whose yaw and pitch bins come from the plan (base bins where it plans none)."""
    base = base_distribution()
    yaw_q = plan.proposal("yaw_bin") or base["yaw_bin"]
    pitch_q = plan.proposal("pitch_bin") or base["pitch_bin"]
    k = _choose(rng, YAW_BINS, yaw_q)
    yaw = float(rng.uniform(YAW_EDGES[k], YAW_EDGES[k + 1]))
    j = _choose(rng, PITCH_BINS, pitch_q)
    lo, hi = _pitch_cdf_bounds(j)
    u = float(np.clip(rng.uniform(lo, hi), 1e-12, 1.0 - 1e-12))
    pitch = float(np.clip(PITCH_MEAN + PITCH_STD * ndtri(u), *PITCH_RANGE))
    return ViewSample(yaw, pitch, view_rotation(yaw, pitch))


def importance_weight(
    plan: PartitionPlan, posture: str | None, yaw_deg: float | None, pitch_deg: float | None
) -> float:
    """base / proposal of one sample: species × posture × yaw bin × pitch bin (a factor given as
    None was drawn from its base)."""
    w = plan.species_weight
    if posture is not None:
        w *= plan.ratio("posture", posture)
    if yaw_deg is not None:
        w *= plan.ratio("yaw_bin", YAW_BINS[int(yaw_bin(yaw_deg))])
    if pitch_deg is not None:
        w *= plan.ratio("pitch_bin", PITCH_BINS[int(pitch_bin(pitch_deg))])
    return float(w)
