"""A toy quadruped mesh (ellipsoids) with its control renders, built in code for imagegen tests."""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import trimesh

from genzoo_assets.core.imagegen.base import GenerationRequest
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.sampling.camera_model import Camera, view_rotation

# (centre, radii) in the canonical frame: x forward, y up, z right; metres.
PARTS = (
    ((0.0, 0.0, 0.0), (0.45, 0.17, 0.15)),  # torso
    ((0.55, 0.15, 0.0), (0.16, 0.11, 0.1)),  # head
    ((0.42, 0.07, 0.0), (0.14, 0.07, 0.07)),  # neck
    ((0.3, -0.3, 0.09), (0.05, 0.22, 0.05)),  # legs
    ((0.3, -0.3, -0.09), (0.05, 0.22, 0.05)),
    ((-0.3, -0.3, 0.09), (0.055, 0.22, 0.055)),
    ((-0.3, -0.3, -0.09), (0.055, 0.22, 0.055)),
    ((-0.55, 0.05, 0.0), (0.18, 0.03, 0.03)),  # tail
)


def toy_mesh() -> tuple[np.ndarray, np.ndarray]:
    verts, faces = [], []
    for centre, radii in PARTS:
        sphere = trimesh.creation.icosphere(subdivisions=2)
        verts.append(sphere.vertices * np.asarray(radii) + np.asarray(centre))
        faces.append(sphere.faces + sum(len(v) for v in verts[:-1]))
    return np.concatenate(verts), np.concatenate(faces).astype(np.int64)


def toy_request(
    seed: int,
    species: str = "dog",
    prompt: str = "a dog",
    size: int = 128,
    yaw: float = 60.0,
    pitch: float = 15.0,
    renderer: ControlRenderer | None = None,
    with_mesh: bool = True,
) -> GenerationRequest:
    canon, faces = toy_mesh()
    posed = canon @ view_rotation(yaw, pitch).T + np.array([0.05, 0.1, 3.2])
    camera = Camera("perspective", size, fov_deg=35.0)
    own = renderer is None
    renderer = renderer or ControlRenderer(size, subdivisions=1)
    try:
        maps = renderer.render(posed, faces, camera)
    finally:
        if own:
            renderer.close()
    mesh = (
        dict(vertices=posed, faces=faces, camera=camera, canonical_vertices=canon)
        if with_mesh
        else {}
    )
    return GenerationRequest(
        f"{species}.000.{seed:05d}",
        prompt,
        maps.canny,
        maps.depth_u8,
        maps.mask,
        maps.rgb,
        seed,
        species=species,
        **mesh,
    )
