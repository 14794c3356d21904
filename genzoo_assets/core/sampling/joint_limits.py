"""Joint limits of a quadruped, in the canonical frame (degrees of x-roll, y-yaw, z-flexion).

Each joint rotation is ``Rz(flex) @ Ry(yaw) @ Rx(roll)`` about the joint, axes of the canonical
frame (x forward, y up, z right). For a segment hanging down, +z swings its far end forward; for
one pointing forward (neck, head) +z lifts it; for the tail (pointing back) +z lowers it. +y turns
a forward-pointing segment to the animal's left. Ranges follow published quadruped joint ranges
of motion (dog/horse goniometry) rounded generously; left and right share limits (yaw and roll
are mirrored by the sampler, not the table).
"""

from __future__ import annotations

import numpy as np

from genzoo_assets.core.body.skeleton import SMAL_JOINT_NAMES

_SPINE = ((-8, 8), (-15, 15), (-15, 15))
_TAIL = ((-15, 15), (-35, 35), (-70, 45))
_LIMITS_BY_KIND = {
    "spine": _SPINE,
    "shoulder": ((-15, 15), (-12, 12), (-75, 60)),
    "elbow": ((-5, 5), (-5, 5), (-10, 150)),
    "wrist": ((-5, 5), (-8, 8), (-130, 15)),
    "front_foot": ((-5, 5), (-5, 5), (-60, 45)),
    "hip": ((-30, 30), (-15, 15), (-55, 110)),
    "knee": ((-5, 5), (-5, 5), (-160, 10)),
    "hock": ((-5, 5), (-8, 8), (-10, 160)),
    "back_foot": ((-5, 5), (-5, 5), (-60, 60)),
    "neck": ((-20, 20), (-45, 45), (-60, 50)),
    "head": ((-30, 30), (-40, 40), (-50, 40)),
    "tail": _TAIL,
    "mouth": ((0, 0), (0, 0), (-35, 0)),
    "ear": ((-25, 25), (-25, 25), (-25, 25)),
}


def joint_kind(name: str) -> str:
    if name.startswith(("pelvis", "spine")):
        return "spine"
    if name.startswith("Tail"):
        return "tail"
    if name.endswith("Ear"):
        return "ear"
    table = {
        "Leg1": "shoulder",
        "Leg2": "elbow",
        "Leg3": "wrist",
        "Foot": "front_foot",
        "LegBack1": "hip",
        "LegBack2": "knee",
        "LegBack3": "hock",
        "FootBack": "back_foot",
        "Neck": "neck",
        "Head": "head",
        "Mouth": "mouth",
    }
    return table[name[1:] if name[0] in "LR" and name[1:] in table else name]


# (34, 3, 2) lower/upper bound per posed joint (body_pose order: SMAL joints 1..34).
JOINT_LIMITS_DEG = np.array(
    [_LIMITS_BY_KIND[joint_kind(n)] for n in SMAL_JOINT_NAMES[1:]], dtype=np.float64
)


def clip_to_limits(angles_deg: np.ndarray) -> np.ndarray:
    """Clip (34, 3) Euler angles (x, y, z) into :data:`JOINT_LIMITS_DEG`."""
    return np.clip(angles_deg, JOINT_LIMITS_DEG[..., 0], JOINT_LIMITS_DEG[..., 1])


def within_limits(angles_deg: np.ndarray, tol: float = 1e-9) -> bool:
    a = np.asarray(angles_deg)
    return bool(
        np.all(a >= JOINT_LIMITS_DEG[..., 0] - tol) and np.all(a <= JOINT_LIMITS_DEG[..., 1] + tol)
    )


def euler_to_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """(..., 3) degrees (x, y, z) → (..., 3, 3) ``Rz @ Ry @ Rx``."""
    x, y, z = np.moveaxis(np.radians(np.asarray(angles_deg, dtype=np.float64)), -1, 0)
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    one, zero = np.ones_like(x), np.zeros_like(x)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(*x.shape, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*x.shape, 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(*x.shape, 3, 3)
    return rz @ ry @ rx
