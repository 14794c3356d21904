"""Inference: a batch of crops, or a whole split as one DataFrame row per sample (the benchmark's input).

Columns of :func:`predict_split` (list columns flattened row-major, as in docs/ARCHITECTURE.md):
``sample_id, species, rotmat`` (315 = 35×3×3), ``global_orient`` (3, axis-angle), ``body_pose``
(102, axis-angle), ``betas``, ``cam`` (3: s, tx, ty in crop coordinates), ``box`` (cx, cy,
crop_height px), ``keypoints_2d_crop`` (52, crop coordinates), ``keypoints_2d_px`` (52, pixels of
the exported image), ``keypoints_3d`` (78, body-model keypoints of the prediction, root frame).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from genzoo_assets.core.body.rotations import matrix_to_axis_angle
from genzoo_assets.core.regressor.crop import from_crop_coords
from genzoo_assets.core.regressor.losses import weak_perspective_project
from genzoo_assets.core.regressor.model import RegressorOutput


@torch.no_grad()
def predict(model, images: torch.Tensor) -> RegressorOutput:
    """Run the regressor in eval mode on (B, 3, H, W) normalised crops, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    return RegressorOutput(*(t.float() for t in model(images.to(device))))


@torch.no_grad()
def predict_split(model, dataset, body_model, batch_size: int = 64) -> pd.DataFrame:
    """Predictions for every example of ``dataset`` (e.g. ``data.load_split(out_dir, "heldout")``)."""
    device = next(model.parameters()).device
    body_model = body_model.to(device).eval()
    rows = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        out = predict(model, batch["img"])
        rot = out.rotmat.to(body_model.dtype)
        kp3d = body_model(out.betas.to(body_model.dtype), rot[:, 0], rot[:, 1:]).keypoints
        kp_crop = weak_perspective_project(kp3d, out.cam.to(body_model.dtype)).cpu().numpy()
        boxes = batch["box"].numpy().astype(np.float64)
        kp_px = from_crop_coords(kp_crop, boxes)
        aa = matrix_to_axis_angle(out.rotmat).cpu().numpy()
        for i, sid in enumerate(batch["sample_id"]):
            rows.append(
                {
                    "sample_id": sid,
                    "species": batch["species"][i],
                    "rotmat": out.rotmat[i].cpu().numpy().reshape(-1).tolist(),
                    "global_orient": aa[i, 0].tolist(),
                    "body_pose": aa[i, 1:].reshape(-1).tolist(),
                    "betas": out.betas[i].cpu().numpy().tolist(),
                    "cam": out.cam[i].cpu().numpy().tolist(),
                    "box": boxes[i].tolist(),
                    "keypoints_2d_crop": kp_crop[i].reshape(-1).tolist(),
                    "keypoints_2d_px": kp_px[i].reshape(-1).tolist(),
                    "keypoints_3d": kp3d[i].cpu().numpy().reshape(-1).tolist(),
                }
            )
    return pd.DataFrame(rows)
