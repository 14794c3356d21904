"""Our shards decoded the way GenZoo's trainer decodes them (``x-tomasz/genzoo``, e7e0d71,
``hmr2/datasets/image_dataset.py``), restated from that file for the tests.

- ``select``: a sample whose ``max |betas| >= 10`` is dropped.
- Ground truth is recomputed from ``poses`` (35×9, symmetric-orthogonalised by SVD) and ``betas``
  with a ``smplx.SMPLLayer`` subclass of 34 body joints, no extra joints and a 145-dim shape space,
  called without a translation.
- v1 (the branch that is active upstream): ``p = X[:, :2]·scales + (txs, tys)`` in normalised
  image coordinates, then pixel ``(W/2 + W·p_x/2, H/2 + H·p_y/2)``.
- v2 (commented out upstream): ``cx = cy = H/2``, ``f = (cx/2)/tan(fov/2)``, pixel = ``K·(X + transls)``
  divided by depth.
"""

from __future__ import annotations

import numpy as np
import smplx
import torch
import webdataset as wds


class GenZooSMALLayer(smplx.SMPLLayer):
    NUM_JOINTS = 34
    NUM_BODY_JOINTS = 34
    SHAPE_SPACE_DIM = 145

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vertex_joint_selector.extra_joints_idxs = torch.empty(0, dtype=torch.int32)


def load_layer(model_path) -> GenZooSMALLayer:
    return GenZooSMALLayer(model_path=str(model_path), num_betas=GenZooSMALLayer.SHAPE_SPACE_DIM)


def orthogonalize(poses: np.ndarray) -> torch.Tensor:
    """(N, 9) → (N, 3, 3) nearest rotations, det +1 (SVD; GenZoo's ``symmetric_orthogonalization``)."""
    m = torch.as_tensor(np.asarray(poses, dtype=np.float32)).reshape(-1, 3, 3)
    u, _, v = torch.svd(m)
    vt = v.transpose(1, 2)
    det = torch.det(u @ vt).view(-1, 1, 1)
    return u @ torch.cat([vt[:, :2], vt[:, 2:] * det], 1)


def genzoo_select(npz) -> bool:
    return "betas" not in npz or float(np.abs(npz["betas"]).max()) < 10


def project_v1(points: np.ndarray, npz, height: int, width: int) -> np.ndarray:
    ndc = points[:, :2] * float(npz["scales"]) + np.array([float(npz["txs"]), float(npz["tys"])])
    return np.stack([width / 2 + width * ndc[:, 0] / 2, height / 2 + height * ndc[:, 1] / 2], 1)


def project_v2(points: np.ndarray, npz, height: int) -> np.ndarray:
    c = height / 2
    f = (c / 2) / np.tan(np.deg2rad(float(npz["fovs"]) / 2))
    k = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    p = (k @ (points + np.asarray(npz["transls"], dtype=np.float64).reshape(1, 3)).T).T
    return p[:, :2] / p[:, 2:3]


def decode(urls, layer: GenZooSMALLayer, camera_version: str, keypoint_groups) -> dict[str, dict]:
    """Per kept sample (by ``sample_id``): decoded ``vertices_2d`` (V, 2) and ``keypoints_2d`` (26, 2) px."""
    out = {}
    for sample in wds.WebDataset(list(urls), shardshuffle=False, empty_check=False).decode("pil"):
        npz, image = sample["npz"], np.asarray(sample["jpg"])
        if not genzoo_select(npz):
            continue
        rot = orthogonalize(npz["poses"])
        with torch.inference_mode():
            verts = layer(
                global_orient=rot[None, :1],
                body_pose=rot[None, 1:],
                betas=torch.as_tensor(np.asarray(npz["betas"], dtype=np.float32))[None],
            ).vertices[0]
        verts = verts.double().numpy()
        kp3 = np.stack([verts[g].mean(0) for g in keypoint_groups])
        h, w = image.shape[:2]
        if camera_version == "v1":
            proj = lambda p: project_v1(p, npz, h, w)  # noqa: E731
        else:
            proj = lambda p: project_v2(p, npz, h)  # noqa: E731
        out[str(npz["sample_id"])] = {
            "vertices_2d": proj(verts),
            "keypoints_2d": proj(kp3),
            "size": (h, w),
        }
    return out


def errors(decoded: dict, samples) -> dict[str, float]:
    """Max keypoint and bbox-edge error (px) of the decoded samples against the stored annotation."""
    by_id = samples.set_index("sample_id")
    kp_err, box_err = 0.0, 0.0
    for sid, d in decoded.items():
        row = by_id.loc[sid]
        kp = np.asarray(row["keypoints_2d"], dtype=np.float64).reshape(-1, 2)
        kp_err = max(kp_err, float(np.linalg.norm(d["keypoints_2d"] - kp, axis=1).max()))
        x, y, w, h = (float(v) for v in row["bbox"])
        lo, hi = d["vertices_2d"].min(0), d["vertices_2d"].max(0)
        box_err = max(
            box_err,
            float(np.abs(np.array([lo[0], lo[1], hi[0], hi[1]]) - [x, y, x + w, y + h]).max()),
        )
    return {"keypoints_px": kp_err, "bbox_px": box_err, "samples": len(decoded)}


__all__ = ["GenZooSMALLayer", "decode", "errors", "genzoo_select", "load_layer"]
