import numpy as np
import pytest
import torch

from genzoo_assets.core.body import procedural_body_model
from genzoo_assets.core.body.mirror import (
    CAMERA_FLIP,
    JOINT_PARTNERS,
    KEYPOINT_PARTNERS,
    asymmetry,
    checked_reflection,
    mirror_points,
    mirror_pose,
    partner_indices,
    sagittal_reflection,
)
from genzoo_assets.core.body.skeleton import KEYPOINT_NAMES, SMAL_JOINT_NAMES


def test_partners_pair_left_with_right_and_keep_the_midline():
    for names, partners in (
        (SMAL_JOINT_NAMES, JOINT_PARTNERS),
        (KEYPOINT_NAMES, KEYPOINT_PARTNERS),
    ):
        assert (partners[partners] == np.arange(len(names))).all()
    assert SMAL_JOINT_NAMES[JOINT_PARTNERS[SMAL_JOINT_NAMES.index("LLegBack3")]] == "RLegBack3"
    assert KEYPOINT_NAMES[KEYPOINT_PARTNERS[KEYPOINT_NAMES.index("nose")]] == "nose"
    with pytest.raises(ValueError, match="'left_tusk' has no partner 'right_tusk'"):
        partner_indices(["nose", "left_tusk"])


def test_the_sagittal_plane_follows_the_canonical_rotation():
    np.testing.assert_allclose(sagittal_reflection(np.eye(3)), np.diag([1.0, 1.0, -1.0]))
    c = np.array(
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    )  # model x is the canonical lateral axis
    np.testing.assert_allclose(sagittal_reflection(c), np.diag([-1.0, 1.0, 1.0]))


def test_a_mirrored_pose_poses_the_mirror_image(body_model):
    gen = torch.Generator().manual_seed(3)
    betas = torch.randn(1, body_model.num_betas, generator=gen, dtype=torch.float64).to(
        body_model.dtype
    )
    from genzoo_assets.core.body.rotations import axis_angle_to_matrix

    pose = axis_angle_to_matrix(0.4 * torch.randn(35, 3, generator=gen, dtype=torch.float64)).to(
        body_model.dtype
    )
    mirrored = mirror_pose(pose, sagittal_reflection(body_model.canonical_rotation))
    assert torch.allclose(torch.linalg.det(mirrored), torch.ones(35, dtype=mirrored.dtype))
    a = body_model(betas, pose[None, 0], pose[None, 1:]).joints[0].double().numpy()
    b = body_model(betas, mirrored[None, 0], mirrored[None, 1:]).joints[0].double().numpy()
    offset = b - mirror_points(a, JOINT_PARTNERS)  # the root turns about its joint: a translation
    np.testing.assert_allclose(offset - offset.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(mirror_points(mirror_points(a, JOINT_PARTNERS), JOINT_PARTNERS), a)
    assert (CAMERA_FLIP @ CAMERA_FLIP == np.eye(3)).all()


def test_asymmetry_is_zero_for_the_procedural_model_and_measured_for_a_lopsided_one():
    body = procedural_body_model()
    assert asymmetry(body) < 1e-9
    lopsided = procedural_body_model()
    lopsided.joint_template[SMAL_JOINT_NAMES.index("LLeg1"), 0] += 0.05
    assert asymmetry(lopsided) > 0.01
    np.testing.assert_allclose(checked_reflection(body), np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(
        ValueError, match=r"body model procedural\(num_betas=20\) is not mirror-symmetric.*flip 0"
    ):
        checked_reflection(lopsided)


def test_the_regressor_asset_flips_only_for_a_symmetric_body():
    from genzoo_assets.defs.training import RegressorTrainConfig, train_augmentation

    assert (
        train_augmentation(RegressorTrainConfig(grayscale=0.5), None).flip == 0.0
    )  # no flip: the model is not read
    body = procedural_body_model()
    assert train_augmentation(RegressorTrainConfig(flip=0.5), body).reflection == (
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        -1.0,
    )
    body.joint_template[SMAL_JOINT_NAMES.index("REar"), 1] += 0.05
    with pytest.raises(ValueError, match="not mirror-symmetric"):
        train_augmentation(RegressorTrainConfig(flip=0.5), body)
