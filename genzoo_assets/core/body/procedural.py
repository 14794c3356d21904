"""The embedded default body model: a quadruped built in code (no data file), SMAL's skeleton.

Shape blend shapes: the first ten betas are named proportions (``PROCEDURAL_SHAPE_AXES``), each the
least-squares linear fit of the construction over beta in [-3, 3]; further betas are small smooth
left/right-symmetric deformations from a fixed seed. Posedirs are zero (no pose correctives).
"""

from __future__ import annotations

import functools

import numpy as np

from genzoo_assets.core.errors import InputError

from .model import BodyModel
from .procedural_layout import PROCEDURAL_SHAPE_AXES, quadruped_tubes
from .skeleton import KEYPOINT_NAMES, NUM_JOINTS, SMAL_JOINT_NAMES, SMAL_PARENTS
from .tubes import TubeMesh, build_tube, chain_weights, ring_centres

__all__ = ["PROCEDURAL_SHAPE_AXES", "procedural_body_model", "procedural_arrays"]

PROCEDURAL_SEED = 20250101
_FIT_BETAS = np.array([-3.0, -1.5, 1.5, 3.0])


def _assemble(axes: np.ndarray, frames: list[np.ndarray] | None = None):
    specs = quadruped_tubes(axes)
    if frames is None:
        frames = [ring_centres(s) for s in specs]
    meshes = [build_tube(s, f) for s, f in zip(specs, frames)]
    return specs, meshes, frames


def _stack(meshes: list[TubeMesh]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    verts = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets[:-1])])
    return verts, faces, list(offsets)


def _outward(verts: np.ndarray, faces: np.ndarray, meshes, offsets) -> np.ndarray:
    """Flip each part whose signed volume is negative so all normals point out."""
    out = faces.copy()
    fo = np.cumsum([0] + [len(m.faces) for m in meshes])
    for i in range(len(meshes)):
        f = out[fo[i] : fo[i + 1]]
        a, b, c = verts[f[:, 0]], verts[f[:, 1]], verts[f[:, 2]]
        if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0:
            out[fo[i] : fo[i + 1]] = f[:, ::-1]
    return out


def _extra_directions(verts: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Smooth, symmetric, seeded displacement fields (V, 3, count), each at most ~1.5 cm."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(verts), 3, count))
    mirror = np.array([1.0, 1.0, -1.0])
    lo, hi = verts.min(0), verts.max(0)
    for i in range(count):
        centres = rng.uniform(lo, hi, size=(4, 3))
        vecs = rng.normal(size=(4, 3))
        sigma = rng.uniform(0.08, 0.2)

        def field(x):
            d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
            return np.exp(-d2 / (2 * sigma**2)) @ vecs

        d = 0.5 * (field(verts) + field(verts * mirror) * mirror)
        out[:, :, i] = d * (0.015 / max(np.abs(d).max(), 1e-12))
    return out


def _keypoint_groups(verts: np.ndarray, specs, meshes, offsets) -> list[list[int]]:
    """The 26 Animal3D keypoints as vertex groups on this mesh (KEYPOINT_NAMES order).

    Rule: thigh = elbow/stifle (joint 2 of the leg), knee = wrist/hock (joint 3), shoulder = the
    torso-side surface at the front leg's top joint; left is -z.
    """
    part = {s.name: (offsets[i], offsets[i + 1]) for i, s in enumerate(specs)}
    mesh_of = {s.name: m for s, m in zip(specs, meshes)}

    def near(name: str, target: np.ndarray, k: int = 8) -> list[int]:
        lo, hi = part[name]
        d = np.linalg.norm(verts[lo:hi] - target, axis=1)
        return [int(lo + i) for i in np.argsort(d)[:k]]

    def ring(name: str, joint: int) -> list[int]:
        lo, _ = part[name]
        return [int(lo + i) for i in mesh_of[name].joint_rings[joint]]

    def point(name: str, idx: int) -> np.ndarray:
        return next(s for s in specs if s.name == name).points[idx]

    head, snout_tip = point("neck_head", 2), point("neck_head", 5)
    groups: dict[str, list[int]] = {}
    for lr, sgn in (("left", -1.0), ("right", 1.0)):
        groups[f"{lr}_eye"] = near("neck_head", head + np.array([0.075, 0.04, sgn * 0.05]), 6)
        groups[f"{lr}_ear"] = near(f"{lr}_ear", point(f"{lr}_ear", 2), 6)
        groups[f"{lr}_mouth"] = near("jaw", point("jaw", 1) + np.array([0.02, 0.0, sgn * 0.04]), 5)
        for where in ("front", "back"):
            leg = f"{lr}_{where}_leg"
            j0 = {"front": 7, "back": 17}[where] + (0 if lr == "left" else 4)
            groups[f"{lr}_{where}_paw"] = near(
                leg, point(leg, 4) + np.array([0.03, -0.03, 0.0]), 10
            )
            groups[f"{lr}_{where}_thigh"] = ring(leg, j0 + 1)
            groups[f"{lr}_{where}_knee"] = ring(leg, j0 + 2)
        groups[f"{lr}_shoulder"] = near(
            "torso", point(f"{lr}_front_leg", 1) + np.array([0.0, 0.02, sgn * 0.08]), 8
        )
    groups["mouth_mid"] = near("jaw", point("jaw", 2) + np.array([0.02, 0.01, 0.0]), 6)
    groups["nose"] = near("neck_head", snout_tip + np.array([0.03, 0.0, 0.0]), 6)
    groups["neck"] = ring("neck_head", 15)
    groups["tail_base"] = ring("tail", 25)
    groups["tail_mid"] = ring("tail", 28)
    groups["tail_end"] = near("tail", point("tail", 8) + np.array([-0.03, -0.01, 0.0]), 6)
    return [groups[n] for n in KEYPOINT_NAMES]


@functools.lru_cache(maxsize=8)
def procedural_arrays(num_betas: int = 20) -> dict:
    """All arrays of the procedural model (cached; numpy, float64)."""
    if num_betas < len(PROCEDURAL_SHAPE_AXES):
        raise InputError(
            f"the procedural model needs num_betas >= {len(PROCEDURAL_SHAPE_AXES)}, got {num_betas}"
        )
    zero = np.zeros(len(PROCEDURAL_SHAPE_AXES))
    specs, meshes, frames = _assemble(zero)
    verts, faces, offsets = _stack(meshes)
    faces = _outward(verts, faces, meshes, offsets)
    nv = len(verts)

    shapedirs = np.zeros((nv, 3, num_betas))
    for i in range(len(PROCEDURAL_SHAPE_AXES)):
        num = np.zeros_like(verts)
        for b in _FIT_BETAS:
            axes = zero.copy()
            axes[i] = b
            num += b * (_stack(_assemble(axes, frames)[1])[0] - verts)
        shapedirs[:, :, i] = num / np.sum(_FIT_BETAS**2)
    if num_betas > len(PROCEDURAL_SHAPE_AXES):
        shapedirs[:, :, len(PROCEDURAL_SHAPE_AXES) :] = _extra_directions(
            verts, num_betas - len(PROCEDURAL_SHAPE_AXES), PROCEDURAL_SEED
        )

    weights = np.zeros((nv, NUM_JOINTS))
    j_regressor = np.zeros((NUM_JOINTS, nv))
    for spec, mesh, off in zip(specs, meshes, offsets):
        weights[off : off + len(mesh.vertices)] = chain_weights(mesh.param, spec.bones, NUM_JOINTS)
        for joint, ring in mesh.joint_rings.items():
            j_regressor[joint, off + ring] = 1.0 / len(ring)
    missing = [SMAL_JOINT_NAMES[j] for j in range(NUM_JOINTS) if j_regressor[j].sum() == 0]
    if missing:
        raise RuntimeError(f"procedural layout places no ring at joints {missing}")
    kintree = np.stack([np.array(SMAL_PARENTS), np.arange(NUM_JOINTS)])
    return {
        "v_template": verts,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((nv, 3, 9 * (NUM_JOINTS - 1))),
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces,
        "joint_names": np.array(SMAL_JOINT_NAMES),
        "keypoint_groups": _keypoint_groups(verts, specs, meshes, offsets),
        "shape_axes": np.array(PROCEDURAL_SHAPE_AXES),
    }


def procedural_body_model(num_betas: int = 20) -> BodyModel:
    """The embedded quadruped: SMAL's 35 joints and names, canonical frame (identity rotation)."""
    a = procedural_arrays(num_betas)
    return BodyModel(
        a["v_template"],
        a["shapedirs"],
        a["posedirs"],
        a["J_regressor"],
        a["weights"],
        a["kintree_table"][0],
        a["f"],
        keypoint_groups=a["keypoint_groups"],
        joint_names=SMAL_JOINT_NAMES,
        canonical_rotation=np.eye(3),
        source=f"procedural(num_betas={num_betas})",
        sha256=None,
        keypoint_set="derived",
    )
