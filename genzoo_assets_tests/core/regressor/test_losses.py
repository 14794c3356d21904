"""Each loss term against values computed by hand on tiny tensors."""

import math

import pytest
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, symmetric_orthogonalization
from genzoo_assets.core.regressor.losses import (
    LossWeights,
    betas_loss,
    keypoint_2d_loss,
    regressor_losses,
    rotation_9d_loss,
    weak_perspective_project,
)
from genzoo_assets.core.regressor.model import RegressorOutput


class LineBody(torch.nn.Module):
    """Two keypoints at (0,0,0) and (1,0,0) rotated by the global orientation; T-pose = betas[0]·(1,1,1)."""

    dtype = torch.float32

    def tpose_vertices(self, betas):
        return betas[:, :1, None].expand(-1, 2, 3)

    def forward(self, betas, global_orient, body_pose, transl=None):
        pts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        kp = torch.einsum("bij,nj->bni", global_orient, pts)
        return type("Out", (), {"keypoints": kp})()


def test_weak_projection_by_hand():
    pts = torch.tensor([[[1.0, 2.0, 9.0], [-1.0, 0.5, 3.0]]])
    cam = torch.tensor([[0.5, 0.1, -0.2]])
    expected = torch.tensor([[[0.6, 0.8], [-0.4, 0.05]]])
    assert torch.allclose(weak_perspective_project(pts, cam), expected)


def test_keypoint_2d_loss_sums_visible_l1_over_keypoints_and_batch():
    pred = torch.tensor([[[0.0, 0.0], [1.0, 1.0]], [[0.2, 0.2], [0.0, 0.0]]])
    gt = torch.tensor([[[0.5, -0.25, 1.0], [3.0, 3.0, 0.0]], [[0.1, 0.4, 1.0], [0.3, 0.0, 0.5]]])
    # sample 0: 0.5 + 0.25 (kp 1 invisible); sample 1: 0.1 + 0.2 + 0.5 * 0.3
    assert keypoint_2d_loss(pred, gt, per_sample=True).tolist() == pytest.approx([0.75, 0.45])
    assert float(keypoint_2d_loss(pred, gt)) == pytest.approx(1.2)


def test_rotation_9d_loss_targets_the_orthogonalised_ground_truth():
    raw = torch.eye(3).reshape(1, 1, 9).repeat(1, 2, 1)
    raw[0, 1, 4] += 0.3
    gt = (2.0 * torch.eye(3)).expand(1, 2, 3, 3)  # not a rotation: SVD makes it the identity
    assert float(rotation_9d_loss(raw, gt)) == pytest.approx(0.3**2 / 18)


def test_betas_loss_compares_tpose_vertices():
    pred, gt = torch.tensor([[1.0, 7.0]]), torch.tensor([[0.25, -3.0]])
    assert float(betas_loss(LineBody(), pred, gt)) == pytest.approx(0.75)


def test_regressor_losses_weights_and_total():
    b = 1
    angle = math.pi / 2
    rot_z = axis_angle_to_matrix(torch.tensor([0.0, 0.0, angle]))
    raw9d = torch.eye(3).reshape(1, 1, 9).repeat(b, 35, 1)
    raw9d[0, 0] = rot_z.reshape(9)  # global orientation: 90° about z
    raw9d[0, 5, 0] += 0.6  # one body joint off the identity
    output = RegressorOutput(
        raw9d,
        symmetric_orthogonalization(raw9d),
        torch.tensor([[0.5]]),
        torch.tensor([[2.0, 0.1, 0.0]]),
    )
    batch = {
        "keypoints_2d": torch.tensor([[[0.1, 0.0, 1.0], [0.0, 2.0, 1.0]]]),
        "poses": torch.eye(3).expand(b, 35, 3, 3).clone(),
        "betas": torch.tensor([[0.0]]),
    }
    terms = regressor_losses(output, batch, LineBody(), LossWeights())
    # keypoints: R_z(90°)·(1,0,0) = (0,1,0) → 2D (0.1, 2.0) and (0.1, 0.0): |0|+|0| + |0.1|+|0| = 0.1
    assert float(terms["loss_keypoints_2d"]) == pytest.approx(0.01 * 0.1, abs=1e-6)
    # R_z(90) vs I: entries differ by (-1, -1, +1, -1) → squares 1, 1, 1, 1 over 9 entries
    assert float(terms["loss_global_orient"]) == pytest.approx(100 * 4 / 9, rel=1e-5)
    # the (orthogonalised) ground truth is I, the raw output I + 0.6 e_00 on 1 of 34·9 entries
    assert float(terms["loss_body_pose"]) == pytest.approx(100 * 0.36 / (34 * 9), rel=1e-5)
    assert float(terms["loss_betas"]) == pytest.approx(50 * 0.5)
    parts = sum(
        float(terms[k])
        for k in ("loss_keypoints_2d", "loss_global_orient", "loss_body_pose", "loss_betas")
    )
    assert float(terms["loss"]) == pytest.approx(parts)


def test_occluded_keypoints_count_with_their_own_confidence():
    raw9d = torch.eye(3).reshape(1, 1, 9).repeat(1, 35, 1)
    output = RegressorOutput(
        raw9d,
        symmetric_orthogonalization(raw9d),
        torch.tensor([[0.0]]),
        torch.tensor([[1.0, 0.0, 0.0]]),
    )
    # the body's two keypoints project to (0, 0) and (1, 0); the second is marked occluded, 0.5 off in y
    batch = {
        "keypoints_2d": torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.5, 0.0]]]),
        "poses": torch.eye(3).expand(1, 35, 3, 3).clone(),
        "betas": torch.tensor([[0.0]]),
    }
    body = LineBody()
    assert float(regressor_losses(output, batch, body)["loss_keypoints_2d"]) == pytest.approx(
        0.01 * 0.5, abs=1e-6
    )
    hmr2 = LossWeights(occluded_keypoints=0.0)
    assert float(regressor_losses(output, batch, body, hmr2)["loss_keypoints_2d"]) == pytest.approx(
        0.0, abs=1e-6
    )
