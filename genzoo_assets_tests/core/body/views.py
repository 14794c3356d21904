"""Offscreen renders of posed bodies for looking at (test-output/body/*.png)."""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world pose (OpenGL: camera looks along -z)."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = r, u, -f, eye
    return pose


def render_views(
    vertices: np.ndarray,
    faces: np.ndarray,
    keypoints: np.ndarray | None = None,
    size: int = 320,
    directions=((0.0, 0.15, 1.0), (0.8, 0.35, 0.8), (1.0, 0.1, 0.0)),
) -> np.ndarray:
    """Views from ``directions`` (default side, 3/4, front; canonical frame, y up), side by side, uint8 RGB."""
    import pyrender
    import trimesh

    centre = (vertices.max(0) + vertices.min(0)) / 2
    extent = np.ptp(vertices, axis=0).max()
    scene = pyrender.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[0.35, 0.35, 0.35])
    scene.add(
        pyrender.Mesh.from_trimesh(
            trimesh.Trimesh(vertices, faces, process=False),
            material=pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[0.75, 0.6, 0.45, 1.0], metallicFactor=0.0
            ),
            smooth=True,
        )
    )
    if keypoints is not None:
        tf = np.tile(np.eye(4), (len(keypoints), 1, 1))
        tf[:, :3, 3] = keypoints
        scene.add(
            pyrender.Mesh.from_trimesh(
                trimesh.creation.uv_sphere(radius=extent * 0.012, count=[8, 8]),
                poses=tf,
                material=pyrender.MetallicRoughnessMaterial(baseColorFactor=[0.9, 0.1, 0.1, 1.0]),
            )
        )
    camera = scene.add(pyrender.PerspectiveCamera(yfov=np.radians(45)))
    light = scene.add(pyrender.DirectionalLight(intensity=3.0))
    renderer = pyrender.OffscreenRenderer(size, size)
    tiles = []
    try:
        for direction in directions:
            d = np.asarray(direction, dtype=float)
            pose = look_at(centre + d / np.linalg.norm(d) * extent * 1.6, centre)
            scene.set_pose(camera, pose)
            scene.set_pose(light, pose)
            tiles.append(renderer.render(scene)[0])
    finally:
        renderer.delete()
    return np.concatenate(tiles, axis=1)
