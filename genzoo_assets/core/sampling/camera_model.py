"""The two camera conventions of GenZoo, and projection — the single place both are defined.

Frame: OpenCV camera coordinates (x right, y down, z forward, away from the camera). The body is
posed directly in this frame (its global orientation includes the viewpoint); the camera sits at
the origin. Image size is ``resolution`` × ``resolution`` pixels; pixel centres at integer + 0.5,
so the principal point is ``resolution / 2``.

- ``perspective`` (GenZoo v2): ``u = f·X/Z + c`` with ``f = (R/2) / tan(fov/2)``; the body is
  placed by its translation ``transl``.
- ``weak`` (GenZoo v1, HMR-style weak perspective): in normalised image coordinates
  ``x_n = s·X + tx``, ``y_n = s·Y + ty`` (−1..1 across the image), pixel ``u = (x_n + 1)·R/2``.
  ``transl`` still sets the depth used for z-buffering (an orthographic render).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CAMERA_MODELS = ("weak", "perspective")


@dataclass(frozen=True)
class Camera:
    model: str  # "weak" | "perspective"
    resolution: int
    fov_deg: float = 0.0  # perspective only
    scale: float = 0.0  # weak only: s in normalised units per metre
    tx: float = 0.0  # weak only
    ty: float = 0.0  # weak only

    def __post_init__(self):
        if self.model not in CAMERA_MODELS:
            raise ValueError(f"camera model {self.model!r} is not one of {CAMERA_MODELS}")
        if self.resolution <= 0:
            raise ValueError(f"camera resolution must be positive, got {self.resolution}")
        if self.model == "perspective" and not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f"perspective camera needs 0 < fov_deg < 180, got {self.fov_deg}")
        if self.model == "weak" and not self.scale > 0.0:
            raise ValueError(f"weak camera needs scale > 0, got {self.scale}")

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (perspective)."""
        return (self.resolution / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)

    def intrinsics(self) -> np.ndarray:
        """3×3 K for the perspective model."""
        c = self.resolution / 2.0
        f = self.focal_px
        return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float64)

    def to_dict(self) -> dict:
        return asdict(self)


def project(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixel coordinates (..., 2) of camera-frame points (..., 3)."""
    points = np.asarray(points, dtype=np.float64)
    half = camera.resolution / 2.0
    if camera.model == "perspective":
        z = np.clip(points[..., 2:3], 1e-6, None)
        return camera.focal_px * points[..., :2] / z + half
    xy_n = camera.scale * points[..., :2] + np.array([camera.tx, camera.ty])
    return (xy_n + 1.0) * half


def genzoo_weak_offsets(scale: float, tx: float, ty: float, transl) -> tuple[float, float]:
    """GenZoo v1 ``(txs, tys)`` of a ``weak`` camera: its loader projects the body posed *without*
    translation.

    ``project`` maps the translated body, ``s·(X + t) + (tx, ty)``; GenZoo's loader computes
    ``s·X + (txs, tys)`` from ``poses`` and ``betas`` alone, so the offsets absorb ``s·t_xy``.
    """
    t = np.asarray(transl, dtype=np.float64).reshape(3)
    return float(tx) + float(scale) * float(t[0]), float(ty) + float(scale) * float(t[1])


def genzoo_fov_deg(fov_deg: float) -> float:
    """The ``fovs`` value GenZoo's v2 loader needs to rebuild our focal length.

    It computes ``f = (H/4) / tan(fov/2)``, half of ``Camera.focal_px`` for the same angle, so the
    angle it must read has half our ``tan(fov/2)``. Independent of the image size, so it survives
    GenZoo's resize augmentations.
    """
    return math.degrees(2.0 * math.atan(0.5 * math.tan(math.radians(fov_deg) / 2.0)))


def fov_from_genzoo_deg(genzoo_fov: float) -> float:
    """Inverse of :func:`genzoo_fov_deg`: the true field of view of a GenZoo v2 ``fovs`` value."""
    return math.degrees(2.0 * math.atan(2.0 * math.tan(math.radians(genzoo_fov) / 2.0)))


# Canonical body frame (x forward, y up, z right) → camera frame for an animal facing the camera.
_FACING_CAMERA = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]]).T


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def view_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rotation canonical body frame → camera frame for a view (docs/ARCHITECTURE.md).

    yaw 0 faces the camera, +90 faces image right, 180 faces away; pitch > 0 is seen from above.
    """
    return _rot_x(math.radians(pitch_deg)) @ _rot_y(-math.radians(yaw_deg)) @ _FACING_CAMERA


def view_angles(
    global_orient: np.ndarray, canonical_rotation: np.ndarray | None = None
) -> tuple[float, float]:
    """(yaw_deg, pitch_deg) of a body whose model→camera rotation is ``global_orient`` (3×3).

    Exact inverse of :func:`view_rotation` when there is no roll; with roll (an animal lying on
    its side) it reports the view of the body's forward axis and the tilt of its up axis.
    """
    r = np.asarray(global_orient, dtype=np.float64).reshape(3, 3)
    c = (
        np.eye(3)
        if canonical_rotation is None
        else np.asarray(canonical_rotation, dtype=np.float64)
    )
    r_c = r @ c.T  # canonical → camera
    up = r_c[:, 1]
    pitch = math.asin(float(np.clip(-up[2], -1.0, 1.0)))
    fwd = _rot_x(-pitch) @ r_c[:, 0]
    yaw = math.atan2(fwd[0], -fwd[2])
    return math.degrees(yaw), math.degrees(pitch)
