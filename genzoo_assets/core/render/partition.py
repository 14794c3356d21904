"""The ``control_renders`` stage for one species × shard partition.

Render resolution vs sampled camera: the camera is rebuilt at the render resolution with the same
field of view (perspective) or the same normalised scale and offset (weak), so every projected
coordinate scales by ``render_resolution / resolution`` and the stored 2D keypoints are in
render pixels (``render_resolution`` is stored with them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from genzoo_assets.core.paths import atomic_path, write_bytes_atomic
from genzoo_assets.core.provenance import provenance, provenance_json
from genzoo_assets.core.render.controls import (
    bbox_from_mask,
    body_size,
    mask_area,
    project_points,
    visibility,
)
from genzoo_assets.core.render.renderer import ControlMaps, ControlRenderer
from genzoo_assets.core.sampling.camera_model import Camera

REQUIRED_COLUMNS = (
    "sample_id",
    "species",
    "shard",
    "index",
    "betas",
    "global_orient",
    "body_pose",
    "transl",
    "camera_model",
    "resolution",
    "fov_deg",
    "cam_scale",
    "cam_tx",
    "cam_ty",
    "keypoints_3d",
    "joints_3d",
)
OUTPUT_COLUMNS = (
    "sample_id",
    "species",
    "shard",
    "index",
    "rgb_path",
    "depth_path",
    "depth_metric_path",
    "canny_path",
    "mask_path",
    "keypoints_2d",
    "keypoints_vis",
    "joints_2d",
    "joints_vis",
    "bbox",
    "mask_area",
    "render_resolution",
    "provenance",
)
# Stored 3D points and the body model's must agree to this fraction of the body size: otherwise
# the renders would not show the pose the keypoints describe.
POINT_MISMATCH_REL_TOL = 1e-3


def _num(row: pd.Series, key: str) -> float:
    value = row[key]
    return (
        0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def camera_from_row(row: pd.Series, resolution: int | None = None) -> Camera:
    """The sampled camera of a pose_params row, rebuilt at ``resolution`` (default: the sampled one)."""
    res = int(row["resolution"]) if resolution is None else int(resolution)
    model = str(row["camera_model"])
    try:
        if model == "perspective":
            return Camera("perspective", res, fov_deg=_num(row, "fov_deg"))
        return Camera(
            model, res, scale=_num(row, "cam_scale"), tx=_num(row, "cam_tx"), ty=_num(row, "cam_ty")
        )
    except ValueError as exc:
        raise ValueError(f"sample {row['sample_id']}: bad camera fields: {exc}") from exc


def _points(row: pd.Series, key: str, count: int) -> np.ndarray:
    a = np.asarray(row[key], dtype=np.float64)
    if a.size != count * 3:
        raise ValueError(
            f"sample {row['sample_id']}: {key} has {a.size} values, expected {count * 3}"
        )
    return a.reshape(count, 3)


def _column(batch: pd.DataFrame, key: str, n: int) -> np.ndarray:
    """(B, n) float64 from a list column, naming the sample whose entry has the wrong length."""
    out = []
    for sid, value in zip(batch["sample_id"], batch[key]):
        a = np.asarray(value, dtype=np.float64).reshape(-1)
        if a.size != n:
            raise ValueError(f"sample {sid}: {key} has {a.size} values, expected {n}")
        out.append(a)
    return np.stack(out)


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def write_maps(maps: ControlMaps, data_dir: Path, stem: str) -> dict[str, str]:
    """Write one sample's control images under ``data_dir``; returns the ``*_path`` columns (relative)."""
    rel = {
        "rgb_path": f"{stem}.rgb.png",
        "depth_path": f"{stem}.depth.png",
        "depth_metric_path": f"{stem}.depth.npy",
        "canny_path": f"{stem}.canny.png",
        "mask_path": f"{stem}.mask.png",
    }
    write_bytes_atomic(data_dir / rel["rgb_path"], _png(maps.rgb[..., ::-1]))
    write_bytes_atomic(data_dir / rel["depth_path"], _png(maps.depth_u8))
    write_bytes_atomic(data_dir / rel["canny_path"], _png(maps.canny))
    write_bytes_atomic(data_dir / rel["mask_path"], _png(maps.mask.astype(np.uint8) * 255))
    with atomic_path(data_dir / rel["depth_metric_path"]) as tmp, open(tmp, "wb") as fh:
        np.save(fh, maps.depth.astype(np.float32))
    return rel


def _check_points(
    row: pd.Series, key: str, stored: np.ndarray, model: np.ndarray, size: float
) -> None:
    err = float(np.abs(stored - model).max())
    if err > POINT_MISMATCH_REL_TOL * size:
        raise ValueError(
            f"sample {row['sample_id']}: stored {key} differ from the body model's by {err:.4g} "
            f"(body size {size:.3g}); pose_params was made with a different body model"
        )


def render_partition(
    pose_df: pd.DataFrame,
    body_model,
    data_dir: str | Path,
    resolution: int = 1024,
    subdivisions: int = 2,
    renderer: ControlRenderer | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Render every sample of ``pose_df`` (shape_params merged with pose_params on ``sample_id``).

    Runs the body model in batches, renders with one reused ``ControlRenderer`` (``renderer``, or one
    made at ``resolution`` with ``subdivisions``), writes
    ``renders/<species>/<shard>/<sample_id>.{rgb,depth,canny,mask}.png`` and ``.depth.npy``
    atomically, and returns one ``control_renders`` row per sample (``OUTPUT_COLUMNS``).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in pose_df.columns]
    if missing:
        raise ValueError(f"render_partition: input DataFrame lacks columns {missing}")
    data_dir = Path(data_dir)
    own = renderer is None
    renderer = ControlRenderer(resolution, subdivisions) if own else renderer
    faces = np.asarray(body_model.faces)
    nk, nj = len(body_model.keypoint_names), body_model.num_joints
    prov = provenance_json(
        provenance(
            "control_renders",
            "pyrender",
            model_files={
                "body_model": getattr(body_model, "sha256", None)
                or str(getattr(body_model, "source", ""))
            },
            run_id=run_id,
            render_resolution=int(resolution),
            subdivisions=renderer.subdivisions,
            keypoint_set=body_model.keypoint_set,
        )
    )
    rows, total = [], len(pose_df)
    try:
        for start in range(0, total, batch_size):
            batch = pose_df.iloc[start : start + batch_size]
            betas = _column(batch, "betas", body_model.num_betas)
            orient, pose = (
                _column(batch, "global_orient", 3),
                _column(batch, "body_pose", 3 * (nj - 1)),
            )
            with torch.no_grad():
                out = body_model(betas, orient, pose, _column(batch, "transl", 3))
            verts = out.vertices.detach().cpu().double().numpy()
            kps = out.keypoints.detach().cpu().double().numpy()
            joints = out.joints.detach().cpu().double().numpy()
            for b, (_, row) in enumerate(batch.iterrows()):
                camera = camera_from_row(row, resolution)
                size = body_size(verts[b])
                kp3, j3 = _points(row, "keypoints_3d", nk), _points(row, "joints_3d", nj)
                _check_points(row, "keypoints_3d", kp3, kps[b], size)
                _check_points(row, "joints_3d", j3, joints[b], size)
                try:
                    maps = renderer.render(verts[b], faces, camera)
                except ValueError as exc:
                    raise ValueError(f"sample {row['sample_id']}: {exc}") from exc
                kp2, jt2 = project_points(kp3, camera), project_points(j3, camera)
                stem = f"renders/{row['species']}/{row['shard']}/{row['sample_id']}"
                rows.append(
                    {
                        "sample_id": row["sample_id"],
                        "species": row["species"],
                        "shard": row["shard"],
                        "index": int(row["index"]),
                        **write_maps(maps, data_dir, stem),
                        "keypoints_2d": kp2.reshape(-1).tolist(),
                        "keypoints_vis": visibility(kp3, kp2, maps.depth, size).tolist(),
                        "joints_2d": jt2.reshape(-1).tolist(),
                        "joints_vis": visibility(j3, jt2, maps.depth, size).tolist(),
                        "bbox": bbox_from_mask(maps.mask).tolist(),
                        "mask_area": mask_area(maps.mask),
                        "render_resolution": int(resolution),
                        "provenance": prov,
                    }
                )
                if progress is not None:
                    progress(len(rows), total)
    finally:
        if own:
            renderer.close()
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
