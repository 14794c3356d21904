import math

import numpy as np
import pandas as pd
import torch

from genzoo_assets.core.body.rotations import matrix_to_axis_angle
from genzoo_assets.core.sampling.camera_model import view_rotation
from genzoo_assets.core.seeds import sample_id

SAMPLED_RES = 1024
# (camera model, yaw, pitch): front-ish, side, three-quarter from behind, high side view.
VIEWS = [
    ("perspective", 30.0, 10.0),
    ("weak", 90.0, 5.0),
    ("perspective", -140.0, 20.0),
    ("weak", -70.0, 35.0),
]


def make_pose_df(bm, species: str = "procedural_dog", shard: str = "000") -> pd.DataFrame:
    """shape_params ⋈ pose_params rows as the samplers write them (columns per docs/ARCHITECTURE.md)."""
    rng = np.random.default_rng(7)
    rows = []
    for index, (model, yaw, pitch) in enumerate(VIEWS):
        betas = 0.5 * rng.standard_normal(bm.num_betas)
        body_pose = 0.15 * rng.standard_normal(3 * (bm.num_joints - 1))
        rot = torch.as_tensor(
            view_rotation(yaw, pitch) @ bm.canonical_rotation, dtype=torch.float64
        )
        orient = matrix_to_axis_angle(rot).numpy()
        out0 = bm(betas[None], orient[None], body_pose[None])
        v0 = out0.vertices[0].double().numpy()
        centre = 0.5 * (v0.min(0) + v0.max(0))
        transl = -centre + np.array([0.0, 0.1, 3.0])
        out = bm(betas[None], orient[None], body_pose[None], transl[None])
        v = out.vertices[0].double().numpy()
        row = dict(
            sample_id=sample_id(species, shard, index),
            species=species,
            shard=shard,
            index=index,
            betas=betas.tolist(),
            global_orient=orient.tolist(),
            body_pose=body_pose.tolist(),
            transl=transl.tolist(),
            camera_model=model,
            resolution=SAMPLED_RES,
            fov_deg=math.nan,
            cam_scale=math.nan,
            cam_tx=math.nan,
            cam_ty=math.nan,
            yaw_deg=yaw,
            pitch_deg=pitch,
            keypoints_3d=out.keypoints[0].double().numpy().reshape(-1).tolist(),
            joints_3d=out.joints[0].double().numpy().reshape(-1).tolist(),
        )
        if model == "perspective":
            row["fov_deg"] = 40.0
        else:
            scale = 1.7 / float(np.ptp(v[:, :2], axis=0).max())
            mid = 0.5 * (v.min(0) + v.max(0))
            row.update(
                cam_scale=scale, cam_tx=-scale * mid[0] + 0.05, cam_ty=-scale * mid[1] - 0.04
            )
        rows.append(row)
    return pd.DataFrame(rows)
