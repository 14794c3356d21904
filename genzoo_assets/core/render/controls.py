"""2D annotations derived from a render: projected points, their visibility, bbox and mask area."""

from __future__ import annotations

import numpy as np

from genzoo_assets.core.sampling.camera_model import Camera, project

# A point counts as visible when it lies at most this fraction of the body's size behind the
# rendered surface: keypoints (vertex-group means) and joints sit inside the body, not on it.
VISIBILITY_REL_TOL = 0.1


def project_points(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixel coordinates (N, 2) of camera-frame points (N, 3), via ``sampling.camera_model.project``."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3) in the camera frame, got shape {points.shape}")
    return project(points, camera)


def body_size(vertices: np.ndarray) -> float:
    """The largest side of the vertex bounding box: the length scale of the visibility tolerance."""
    return float(np.ptp(np.asarray(vertices, dtype=np.float64), axis=0).max())


def visibility(
    points: np.ndarray,
    points_2d: np.ndarray,
    depth: np.ndarray,
    size: float,
    rel_tol: float = VISIBILITY_REL_TOL,
) -> np.ndarray:
    """(N,) bool: inside the image and not hidden behind the rendered surface.

    The rendered depth is read in the 3×3 pixel window around the point (its farthest foreground
    value, so a point on the silhouette rim is not lost to rounding); the point is visible when its
    camera depth is at most that depth + ``rel_tol × size``. A window with no foreground (the point
    projects onto background) is not visible.
    """
    points = np.asarray(points, dtype=np.float64)
    res_y, res_x = depth.shape
    uv = np.asarray(points_2d, dtype=np.float64)
    inside = (
        (uv[:, 0] >= 0)
        & (uv[:, 0] < res_x)
        & (uv[:, 1] >= 0)
        & (uv[:, 1] < res_y)
        & np.isfinite(uv).all(1)
    )
    vis = np.zeros(len(points), dtype=bool)
    tol = rel_tol * size
    for i in np.flatnonzero(inside):
        col, row = int(uv[i, 0]), int(uv[i, 1])
        window = depth[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
        fg = window[window > 0]
        vis[i] = fg.size > 0 and points[i, 2] <= float(fg.max()) + tol
    return vis


def bbox_from_mask(mask: np.ndarray) -> np.ndarray:
    """(x, y, w, h) in pixels of the silhouette (pixel edges, so a one-pixel mask is 1 × 1); zeros if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros(4, dtype=np.float64)
    x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    return np.array([x0, y0, x1 - x0, y1 - y0], dtype=np.float64)


def mask_area(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))
