"""A SMAL-topology body model built in code: 3889 vertices, SMAL's 35-joint tree, 145 betas (or 41).

The released SMAL+ file cannot be shipped, so the GenZoo-compatibility tests use a stand-in with
the same array shapes and key names, written as a plain pickle that both ``smplx.SMPLLayer`` and
our loader read. Geometry: one closed UV sphere around each joint of the procedural quadruped's
skeleton (34 of 110 vertices, the root's of 149: 3889 in all), skinned 0.8 to its joint and 0.2
to the parent, with random 145-dimensional shape blend shapes and small pose correctives, each
moving or scaling whole spheres.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from genzoo_assets.core.body import procedural_body_model
from genzoo_assets.core.body.skeleton import SMAL_PARENTS

NUM_VERTICES, NUM_BETAS, NUM_JOINTS = 3889, 145, 35


def uv_sphere(rings: int, around: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere: ``rings`` latitude rings of ``around`` vertices plus two poles; outward faces."""
    lat = np.pi * np.arange(1, rings + 1) / (rings + 1)
    lon = 2 * np.pi * np.arange(around) / around
    ring = np.stack(
        [
            np.sin(lat)[:, None] * np.cos(lon),
            np.cos(lat)[:, None].repeat(around, 1),
            np.sin(lat)[:, None] * np.sin(lon),
        ],
        -1,
    ).reshape(-1, 3)
    verts = np.concatenate([ring, [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])
    j, jn = np.arange(around), (np.arange(around) + 1) % around
    faces = [
        np.stack([np.full(around, rings * around), jn, j], 1),
        np.stack(
            [
                np.full(around, rings * around + 1),
                (rings - 1) * around + j,
                (rings - 1) * around + jn,
            ],
            1,
        ),
    ]
    for r in range(rings - 1):
        a0, a1, b0, b1 = (
            r * around + j,
            r * around + jn,
            (r + 1) * around + j,
            (r + 1) * around + jn,
        )
        faces += [np.stack([a0, a1, b0], 1), np.stack([a1, b1, b0], 1)]
    return verts, np.concatenate(faces)


def smal_topology_arrays(seed: int = 0, num_betas: int = NUM_BETAS) -> dict:
    """The model file's dict: SMAL's keys plus ``canonical_rotation``. No ``keypoint_groups``, so the
    loader gives it the keypoint set of every SMAL file (AniMer's vertex lists on this topology)."""
    rng = np.random.default_rng(seed)
    proc = procedural_body_model()
    joints = proc.joint_template.double().numpy()
    parts, faces, owner = [], [], []
    for j in range(NUM_JOINTS):
        unit, f = uv_sphere(7, 21) if j == 0 else uv_sphere(9, 12)
        radius = 0.03 if j == 0 else 0.015  # small: Loop subdivision shrinks a sphere by ~5 % of r
        faces.append(f + sum(len(p) for p in parts))
        parts.append(joints[j] + radius * unit)
        owner += [j] * len(unit)
    verts, owner = np.concatenate(parts), np.asarray(owner)
    assert verts.shape == (NUM_VERTICES, 3)
    weights = np.zeros((NUM_VERTICES, NUM_JOINTS))
    weights[np.arange(NUM_VERTICES), owner] = 1.0
    child = owner > 0
    weights[child, owner[child]] = 0.8
    weights[child, np.asarray(SMAL_PARENTS)[owner[child]]] = 0.2
    j_regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    j_regressor[owner, np.arange(NUM_VERTICES)] = 1.0
    j_regressor /= j_regressor.sum(
        1, keepdims=True
    )  # a sphere's vertex mean is its centre: the joint
    # Blend shapes move and scale whole spheres, so every shape stays smooth (per-vertex noise would
    # be smoothed away by the renderer's subdivision and shrink the silhouette).
    offsets = verts - joints[owner]
    shapedirs = (
        rng.normal(scale=0.006, size=(NUM_JOINTS, 3, num_betas))[owner]
        + offsets[:, :, None] * rng.normal(scale=0.02, size=(NUM_JOINTS, 1, num_betas))[owner]
    )
    posedirs = rng.normal(scale=2e-4, size=(NUM_JOINTS, 3, 9 * (NUM_JOINTS - 1)))[owner]
    return {
        "v_template": verts,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": np.stack(
            [np.asarray(SMAL_PARENTS, dtype=np.int64), np.arange(NUM_JOINTS)]
        ),
        "f": np.concatenate(faces).astype(np.uint32),
        "canonical_rotation": np.eye(3),
    }


def write_smal_topology_model(path: Path, seed: int = 0, num_betas: int = NUM_BETAS) -> Path:
    """Pickle the arrays (protocol 2, like the released SMAL files) so smplx and our loader read it."""
    path = Path(path)
    path.write_bytes(pickle.dumps(smal_topology_arrays(seed, num_betas), protocol=2))
    return path
