"""The regressor's input crop: geometry shared by the reader, the losses and the predictions.

Convention (HMR2's): the crop is a window of the image with the model's input aspect
(``input_hw`` = 256×192 H×W), centred on the padded bounding box, resampled isotropically. A
point's *crop coordinates* are ``(p - centre) / crop_height`` with ``p`` in image pixels, so y
spans [-0.5, 0.5] and x spans [-0.375, 0.375] across the crop. HMR2 divides by the side of its
256-pixel square patch and then feeds the central 192 columns to the ViT: the same numbers.
Because the scale is isotropic, a weak-perspective camera ``x_c = s·X + tx, y_c = s·Y + ty``
maps body points straight to crop coordinates.

Pixel (0, 0) is the top-left corner of the top-left pixel (docs/ARCHITECTURE.md), so pixel
centres sit at integer + 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np

from genzoo_assets.core.errors import InputError

INPUT_HW = (256, 192)
BBOX_PADDING = 1.2
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def crop_box(
    bbox_xywh, input_hw: tuple[int, int] = INPUT_HW, padding: float = BBOX_PADDING
) -> np.ndarray:
    """``(cx, cy, crop_height)`` in pixels: the bbox padded and widened to the input aspect."""
    x, y, w, h = (float(v) for v in np.asarray(bbox_xywh, dtype=np.float64).reshape(4))
    if not (w > 0 and h > 0):
        raise ValueError(f"bbox must have positive width and height, got {[x, y, w, h]}")
    aspect = input_hw[1] / input_hw[0]  # W / H
    height = max(h, w / aspect) * padding
    return np.array([x + w / 2.0, y + h / 2.0, height], dtype=np.float64)


def crop_image(
    image: np.ndarray,
    box: np.ndarray,
    input_hw: tuple[int, int] = INPUT_HW,
    rotation_deg: float = 0.0,
) -> np.ndarray:
    """Resample ``image`` (H, W, C) into the crop window ``box``; outside the image is black.

    ``rotation_deg`` turns the window by that angle about its centre (image x towards y), so the
    content appears turned by −angle: a point at crop coordinates ``c`` of the unturned window lands
    at ``rotate_crop_points(c, angle)``.
    """
    cx, cy, height = (float(v) for v in box)
    out_h, out_w = input_hw
    k = height / out_h  # image pixels per crop pixel
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    lin = k * np.array([[c, -s], [s, c]])
    # cv2 samples at pixel indices (centre = index); continuous coordinates are index + 0.5.
    offset = np.array([cx, cy]) - lin @ np.array([out_w / 2.0 - 0.5, out_h / 2.0 - 0.5]) - 0.5
    inverse = np.concatenate([lin, offset[:, None]], axis=1)
    return cv2.warpAffine(
        image,
        inverse,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def rotate_crop_points(points_c: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Crop coordinates (..., 2) of the unturned window → those of the window turned by ``rotation_deg``."""
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    return np.asarray(points_c, dtype=np.float64) @ np.array([[c, -s], [s, c]])


def to_crop_coords(points_px: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Image pixels (..., 2) → crop coordinates (..., 2)."""
    box = np.asarray(box, dtype=np.float64)
    return (np.asarray(points_px, dtype=np.float64) - box[..., None, :2]) / box[..., None, 2:3]


def from_crop_coords(points_c: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Crop coordinates (..., N, 2) → image pixels, the inverse of :func:`to_crop_coords`."""
    box = np.asarray(box, dtype=np.float64)
    return np.asarray(points_c, dtype=np.float64) * box[..., None, 2:3] + box[..., None, :2]


def weak_camera_to_crop(
    scale: float, tx: float, ty: float, transl, image_width: float, box: np.ndarray
) -> np.ndarray:
    """GenZoo v1 camera (``camera.project``, normalised over the whole image) → crop camera.

    ``camera.project`` applies ``x_n = s·(X + t_x) + tx`` to camera-frame points (the body
    translated by ``transl``) and ``u = (x_n + 1)·W/2`` px on the square image of width ``W``
    (whatever resolution it was rendered at). Substituting into ``(u - cx) / h`` gives the crop
    camera for untranslated body points: ``s_c = s·W/(2h)``,
    ``tx_c = ((s·t_x + tx + 1)·W/2 - cx)/h`` (same for y).
    """
    cx, cy, h = (float(v) for v in box)
    t = np.asarray(transl, dtype=np.float64).reshape(3)
    half = image_width / 2.0
    s_c = scale * half / h
    tx_c = ((scale * t[0] + tx + 1.0) * half - cx) / h
    ty_c = ((scale * t[1] + ty + 1.0) * half - cy) / h
    return np.array([s_c, tx_c, ty_c], dtype=np.float64)


def perspective_camera_to_crop(
    transl, fov_deg: float, image_width: float, box: np.ndarray
) -> np.ndarray:
    """GenZoo v2 (perspective) → the weak camera that matches it at the root's depth.

    Exact only for points at depth ``t_z``; the 2D loss uses the rendered keypoints, not this.
    """
    cx, cy, h = (float(v) for v in box)
    t = np.asarray(transl, dtype=np.float64).reshape(3)
    if not t[2] > 0:
        raise InputError(
            f"perspective camera needs the body in front of it (transl z > 0), got {t.tolist()}"
        )
    focal = (image_width / 2.0) / np.tan(np.radians(fov_deg) / 2.0)
    s = focal / t[2]
    return np.array(
        [s / h, (s * t[0] + image_width / 2.0 - cx) / h, (s * t[1] + image_width / 2.0 - cy) / h]
    )


def normalize_image(crop_rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB → float32 (3, H, W), ImageNet mean/std (what ViTPose was trained on)."""
    x = crop_rgb.astype(np.float32) / 255.0
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()
