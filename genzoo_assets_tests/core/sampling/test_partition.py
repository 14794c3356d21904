import json

import numpy as np
import pytest
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.sampling.camera_model import Camera, project, view_angles
from genzoo_assets.core.sampling.partition import (
    POSE_COLUMNS,
    SHAPE_COLUMNS,
    sample_poses_partition,
    sample_shapes_partition,
)
from genzoo_assets.core.sampling.poses import make_pose_sampler
from genzoo_assets.core.sampling.shapes import make_shape_sampler

ROW = {"species": "red-fox", "common_name": "red fox", "family": "Canidae", "order": "Carnivora"}
ARRAYS = ["global_orient", "body_pose", "transl", "keypoints_3d", "joints_3d"]


@pytest.fixture(scope="module")
def shapes(body_model):
    return sample_shapes_partition(
        ROW, "003", range(192, 204), make_shape_sampler("prior", body_model), run_id="r1"
    )


def test_shape_partition_columns_and_determinism(body_model, shapes):
    assert list(shapes.columns) == SHAPE_COLUMNS and len(shapes) == 12
    assert shapes.sample_id.iloc[0] == "red-fox.003.00192" and shapes["index"].tolist() == list(
        range(192, 204)
    )
    assert all(len(b) == body_model.num_betas for b in shapes.betas)
    again = sample_shapes_partition(
        ROW, "003", range(192, 204), make_shape_sampler("prior", body_model)
    )
    assert (
        again.betas.tolist() == shapes.betas.tolist()
        and again.seed.tolist() == shapes.seed.tolist()
    )
    prov = json.loads(shapes.provenance.iloc[0])
    assert prov["stage"] == "shape_params" and prov["backend"] == "prior" and prov["run_id"] == "r1"
    assert prov["seeds"]["shape"] == int(shapes.seed.iloc[0])
    with pytest.raises(ValueError, match="'species'"):
        sample_shapes_partition(
            {"common_name": "fox"}, "000", range(2), make_shape_sampler("prior", body_model)
        )


@pytest.mark.parametrize("camera_model", ["perspective", "weak"])
def test_pose_partition_is_deterministic_and_consistent(body_model, shapes, camera_model):
    sampler = make_pose_sampler("procedural", body_model)
    df = sample_poses_partition(
        shapes, body_model, sampler, camera_model=camera_model, resolution=320
    )
    assert list(df.columns) == POSE_COLUMNS and len(df) == len(shapes)
    again = sample_poses_partition(
        shapes, body_model, sampler, camera_model=camera_model, resolution=320
    )
    for col in ARRAYS + [
        "posture",
        "fov_deg",
        "cam_scale",
        "cam_tx",
        "cam_ty",
        "yaw_deg",
        "pitch_deg",
    ]:
        assert np.array_equal(np.array(df[col].tolist()), np.array(again[col].tolist())), col
    assert {len(x) for x in df.body_pose} == {102} and {len(x) for x in df.keypoints_3d} == {78}
    assert {len(x) for x in df.joints_3d} == {105} and {len(x) for x in df.global_orient} == {3}

    betas = torch.tensor(np.stack(shapes.betas), dtype=torch.float32)
    out = body_model(
        betas,
        torch.tensor(np.stack(df.global_orient), dtype=torch.float32),
        torch.tensor(np.stack(df.body_pose), dtype=torch.float32),
        torch.tensor(np.stack(df.transl), dtype=torch.float32),
    )
    assert np.allclose(
        out.keypoints.numpy().reshape(len(df), -1), np.stack(df.keypoints_3d), atol=1e-4
    )
    assert np.allclose(out.joints.numpy().reshape(len(df), -1), np.stack(df.joints_3d), atol=1e-4)

    c = body_model.canonical_rotation
    for _, r in df.iterrows():
        cam = Camera(
            camera_model, 320, fov_deg=r.fov_deg, scale=r.cam_scale, tx=r.cam_tx, ty=r.cam_ty
        )
        uv = project(np.reshape(r.keypoints_3d, (-1, 3)), cam)
        assert uv.min() >= 0 and uv.max() <= 320
        g = axis_angle_to_matrix(torch.tensor(r.global_orient, dtype=torch.float64)).numpy()
        assert np.allclose(view_angles(g, c), (r.yaw_deg, r.pitch_deg), atol=1e-6)
        prov = json.loads(r.provenance)
        assert (
            prov["backend"] == "procedural"
            and prov["model_files"]["body_model"] == body_model.source
        )
        assert prov["keypoint_set"] == "derived" and prov["orientation"] == "view"


def test_pose_partition_with_a_bank(body_model, shapes, tmp_path):
    aa = np.random.default_rng(0).normal(0, 0.2, (3, 34, 3))
    np.savez(tmp_path / "bank.npz", poses=aa)
    sampler = make_pose_sampler("bank", body_model, path=tmp_path / "bank.npz", orientation="view")
    df = sample_poses_partition(
        shapes.iloc[:4], body_model, sampler, camera_model="weak", resolution=64
    )
    assert (
        set(df.posture) == {"bank"}
        and "pose_bank" in json.loads(df.provenance.iloc[0])["model_files"]
    )
    recovered = axis_angle_to_matrix(
        torch.tensor(np.reshape(df.body_pose.iloc[0], (34, 3)))
    ).numpy()
    bank = axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
    assert any(np.allclose(recovered, b, atol=1e-6) for b in bank)


@pytest.mark.parametrize("camera_model", ["weak", "perspective"])
def test_bank_orientation_is_the_global_orientation(body_model, shapes, tmp_path, camera_model):
    """GenZoo's way: the bank's orient_6d is the model → camera rotation; the camera only frames it."""
    from genzoo_assets.core.body.rotations import matrix_to_rot6d

    rng = np.random.default_rng(5)
    aa = rng.normal(0, 0.2, (3, 34, 3))
    orients = axis_angle_to_matrix(torch.from_numpy(rng.normal(0, 1.2, (4, 3)))).numpy()
    np.savez(
        tmp_path / "dog_poses.npz",
        poses=aa,
        orient_6d=matrix_to_rot6d(torch.from_numpy(orients)).numpy(),
    )
    sampler = make_pose_sampler("bank", body_model, path=tmp_path / "dog_poses.npz")
    df = sample_poses_partition(
        shapes, body_model, sampler, camera_model=camera_model, resolution=128
    )
    again = sample_poses_partition(
        shapes, body_model, sampler, camera_model=camera_model, resolution=128
    )
    for col in ARRAYS + ["fov_deg", "cam_scale", "cam_tx", "cam_ty", "yaw_deg", "pitch_deg"]:
        assert np.array_equal(np.array(df[col].tolist()), np.array(again[col].tolist())), col
    got = axis_angle_to_matrix(torch.tensor(np.stack(df.global_orient))).numpy()
    matched = [int(np.argmin(np.abs(orients - g).max(axis=(1, 2)))) for g in got]
    np.testing.assert_allclose(got, orients[matched], atol=1e-6)
    assert len(set(matched)) > 1
    c = body_model.canonical_rotation
    for (_, r), g in zip(df.iterrows(), got):
        assert np.allclose(view_angles(g, c), (r.yaw_deg, r.pitch_deg), atol=1e-6)
        cam = Camera(
            camera_model, 128, fov_deg=r.fov_deg, scale=r.cam_scale, tx=r.cam_tx, ty=r.cam_ty
        )
        uv = project(np.reshape(r.keypoints_3d, (-1, 3)), cam)
        assert uv.min() >= 0 and uv.max() <= 128
        assert json.loads(r.provenance)["orientation"] == "bank"
