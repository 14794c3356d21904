"""Best/worst prediction gallery: the predicted mesh drawn over the input crop with OpenCV.

No renderer is needed: vertices are projected with the predicted weak camera into the crop and
the faces are painted far to near (painter's algorithm), shaded by how much they face the
camera, blended translucently over the image, with a faint wireframe and the silhouette outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.evaluate.animal3d import smal_forward
from genzoo_assets.core.evaluate.benchmark import BenchmarkResult, project_weak
from genzoo_assets.core.evaluate.benchmark_set import BenchmarkSet

MESH_RGB = (64, 160, 255)
GT_RGB = (60, 220, 90)
PRED_RGB = (255, 70, 70)


@dataclass
class GalleryItem:
    image: np.ndarray  # (S, S, 3) uint8 RGB: the input crop
    vertices_2d: np.ndarray  # (V, 2) predicted vertices, crop pixels
    faces: np.ndarray  # (F, 3)
    keypoints_2d: np.ndarray  # (26, 2) predicted keypoints, crop pixels
    gt_keypoints_2d: np.ndarray  # (26, 2) crop pixels
    visibility: np.ndarray  # (26,) bool
    title: str
    label: str  # "best" | "worst"
    depth: np.ndarray | None = None  # (V,) camera-frame z, to paint far faces first
    shade: np.ndarray | None = None  # (F,) 0..1, how much each face faces the camera


def face_shading(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """|cos| of the angle between each face normal and the viewing axis (camera-frame vertices)."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return np.abs(n[:, 2]) / np.maximum(np.linalg.norm(n, axis=1), 1e-12)


def load_rgb(image, name: str) -> np.ndarray:
    """An RGB uint8 image from an array or a path (a missing file gives a clear error)."""
    if isinstance(image, np.ndarray):
        img = image
    else:
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"gallery image of sample {name!r} cannot be read: {image}")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., :3])


def crop_image(
    img: np.ndarray, center: np.ndarray, size: float, out: int
) -> tuple[np.ndarray, np.ndarray]:
    """(crop (out, out, 3), affine 2×3 image px → crop px) for a square crop, grey outside the image."""
    k = out / float(size)
    m = np.array([[k, 0.0, out / 2.0 - k * center[0]], [0.0, k, out / 2.0 - k * center[1]]])
    crop = cv2.warpAffine(
        img,
        m,
        (out, out),
        flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(90, 90, 90),
    )
    return crop, m


def select_gallery(
    result: BenchmarkResult,
    test_set: BenchmarkSet,
    body_model,
    method: str | None = None,
    metric: str = "pa_mpjpe",
    n_best: int = 3,
    n_worst: int = 3,
    size: int = 320,
) -> list[GalleryItem]:
    """The ``n_best`` and ``n_worst`` samples of ``method`` (default: the first) by ``metric``."""
    method = method or next(iter(result.predictions))
    if method not in result.predictions:
        raise ValueError(
            f"method {method!r} is not in the result (have {sorted(result.predictions)})"
        )
    rows = result.per_sample[result.per_sample["method"] == method].reset_index(drop=True)
    if metric not in rows:
        raise ValueError(f"metric {metric!r} is not a per-sample column")
    ascending = not metric.startswith("pck")
    order = rows[metric].sort_values(ascending=ascending, kind="stable").index.to_numpy()
    n_best = min(n_best, len(order))
    n_worst = min(n_worst, len(order) - n_best)
    picks = [(i, "best") for i in order[:n_best]] + [
        (i, "worst") for i in order[len(order) - n_worst :][::-1]
    ]
    if not picks:
        return []
    idx = np.array([i for i, _ in picks])
    pred = result.predictions[method]
    verts, _, kps = smal_forward(body_model, pred.betas[idx], pred.rotmat[idx])
    sub = test_set.subset(idx)
    v_px = sub.crop_to_pixels(project_weak(verts.astype(np.float64), pred.cam[idx]))
    k_px = sub.crop_to_pixels(project_weak(kps.astype(np.float64), pred.cam[idx]))
    items = []
    for j, (i, label) in enumerate(picks):
        img, m = crop_image(
            load_rgb(sub.images[j], sub.sample_ids[j]), sub.crop_center[j], sub.crop_size[j], size
        )
        to_crop = lambda p: p @ m[:, :2].T + m[:, 2]  # noqa: E731
        value = rows.loc[i, metric] * (1000.0 if not metric.startswith("pck") else 100.0)
        faces = np.asarray(body_model.faces)
        items.append(
            GalleryItem(
                image=img,
                vertices_2d=to_crop(v_px[j]),
                faces=faces,
                keypoints_2d=to_crop(k_px[j]),
                gt_keypoints_2d=to_crop(sub.keypoints_2d[j]),
                visibility=sub.visibility[j],
                title=f"{sub.sample_ids[j]}\n{sub.species[j]} | {method} | {metric} {value:.1f}",
                label=label,
                depth=verts[j, :, 2].astype(np.float64),
                shade=face_shading(verts[j].astype(np.float64), faces),
            )
        )
    return items


def draw_overlay(item: GalleryItem, alpha: float = 0.6) -> np.ndarray:
    """The crop with the translucent shaded mesh, and GT (green) vs predicted (red) keypoints."""
    img = item.image.copy()
    h, w = img.shape[:2]
    shift = 4  # sub-pixel precision for OpenCV drawing
    tri = np.round(item.vertices_2d[item.faces] * (1 << shift)).astype(np.int32)
    shade = item.shade if item.shade is not None else np.ones(len(tri))
    if item.depth is not None:
        order = np.argsort(-item.depth[item.faces].mean(axis=1))
        tri, shade = tri[order], shade[order]
    layer = img.copy()
    colours = (0.35 + 0.65 * shade)[:, None] * np.array(MESH_RGB, dtype=np.float64)
    for t, c in zip(tri, colours):
        cv2.fillConvexPoly(layer, t, tuple(float(x) for x in c), lineType=cv2.LINE_8, shift=shift)
    wire = layer.copy()
    cv2.polylines(wire, list(tri), True, (255, 255, 255), 1, lineType=cv2.LINE_AA, shift=shift)
    layer = cv2.addWeighted(wire, 0.12, layer, 0.88, 0)
    covered = np.zeros((h, w), np.uint8)
    cv2.fillPoly(covered, list(tri), 255, shift=shift)
    blend = cv2.addWeighted(layer, alpha, img, 1 - alpha, 0)
    img = np.where(covered[..., None] > 0, blend, img)
    contours, _ = cv2.findContours(covered, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, (235, 245, 255), 1, lineType=cv2.LINE_AA)
    for gt, pr, v in zip(item.gt_keypoints_2d, item.keypoints_2d, item.visibility):
        if not v:
            continue
        g, p = tuple(int(x) for x in np.round(gt)), tuple(int(x) for x in np.round(pr))
        cv2.line(img, g, p, (255, 255, 255), 1, lineType=cv2.LINE_AA)
        cv2.circle(img, g, 3, GT_RGB, -1, lineType=cv2.LINE_AA)
        cv2.circle(img, p, 3, PRED_RGB, -1, lineType=cv2.LINE_AA)
    lines = item.title.split("\n")
    bar = np.full((8 + 14 * len(lines), w, 3), 24, np.uint8)
    for k, text in enumerate(lines):
        cv2.putText(
            bar,
            text[: w // 6],
            (5, 16 + 14 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.38,
            (240, 240, 240) if k == 0 else (170, 190, 220),
            1,
            cv2.LINE_AA,
        )
    return np.concatenate([bar, img], axis=0)
