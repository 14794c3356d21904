"""Partition functions the Dagster assets call: shapes, then poses + cameras, one row per sample.

Every draw comes from ``rng_for(sample_id, stream)`` (streams "shape", "pose", "camera"), so a
rerun of a partition reproduces the same arrays byte for byte, and changing how many numbers one
stage draws never shifts another stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from genzoo_assets.core.body.rotations import matrix_to_axis_angle
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.provenance import provenance, provenance_json
from genzoo_assets.core.sampling.camera_model import view_angles
from genzoo_assets.core.sampling.camera_sampler import ViewSample, sample_camera
from genzoo_assets.core.sampling.planned import PartitionPlan, importance_weight, planned_view
from genzoo_assets.core.seeds import derive_seed, rng_for, sample_id

SHAPE_COLUMNS = [
    "sample_id",
    "species",
    "shard",
    "index",
    "seed",
    "betas",
    "shape_backend",
    "provenance",
]
POSE_COLUMNS = [
    "sample_id",
    "species",
    "shard",
    "index",
    "global_orient",
    "body_pose",
    "transl",
    "posture",
    "pose_backend",
    "camera_model",
    "resolution",
    "fov_deg",
    "cam_scale",
    "cam_tx",
    "cam_ty",
    "yaw_deg",
    "pitch_deg",
    "keypoints_3d",
    "joints_3d",
    "round",
    "plan_id",
    "importance_weight",
    "provenance",
]


def _species_slug(row: dict) -> str:
    slug = row.get("species") or row.get("slug")
    if not isinstance(slug, str) or not slug:
        raise ValueError(f"species row has no 'species' (slug) field: {sorted(row)}")
    return slug


def _floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def sample_shapes_partition(
    species_row: dict,
    shard: str,
    indices: range,
    sampler,
    base_seed: int = 0,
    run_id: str | None = None,
) -> pd.DataFrame:
    """``shape_params`` rows for ``indices`` of one species × shard.

    No indices (samples_per_shard <= 0) is refused: an empty table would replace the shard's rows.
    """
    species = _species_slug(species_row)
    if len(indices) == 0:
        raise InputError(
            f"shard {shard} of {species} has no sample indices ({indices}): "
            f"samples_per_shard must be at least 1"
        )
    rows = []
    for index in indices:
        sid = sample_id(species, shard, int(index))
        betas = np.asarray(
            sampler.sample(species_row, rng_for(sid, "shape", base_seed)), dtype=np.float64
        )
        if betas.ndim != 1 or not np.isfinite(betas).all():
            raise ValueError(
                f"shape sampler {sampler.name!r} returned invalid betas for {sid}: shape {betas.shape}"
            )
        seed = derive_seed(base_seed, sid, "shape")
        record = provenance(
            "shape_params",
            sampler.name,
            model_files=sampler.model_files,
            run_id=run_id,
            sample_id=sid,
            seeds={"shape": seed},
            base_seed=base_seed,
        )
        rows.append(
            {
                "sample_id": sid,
                "species": species,
                "shard": shard,
                "index": int(index),
                "seed": seed,
                "betas": _floats(betas),
                "shape_backend": sampler.name,
                "provenance": provenance_json(record),
            }
        )
    df = pd.DataFrame(rows, columns=SHAPE_COLUMNS)
    return df.astype({"index": "int64", "seed": "int64"})


def _model_files(body_model, pose_sampler) -> dict[str, str]:
    files = dict(pose_sampler.model_files)
    files["body_model"] = body_model.sha256 or body_model.source
    return files


def sample_poses_partition(
    shape_df: pd.DataFrame,
    body_model,
    pose_sampler,
    camera_model: str = "perspective",
    resolution: int = 1024,
    base_seed: int = 0,
    run_id: str | None = None,
    plan: PartitionPlan | None = None,
    **camera_options,
) -> pd.DataFrame:
    """``pose_params`` rows: a posture, a viewpoint and a camera per ``shape_params`` row.

    One batched forward in the canonical frame (global = R_posture @ C) gives vertices for framing;
    camera-frame keypoints/joints are that output rotated by the view and translated. The stored
    ``transl`` is for the body model's convention (rotation about the root joint J0), so
    ``body_model(betas, global_orient, body_pose, transl)`` reproduces ``keypoints_3d``.

    A sampler whose ``orientation`` is ``"bank"`` gives the global orientation ``R`` itself (GenZoo's
    ``orient_6d``): the view is then ``R @ Cᵀ`` (canonical → camera), its yaw/pitch read off ``R``,
    and the camera sampler only frames the body.

    Under a ``plan`` (:mod:`.planned`) the pose sampler draws from its ``under_plan(plan)``: the
    posture (procedural and bank backends) and, for a bank's own orientations, their yaw/pitch
    bins; with ``orientation="view"`` the viewpoint's yaw/pitch bins come from the plan's proposal
    (stream "view"). Each row records ``round``, ``plan_id`` and its ``importance_weight``
    (species × pose draw × view bins, base / proposal). Without one: round 0, no plan id, weight 1.
    """
    if shape_df.empty:
        return pd.DataFrame(columns=POSE_COLUMNS)
    c = np.asarray(body_model.canonical_rotation, dtype=np.float64)
    ids = shape_df["sample_id"].tolist()
    planned_pose = plan is not None and hasattr(pose_sampler, "under_plan")
    if planned_pose:
        pose_sampler = pose_sampler.under_plan(plan)
    betas = np.stack([np.asarray(b, dtype=np.float64) for b in shape_df["betas"]])
    draws = [
        pose_sampler.sample_weighted(rng_for(sid, "pose", base_seed))
        if planned_pose
        else (*pose_sampler.sample(rng_for(sid, "pose", base_seed)), 1.0)
        for sid in ids
    ]
    pose_factors = list(pose_sampler.planned_factors) if planned_pose else []
    given = pose_sampler.orientation == "bank"
    views = [
        ViewSample(*view_angles(d[0], c), np.asarray(d[0], dtype=np.float64) @ c.T)
        if given
        else (planned_view(rng_for(sid, "view", base_seed), plan) if plan is not None else None)
        for sid, d in zip(ids, draws)
    ]
    posture_rot = np.stack(
        [np.eye(3) if given or d[0] is None else np.asarray(d[0], dtype=np.float64) for d in draws]
    )
    body_pose = np.stack([np.asarray(d[1], dtype=np.float64) for d in draws])
    dtype = (
        next(body_model.buffers()).dtype
        if any(True for _ in body_model.buffers())
        else torch.float32
    )
    with torch.no_grad():
        out = body_model(
            torch.as_tensor(betas, dtype=dtype),
            torch.as_tensor(posture_rot @ c, dtype=dtype),
            torch.as_tensor(body_pose, dtype=dtype),
        )
    verts = out.vertices.double().numpy()
    joints = out.joints.double().numpy()
    keypoints = out.keypoints.double().numpy()

    backend_files = _model_files(body_model, pose_sampler)
    rows = []
    for i, sid in enumerate(ids):
        cam = sample_camera(
            camera_model,
            verts[i],
            rng_for(sid, "camera", base_seed),
            resolution,
            view=views[i],
            **camera_options,
        )
        view, t = cam.view.rotation, cam.transl
        global_mat = view @ posture_rot[i] @ c
        root = joints[i, 0]
        transl_bm = t + view @ root - root
        yaw, pitch = view_angles(global_mat, c)
        weight = (
            1.0
            if plan is None
            else draws[i][3]
            * importance_weight(
                plan,
                None,
                None if given else cam.view.yaw_deg,
                None if given else cam.view.pitch_deg,
            )
        )
        planning = (
            {}
            if plan is None
            else {
                "plan": {
                    "plan_id": plan.plan_id,
                    "round": plan.round,
                    "importance_weight": weight,
                    "planned": ["species"]
                    + pose_factors
                    + ([] if given else ["yaw_bin", "pitch_bin"]),
                }
            }
        )
        aa = matrix_to_axis_angle(
            torch.from_numpy(np.concatenate([global_mat[None], body_pose[i]]))
        ).numpy()
        record = provenance(
            "pose_params",
            pose_sampler.name,
            model_files=backend_files,
            run_id=run_id,
            sample_id=sid,
            seeds={s: derive_seed(base_seed, sid, s) for s in ("pose", "camera")},
            base_seed=base_seed,
            camera=cam.camera.to_dict(),
            view={"yaw_deg": cam.view.yaw_deg, "pitch_deg": cam.view.pitch_deg},
            keypoint_set=body_model.keypoint_set,
            orientation=pose_sampler.orientation,
            **planning,
        )
        row = shape_df.iloc[i]
        rows.append(
            {
                "sample_id": sid,
                "species": row["species"],
                "shard": row["shard"],
                "index": int(row["index"]),
                "global_orient": _floats(aa[0]),
                "body_pose": _floats(aa[1:]),
                "transl": _floats(transl_bm),
                "posture": draws[i][2],
                "pose_backend": pose_sampler.name,
                "camera_model": camera_model,
                "resolution": int(resolution),
                "fov_deg": float(cam.camera.fov_deg),
                "cam_scale": float(cam.camera.scale),
                "cam_tx": float(cam.camera.tx),
                "cam_ty": float(cam.camera.ty),
                "yaw_deg": float(yaw),
                "pitch_deg": float(pitch),
                "keypoints_3d": _floats(keypoints[i] @ view.T + t),
                "joints_3d": _floats(joints[i] @ view.T + t),
                "round": 0 if plan is None else int(plan.round),
                "plan_id": None if plan is None else plan.plan_id,
                "importance_weight": weight,
                "provenance": provenance_json(record),
            }
        )
    df = pd.DataFrame(rows, columns=POSE_COLUMNS)
    return df.astype(
        {"index": "int64", "resolution": "int64", "round": "int64", "plan_id": "string"}
    )
