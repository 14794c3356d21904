"""A tiny SMAL-topology body model (35 joints, any number of betas) built in code."""

import numpy as np

from genzoo_assets.core.body.model import BodyModel
from genzoo_assets.core.body.skeleton import NUM_KEYPOINTS, SMAL_PARENTS

_TETRA = np.array(
    [[0.03, 0.03, 0.03], [-0.03, -0.03, 0.03], [-0.03, 0.03, -0.03], [0.03, -0.03, -0.03]]
)
_TETRA_FACES = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])


def tiny_body_model(num_betas: int = 41, seed: int = 0) -> BodyModel:
    """Four vertices (a small tetrahedron) rigidly skinned to each of the 35 joints."""
    rng = np.random.default_rng(seed)
    joints = np.zeros((35, 3))
    for j, p in enumerate(SMAL_PARENTS[1:], start=1):
        joints[j] = joints[p] + rng.normal(scale=0.15, size=3)
    verts = (joints[:, None] + _TETRA[None]).reshape(-1, 3)
    nv = verts.shape[0]
    weights = np.zeros((nv, 35))
    weights[np.arange(nv), np.arange(nv) // 4] = 1.0
    j_reg = weights.T / 4.0
    faces = (_TETRA_FACES[None] + 4 * np.arange(35)[:, None, None]).reshape(-1, 3)
    groups = [list(rng.choice(nv, size=3, replace=False)) for _ in range(NUM_KEYPOINTS)]
    return BodyModel(
        v_template=verts,
        shapedirs=rng.normal(scale=0.01, size=(nv, 3, num_betas)),
        posedirs=np.zeros((nv, 3, 34 * 9)),
        J_regressor=j_reg,
        weights=weights,
        parents=np.array(SMAL_PARENTS),
        faces=faces,
        keypoint_groups=groups,
        source=f"tiny-test-model-{num_betas}",
    )
