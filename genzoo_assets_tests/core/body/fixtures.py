"""Small body-model arrays built in code for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genzoo_assets.core.body.skeleton import SMAL_PARENTS

NJ = 35


def tiny_arrays(
    num_vertices: int = 60, num_betas: int = 5, seed: int = 0, posedirs_scale: float = 0.0
) -> dict:
    """A random but valid SMAL-layout model (dict with the file keys; posedirs in (V, 3, 306))."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(num_vertices, 3)) * 0.3
    w = rng.random((num_vertices, NJ)) ** 4
    w /= w.sum(1, keepdims=True)
    jr = rng.random((NJ, num_vertices))
    jr /= jr.sum(1, keepdims=True)
    return {
        "v_template": v,
        "shapedirs": rng.normal(size=(num_vertices, 3, num_betas)) * 0.01,
        "posedirs": rng.normal(size=(num_vertices, 3, 9 * (NJ - 1))) * posedirs_scale,
        "J_regressor": jr,
        "weights": w,
        "kintree_table": np.stack([np.array(SMAL_PARENTS), np.arange(NJ)]),
        "f": rng.integers(0, num_vertices, size=(2 * num_vertices, 3)).astype(np.uint32),
    }


SMAL_VERTICES = 3889  # SMAL / SMAL+ mesh size: AniMer's keypoint vertex lists apply


def smal_topology_model(directory, num_betas: int = 41, seed: int = 0, name: str | None = None):
    """A random model with SMAL's topology (3889 vertices, SMAL's joint tree), written as an npz
    without keypoint groups (as released SMAL files are) and loaded back."""
    from genzoo_assets.core.body import load_body_model

    a = tiny_arrays(num_vertices=SMAL_VERTICES, num_betas=num_betas, seed=seed)
    path = Path(directory) / (name or f"smal_{num_betas}_{seed}.npz")
    np.savez(path, **a)
    return load_body_model(path)
