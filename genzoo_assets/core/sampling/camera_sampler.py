"""Camera sampling for GenZoo's two conventions (``camera_model.py`` defines them and projection).

Viewpoint: yaw ~ U[-180°, 180°) (every side of the animal equally often), pitch ~ N(10°, 10°)
clipped to [-10°, 60°] (mostly from slightly above, as photographers and GenZoo's renders see
animals; never from far below). The body's global orientation is then
``view_rotation(yaw, pitch) @ R_posture_canonical @ C``.

Framing, from the posed vertices ``p`` in camera orientation (``view @ p_canonical``):

- ``perspective`` (v2): fov ~ U(30°, 60°) unless fixed; the body is pushed back along the
  optical axis until its projection fills a fraction U(0.6, 1) of the image minus margins, then
  shifted sideways/vertically at random as far as the margins allow — the whole silhouette
  always lies inside the image.
- ``weak`` (v1, GenZoo's ``deduce_randomized_weak_perspective_params``, draw for draw): the scale
  fits the vertex box to the image (minus margins) × U(0.9, 1); tx uniform over the positions that
  keep the box inside; ty uniform in the lower half of its range (animals stand in the lower part
  of a photo). Depth is set only so an orthographic render can z-buffer.

Margins (``margin``, a fraction of the image per side): none by default, as GenZoo's framing (its
box may touch the border at scale factor 1). A margin keeps the silhouette off the border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.sampling.camera_model import Camera, project, view_rotation


@dataclass(frozen=True)
class ViewSample:
    yaw_deg: float
    pitch_deg: float
    rotation: np.ndarray  # canonical → camera


@dataclass(frozen=True)
class CameraSample:
    camera: Camera
    view: ViewSample
    transl: np.ndarray  # camera-frame points = view.rotation @ p_canonical + transl


def sample_view(
    rng: np.random.Generator,
    yaw_range=(-180.0, 180.0),
    pitch_mean: float = 10.0,
    pitch_std: float = 10.0,
    pitch_range=(-10.0, 60.0),
) -> ViewSample:
    yaw = float(rng.uniform(*yaw_range))
    pitch = float(np.clip(rng.normal(pitch_mean, pitch_std), *pitch_range))
    return ViewSample(yaw, pitch, view_rotation(yaw, pitch))


def _fit_perspective(
    points: np.ndarray,
    rng: np.random.Generator,
    resolution: int,
    fov_deg: float,
    margin: float,
    fill_range,
) -> tuple[Camera, np.ndarray]:
    camera = Camera("perspective", resolution, fov_deg=fov_deg)
    centre = 0.5 * (points.min(0) + points.max(0))
    q = points - centre
    extent = float(np.linalg.norm(q, axis=1).max()) or 1.0
    room = math.tan(math.radians(fov_deg) / 2.0) * (1.0 - 2.0 * margin)  # half-image in z=1 units
    a = room * float(rng.uniform(*fill_range))
    depth = float(np.max(np.maximum(np.abs(q[:, 0]), np.abs(q[:, 1])) / a - q[:, 2]))
    depth = max(depth, float(-q[:, 2].min()) + 0.05 * extent)
    shift = rng.uniform(-1.0, 1.0, 2) * (room - a) * depth
    lo, hi = margin * resolution - 1e-6, (1.0 - margin) * resolution + 1e-6
    for _ in range(
        20
    ):  # perspective makes near parts project larger: shrink the shift until it fits
        transl = np.array([shift[0], shift[1], depth]) - centre
        uv = project(points + transl, camera)
        if uv.min() >= lo and uv.max() <= hi:
            return camera, transl
        shift = 0.5 * shift
    return camera, np.array([0.0, 0.0, depth]) - centre


def _fit_weak(
    points: np.ndarray, rng: np.random.Generator, resolution: int, margin: float, scale_range
) -> tuple[Camera, np.ndarray]:
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    size = np.maximum(hi - lo, 1e-9)
    span = 2.0 * (1.0 - 2.0 * margin)  # normalised image span left after margins
    s = float(span / size.max() * rng.uniform(*scale_range))
    edge = 1.0 - 2.0 * margin
    tx_lo, tx_hi = -edge - s * lo[0], edge - s * hi[0]
    ty_lo, ty_hi = -edge - s * lo[1], edge - s * hi[1]
    tx = float(rng.uniform(min(tx_lo, tx_hi), max(tx_lo, tx_hi)))
    ty = float(rng.uniform(0.5 * (ty_lo + ty_hi), max(ty_lo, ty_hi)))
    depth = 2.0 * float(np.linalg.norm(points - points.mean(0), axis=1).max()) + 1.0
    camera = Camera("weak", resolution, scale=s, tx=tx, ty=ty)
    return camera, np.array([0.0, 0.0, depth - float(points[:, 2].mean())])


def sample_camera(
    camera_model: str,
    vertices_canonical: np.ndarray,
    rng: np.random.Generator,
    resolution: int = 1024,
    *,
    fov_deg: float | None = None,
    fov_range=(30.0, 60.0),
    margin: float = 0.0,
    fill_range=(0.6, 1.0),
    scale_range=(0.9, 1.0),
    view: ViewSample | None = None,
) -> CameraSample:
    """A viewpoint and a camera that frames the posed body (vertices in the canonical frame, (V, 3)).

    The body rotates about the canonical origin; ``transl`` then places it:
    ``p_camera = view.rotation @ p_canonical + transl``.
    """
    if camera_model not in ("weak", "perspective"):
        raise InputError(f"camera model {camera_model!r} is not one of ('weak', 'perspective')")
    if not 0.0 <= margin < 0.5:
        raise InputError(f"camera margin must be in [0, 0.5), got {margin}")
    v = np.asarray(vertices_canonical, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise ValueError(f"vertices_canonical must be finite (V, 3), got shape {v.shape}")
    view = view or sample_view(rng)
    points = v @ view.rotation.T
    if camera_model == "perspective":
        fov = float(fov_deg) if fov_deg is not None else float(rng.uniform(*fov_range))
        camera, transl = _fit_perspective(points, rng, resolution, fov, margin, fill_range)
    else:
        camera, transl = _fit_weak(points, rng, resolution, margin, scale_range)
    return CameraSample(camera, view, transl)
