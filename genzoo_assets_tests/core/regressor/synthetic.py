"""Tiny synthetic catalog for the regressor tests: posed procedural bodies drawn as coloured keypoints.

The image is a function of the pose, shape and camera (each keypoint a distinct colour, limbs as
lines), so a regressor has real signal to learn from.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import pandas as pd
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from genzoo_assets.core.sampling.camera_model import view_rotation

RES = 64
SPECIES = {
    "sp_a": "Canidae",
    "sp_b": "Canidae",
    "sp_c": "Bovidae",
    "sp_d": "Equidae",
    "sp_e": "Felidae",
}
COLOURS = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / 26, 0.9, 1.0)) for i in range(26)]
LIMBS = [(18, i) for i in range(26) if i != 18]


def draw(kp_px: np.ndarray) -> np.ndarray:
    img = np.full((RES, RES, 3), 30, np.uint8)
    for a, b in LIMBS:
        cv2.line(
            img, tuple(int(v) for v in kp_px[a]), tuple(int(v) for v in kp_px[b]), (90, 90, 90), 1
        )
    for k, (x, y) in enumerate(kp_px):
        cv2.circle(img, (int(x), int(y)), 2, COLOURS[k], -1)
    return img


def make_samples(body_model, data_dir, n: int = 32, seed: int = 0) -> pd.DataFrame:
    """``n`` samples in the catalog's ``samples`` layout (weak camera), images under ``data_dir``."""
    rng = np.random.default_rng(seed)
    species = list(SPECIES)
    rows = []
    for i in range(n):
        sp = species[i % len(species)]
        sid = f"{sp}.000.{i:05d}"
        betas = rng.normal(0, 0.5, body_model.num_betas).astype(np.float32)
        go = view_rotation(rng.uniform(-120, 120), rng.uniform(-10, 30))
        body_pose = rng.normal(0, 0.15, (34, 3))
        with torch.no_grad():
            out = body_model(
                torch.from_numpy(betas)[None],
                torch.from_numpy(go).float()[None],
                torch.from_numpy(body_pose).float()[None],
            )
        kp3 = out.keypoints[0].double().numpy()
        lo, hi = kp3[:, :2].min(0), kp3[:, :2].max(0)
        s = 1.5 / (hi - lo).max() * rng.uniform(0.8, 1.0)
        t = -s * (lo + hi) / 2 + rng.uniform(-0.1, 0.1, 2)
        kp2 = (s * kp3[:, :2] + t + 1) * RES / 2
        x0, y0 = kp2.min(0) - 2
        x1, y1 = kp2.max(0) + 2
        rel = f"images/{sp}/000/{sid}.jpg"
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(data_dir / rel),
            cv2.cvtColor(draw(kp2), cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
        rows.append(
            {
                "sample_id": sid,
                "species": sp,
                "family": SPECIES[sp],
                "shard": "000",
                "index": i,
                "betas": betas.tolist(),
                "global_orient": matrix_to_axis_angle(torch.from_numpy(go)).tolist(),
                "body_pose": body_pose.reshape(-1).tolist(),
                "transl": [0.0, 0.0, 5.0],
                "camera_model": "weak",
                "resolution": RES,
                "fov_deg": 0.0,
                "cam_scale": float(s),
                "cam_tx": float(t[0]),
                "cam_ty": float(t[1]),
                "keypoints_3d": kp3.reshape(-1).tolist(),
                "keypoints_2d": kp2.reshape(-1).tolist(),
                "keypoints_vis": [True] * 26,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "mask_area": int((x1 - x0) * (y1 - y0)),
                "image_path": rel,
                "flagged": False,
            }
        )
    return pd.DataFrame(rows)


def pose_matrices(row) -> np.ndarray:
    aa = np.concatenate([row["global_orient"], row["body_pose"]]).reshape(35, 3)
    return axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
