"""The default pose backend: plausible quadruped postures built from joint angles.

Posture weights (``POSTURE_WEIGHTS``): standing 0.25, walking 0.25, trotting 0.15, sitting 0.15,
lying 0.20 (three quarters on the chest, "sphinx"; a quarter on the side). Walking and trotting
read every leg off a gait cycle at a random phase: lateral-sequence walk (hind-left, fore-left,
hind-right, fore-right a quarter cycle apart, 65 % stance) and diagonal trot (50 % stance). On
top: head turns and tilts, neck lift, tail carriage/curl/wag, ear and jaw motion, a slight spine
bend. Angles are written in the canonical frame (see ``joint_limits``), clipped to the joint
limits, then turned into model coordinates with ``Cᵀ R C``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from genzoo_assets.core.body.skeleton import SMAL_JOINT_NAMES
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.planning.proposal import tilted_proposal
from genzoo_assets.core.sampling.canonical import canonical_to_model
from genzoo_assets.core.sampling.joint_limits import clip_to_limits, euler_to_matrix

POSTURE_WEIGHTS = {
    "standing": 0.25,
    "walking": 0.25,
    "trotting": 0.15,
    "sitting": 0.15,
    "lying": 0.20,
}
_J = {name: i - 1 for i, name in enumerate(SMAL_JOINT_NAMES) if i > 0}
_SIDES = (("L", 1.0), ("R", -1.0))  # x-roll/y-yaw signs that point "outward" for each side
# Gait: stance fraction, protraction amplitude, elbow/wrist/knee/hock flexion in swing, leg phase offsets.
_GAITS = {
    "walking": dict(
        stance=0.65,
        amp=18.0,
        elbow=25.0,
        wrist=65.0,
        knee=35.0,
        hock=35.0,
        phase={"LLegBack": 0.0, "LLeg": 0.25, "RLegBack": 0.5, "RLeg": 0.75},
    ),
    "trotting": dict(
        stance=0.5,
        amp=26.0,
        elbow=35.0,
        wrist=90.0,
        knee=50.0,
        hock=50.0,
        phase={"LLeg": 0.0, "RLegBack": 0.0, "RLeg": 0.5, "LLegBack": 0.5},
    ),
}


def _rot_x(deg: float) -> np.ndarray:
    return euler_to_matrix(np.array([deg, 0.0, 0.0]))


def _rot_z(deg: float) -> np.ndarray:
    return euler_to_matrix(np.array([0.0, 0.0, deg]))


def _set(
    a: np.ndarray,
    joint: str,
    x: float | None = None,
    y: float | None = None,
    z: float | None = None,
):
    for k, v in enumerate((x, y, z)):
        if v is not None:
            a[_J[joint], k] = v


def _leg_cycle(phase: float, stance: float) -> tuple[float, float]:
    """(protraction in −1..1, swing flexion 0..1) of a leg at ``phase`` of its cycle."""
    phase %= 1.0
    if phase < stance:
        return 1.0 - 2.0 * phase / stance, 0.0
    s = (phase - stance) / (1.0 - stance)
    return -1.0 + 2.0 * s, float(np.sin(np.pi * s))


def _stand_legs(a, rng):
    for side, sgn in _SIDES:
        for seg, sd in (
            ("Leg1", 4),
            ("Leg2", 3),
            ("Leg3", 3),
            ("Foot", 3),
            ("LegBack1", 4),
            ("LegBack2", 3),
            ("LegBack3", 3),
            ("FootBack", 3),
        ):
            _set(a, side + seg, x=sgn * abs(rng.normal(0, 2)), z=rng.normal(0, sd))
    shifted = f"{'LR'[int(rng.integers(2))]}{('Leg1', 'LegBack1')[int(rng.integers(2))]}"
    _set(a, shifted, z=a[_J[shifted], 2] + rng.uniform(-10, 10))


def _gait_legs(a, rng, gait: dict):
    phase0 = rng.uniform()
    scale = rng.uniform(0.8, 1.15)
    for side, sgn in _SIDES:
        for limb in ("Leg", "LegBack"):
            pro, flex = _leg_cycle(
                phase0 + gait["phase"][side + limb] + rng.normal(0, 0.02), gait["stance"]
            )
            x = sgn * abs(rng.normal(0, 2))
            if limb == "Leg":
                _set(a, side + "Leg1", x=x, z=scale * gait["amp"] * pro)
                _set(a, side + "Leg2", z=scale * gait["elbow"] * flex)
                _set(a, side + "Leg3", z=-scale * gait["wrist"] * flex)
                _set(a, side + "Foot", z=-0.3 * scale * gait["wrist"] * flex)
            else:
                _set(a, side + "LegBack1", x=x, z=scale * gait["amp"] * pro)
                _set(a, side + "LegBack2", z=-scale * gait["knee"] * flex)
                _set(a, side + "LegBack3", z=scale * gait["hock"] * flex)
                _set(a, side + "FootBack", z=-0.4 * scale * gait["hock"] * flex)


def _tail_on_ground(a, rng, droop: list[float]):
    """Tail resting on the ground and curled to one side: ``droop`` are the first joints' flexions;
    every later joint undoes the template tail's own downward curve (about 7° per joint)."""
    side = rng.choice([-1.0, 1.0]) * rng.uniform(6, 14)
    for k in range(1, 8):
        z = droop[k - 1] if k <= len(droop) else -7.0
        _set(a, f"Tail{k}", y=side + rng.normal(0, 3), z=z + rng.normal(0, 2))


def _sit(a, rng) -> np.ndarray:
    """Trunk pitched up about the pelvis, rump and folded hind legs on the ground, front legs vertical.

    Hind-leg angles put the femur forward and slightly down, the tibia back to the hock on the
    ground and the metatarsus flat and forward (world angles about -5°, -165°, -5°).
    """
    theta = rng.uniform(
        32, 44
    )  # steeper lifts the front paws off the ground (procedural proportions)
    for side, sgn in _SIDES:
        _set(a, side + "Leg1", x=sgn * abs(rng.normal(0, 2)), z=-theta + rng.normal(0, 4))
        _set(a, side + "Leg2", z=rng.normal(3, 3))
        _set(a, side + "Leg3", z=rng.normal(-3, 3))
        _set(a, side + "LegBack1", x=sgn * rng.uniform(5, 18), z=65 - theta + rng.normal(0, 4))
        _set(a, side + "LegBack2", z=-102 + rng.normal(0, 4))
        _set(a, side + "LegBack3", z=105 + rng.normal(0, 4))
        _set(a, side + "FootBack", z=-55 + rng.normal(0, 3))
    _set(a, "Neck", z=-0.55 * theta + rng.normal(0, 8))
    _set(a, "Head", z=-0.35 * theta + rng.normal(0, 6))
    _tail_on_ground(a, rng, [-12 - theta])
    return _rot_z(theta)


def _lie_chest(a, rng) -> np.ndarray:
    """Sphinx: forearms flat forward on the ground, hind legs folded flat beside the belly."""
    for side, sgn in _SIDES:
        _set(a, side + "Leg1", x=sgn * abs(rng.normal(0, 3)), z=-65 + rng.normal(0, 4))
        _set(a, side + "Leg2", z=142 + rng.normal(0, 4))
        _set(a, side + "Leg3", z=rng.normal(-3, 4))
        _set(a, side + "Foot", z=rng.normal(5, 4))
        _set(a, side + "LegBack1", x=sgn * rng.uniform(15, 28), z=60 + rng.normal(0, 4))
        _set(a, side + "LegBack2", z=-107 + rng.normal(0, 4))
        _set(a, side + "LegBack3", z=110 + rng.normal(0, 4))
        _set(a, side + "FootBack", z=-55 + rng.normal(0, 3))
    _set(a, "Neck", z=rng.normal(0, 10))
    _tail_on_ground(a, rng, [28, -7, -7, -45, -19])
    return _rot_x(rng.normal(0, 4))


def _lie_side(a, rng) -> np.ndarray:
    """Lateral recumbency: rolled onto one side, legs relaxed and slightly flexed."""
    for side, _ in _SIDES:
        _set(a, side + "Leg1", z=rng.normal(15, 10))
        _set(a, side + "Leg2", z=rng.normal(20, 10))
        _set(a, side + "Leg3", z=rng.normal(-30, 12))
        _set(a, side + "LegBack1", z=rng.normal(15, 10))
        _set(a, side + "LegBack2", z=rng.normal(-35, 10))
        _set(a, side + "LegBack3", z=rng.normal(35, 10))
    _set(a, "Tail1", z=rng.uniform(-5, 20))
    return _rot_x(rng.choice([-1.0, 1.0]) * rng.uniform(80, 95))


def _head_tail_ears(a, rng, posture: str, tail_free: bool):
    big = posture in ("lying", "sitting", "standing")
    _set(
        a,
        "Neck",
        x=rng.normal(0, 5),
        y=rng.normal(0, 18 if big else 8),
        z=a[_J["Neck"], 2] + rng.normal(-6 if posture == "trotting" else 0, 8),
    )
    _set(
        a,
        "Head",
        x=rng.normal(0, 10),
        y=rng.normal(0, 15 if big else 8),
        z=a[_J["Head"], 2] + rng.normal(0, 8),
    )
    _set(a, "Mouth", z=-rng.uniform(0, 25) if rng.uniform() < 0.3 else 0.0)
    for ear in ("LEar", "REar"):
        _set(a, ear, x=rng.normal(0, 8), y=rng.normal(0, 8), z=rng.normal(0, 8))
    if tail_free:
        carriage = rng.uniform(-35, 20) if posture in ("standing", "walking", "trotting") else 0.0
        curl, wag, psi = rng.uniform(-5, 6), rng.uniform(0, 12), rng.uniform(0, 2 * np.pi)
        for k in range(1, 8):
            name = f"Tail{k}"
            _set(
                a,
                name,
                y=a[_J[name], 1] + wag * np.sin(psi + 0.6 * k),
                z=a[_J[name], 2] + (carriage if k == 1 else 0.0) + curl + rng.normal(0, 3),
            )
    bend = rng.normal(0, 2.5 if posture != "lying" else 5)
    for name in ("pelvis0", "spine", "spine0", "spine1", "spine2", "spine3"):
        _set(a, name, x=rng.normal(0, 1), y=bend + rng.normal(0, 1.5), z=rng.normal(0, 2))


@dataclass(frozen=True)
class _CanonicalOnly:
    """What the sampler reads of a body model: its canonical rotation."""

    canonical_rotation: np.ndarray


class ProceduralPoseSampler:
    name = "procedural"
    orientation = "view"  # draws posture rotations; the camera sampler adds the viewpoint

    def __init__(self, body_model, posture_weights: dict[str, float] | None = None):
        weights = dict(POSTURE_WEIGHTS if posture_weights is None else posture_weights)
        unknown = sorted(set(weights) - set(POSTURE_WEIGHTS))
        if unknown:
            raise InputError(f"unknown posture(s) {unknown}; known: {sorted(POSTURE_WEIGHTS)}")
        total = sum(weights.values())
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise InputError(
                f"posture weights must be non-negative with a positive sum, got {weights}"
            )
        self.postures = tuple(weights)
        self.probs = np.array([weights[p] / total for p in self.postures])
        self.canonical_rotation = np.asarray(body_model.canonical_rotation, dtype=np.float64)
        self.model_files: dict[str, str] = {}
        self._weight: dict[str, float] = {}
        self.planned_factors: tuple[str, ...] = ()

    def reweighted(self, posture_weights: dict[str, float]) -> ProceduralPoseSampler:
        """The same sampler drawing postures with ``posture_weights`` (a plan's proposal)."""
        other = copy.copy(self)
        ProceduralPoseSampler.__init__(
            other, _CanonicalOnly(self.canonical_rotation), posture_weights
        )
        return other

    def under_plan(self, plan) -> ProceduralPoseSampler:
        """This sampler drawing postures under ``plan`` (a ``PartitionPlan``): each posture of this
        sampler's base moved as the plan moved it (``tilted_proposal``; with the default weights,
        the plan's proposal itself); ``sample_weighted`` gives each draw's base / proposal."""
        tilt = plan.tilt("posture")
        base = dict(zip(self.postures, self.probs.tolist()))
        proposal = tilted_proposal(base, tilt)
        other = self.reweighted(proposal)
        other._weight = {k: base[k] / proposal[k] if proposal[k] > 0 else 0.0 for k in base}
        other.planned_factors = ("posture",) if tilt else ()
        return other

    def sample_weighted(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray | None, np.ndarray, str, float]:
        """A draw and its posture's base / proposal under the plan of :meth:`under_plan`."""
        orient, body_pose, posture = self.sample(rng)
        return orient, body_pose, posture, self._weight.get(posture, 1.0)

    def sample_angles(self, rng: np.random.Generator) -> tuple[str, np.ndarray | None, np.ndarray]:
        """(posture, posture orientation (canonical) or None, (34, 3) Euler degrees within limits)."""
        posture = self.postures[int(rng.choice(len(self.postures), p=self.probs))]
        a = np.zeros((len(_J), 3))
        orient = None
        tail_free = True
        if posture == "standing":
            _stand_legs(a, rng)
        elif posture in _GAITS:
            _gait_legs(a, rng, _GAITS[posture])
        elif posture == "sitting":
            orient, tail_free = _sit(a, rng), False
        elif rng.uniform() < 0.75:
            orient, tail_free = _lie_chest(a, rng), False
        else:
            orient = _lie_side(a, rng)
        _head_tail_ears(a, rng, posture, tail_free)
        return posture, orient, clip_to_limits(a)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray, str]:
        posture, orient, angles = self.sample_angles(rng)
        return orient, canonical_to_model(euler_to_matrix(angles), self.canonical_rotation), posture
