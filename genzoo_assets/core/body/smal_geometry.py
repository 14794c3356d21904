"""Orientation and keypoint vertex groups derived from a SMAL-topology template's own geometry.

Released SMAL files carry neither. Both rules only use the SMAL joint order (skeleton.py), so they
hold for SMAL, SMAL+ and any file in the same layout:

* canonical rotation: forward = pelvis -> head, right = mean(right leg joints) - mean(left leg
  joints), up = right x forward; snapped to a signed axis permutation when the template is axis
  aligned. Derived rather than hard-coded so SMAL, SMAL+ and re-exported files all work. Source for
  expecting an axis-aligned z-up SMAL template: SMALify (benjiebob/SMALify, smal_fitter.py) starts
  its fits "head-on" with eul_to_axis([-pi/2, 0, -pi/2]), i.e. Rx(-pi/2) Rz(-pi/2) (transforms3d's
  euler2mat(z, y, x) = Rx Ry Rz), which sends model +z to the camera's up axis.
* keypoint groups (our rule, Animal3D's semantics): each group is a handful of vertices chosen by
  which joint dominates their skinning weights plus an extremal direction in the canonical frame.
"""

from __future__ import annotations

import numpy as np

from .skeleton import KEYPOINT_NAMES

_LEFT_LEGS = (7, 8, 9, 10, 17, 18, 19, 20)
_RIGHT_LEGS = (11, 12, 13, 14, 21, 22, 23, 24)


def derive_canonical_rotation(joints: np.ndarray) -> np.ndarray:
    """3x3 rotation mapping model coordinates to canonical (x forward, y up, z right)."""
    fwd = joints[16] - joints[0]
    right = joints[list(_RIGHT_LEGS)].mean(0) - joints[list(_LEFT_LEGS)].mean(0)
    right -= right @ fwd / (fwd @ fwd) * fwd
    fwd, right = fwd / np.linalg.norm(fwd), right / np.linalg.norm(right)
    up = np.cross(right, fwd)
    c = np.stack([fwd, up, right])  # rows: canonical axes in model coordinates
    snapped = np.zeros_like(c)
    for i, row in enumerate(c):
        k = int(np.argmax(np.abs(row)))
        snapped[i, k] = np.sign(row[k])
    ok = np.allclose(np.abs(snapped).sum(0), 1) and np.linalg.det(snapped) > 0
    if ok and np.all(np.abs(c).max(1) > 0.9):
        return snapped
    u, _, vt = np.linalg.svd(c)
    return u @ vt


def _take(ids: np.ndarray, score: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in ids[np.argsort(-score)[:k]]]


def derive_keypoint_groups(
    v_template: np.ndarray,
    weights: np.ndarray,
    j_regressor: np.ndarray,
    canonical_rotation: np.ndarray,
) -> list[list[int]]:
    """26 vertex groups in KEYPOINT_NAMES order (see module docstring for the rule)."""
    v = v_template @ canonical_rotation.T
    j = (j_regressor @ v_template) @ canonical_rotation.T
    dom = weights.argmax(1)
    size = np.ptp(v, axis=0).max()
    all_ids = np.arange(len(v))

    def dominated(joints) -> np.ndarray:
        ids = all_ids[np.isin(dom, joints)]
        return ids if ids.size else all_ids

    def nearest(joint: int, owners, k: int = 8) -> list[int]:
        ids = dominated(owners)
        return _take(ids, -np.linalg.norm(v[ids] - j[joint], axis=1), k)

    g: dict[str, list[int]] = {}
    head_ids = dominated([16, 32])
    nose_ids = dominated([16])
    g["nose"] = _take(nose_ids, v[nose_ids, 0], 6)
    nose = v[g["nose"]].mean(0)
    jaw = dominated([32])
    g["mouth_mid"] = _take(jaw, v[jaw, 0] - 0.5 * np.abs(v[jaw, 2]), 6)
    head_len = max(nose[0] - j[16, 0], 1e-3)
    for lr, sgn, ear, legs in (("left", -1.0, 33, _LEFT_LEGS), ("right", 1.0, 34, _RIGHT_LEGS)):
        side = head_ids[sgn * v[head_ids, 2] > 0]
        side = side if side.size else head_ids
        eye_x = j[16, 0] + 0.55 * head_len
        near_x = side[np.abs(v[side, 0] - eye_x) < 0.15 * head_len]
        near_x = near_x if near_x.size else side
        g[f"{lr}_eye"] = _take(near_x, (v[near_x, 1] - j[16, 1]) + np.abs(v[near_x, 2]), 5)
        mouth_x = j[32, 0] + 0.3 * (nose[0] - j[32, 0])
        corner = side[
            (np.abs(v[side, 0] - mouth_x) < 0.15 * head_len)
            & (np.abs(v[side, 1] - j[32, 1]) < 0.25 * head_len)
        ]
        corner = corner if corner.size else side
        g[f"{lr}_mouth"] = _take(corner, np.abs(v[corner, 2]), 5)
        ear_ids = dominated([ear])
        g[f"{lr}_ear"] = _take(ear_ids, v[ear_ids, 1], 6)
        f1, f2, f3, f4, b1, b2, b3, b4 = legs
        g[f"{lr}_front_paw"] = _take(dominated([f4]), -v[dominated([f4]), 1], 8)
        g[f"{lr}_back_paw"] = _take(dominated([b4]), -v[dominated([b4]), 1], 8)
        g[f"{lr}_front_thigh"] = nearest(f2, [f1, f2])
        g[f"{lr}_back_thigh"] = nearest(b2, [b1, b2])
        g[f"{lr}_front_knee"] = nearest(f3, [f2, f3])
        g[f"{lr}_back_knee"] = nearest(b3, [b2, b3])
        torso = dominated([4, 5, 6, f1])
        torso = torso[sgn * v[torso, 2] > 0]
        target = j[f1] + np.array([0.0, 0.05 * size, 0.0])
        g[f"{lr}_shoulder"] = _take(
            torso, np.abs(v[torso, 2]) * 0.5 - np.linalg.norm(v[torso] - target, axis=1), 8
        )
    g["neck"] = nearest(15, [15, 6])
    g["tail_base"] = nearest(25, [25, 0])
    g["tail_mid"] = nearest(28, [27, 28])
    tip = dominated([31])
    g["tail_end"] = _take(tip, v[tip] @ (j[31] - j[30]), 6)
    return [g[n] for n in KEYPOINT_NAMES]
