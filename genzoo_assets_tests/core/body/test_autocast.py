"""The body model is geometry: bf16 autocast around it (the regressor's GPU mixed precision) must
not move its vertices, joints or keypoints."""

import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix


def test_forward_and_tpose_ignore_bf16_autocast(body_model):
    g = torch.Generator().manual_seed(0)
    rot = axis_angle_to_matrix(0.5 * torch.randn(3, 35, 3, generator=g))
    betas = torch.randn(3, body_model.num_betas, generator=g)
    expected = body_model(betas, rot[:, 0], rot[:, 1:])
    expected_tpose = body_model.tpose_vertices(betas)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = body_model(betas, rot[:, 0], rot[:, 1:])
        tpose = body_model.tpose_vertices(betas)
    for name in ("vertices", "joints", "keypoints"):
        assert getattr(got, name).dtype == body_model.dtype
        assert torch.equal(getattr(got, name), getattr(expected, name)), name
    assert torch.equal(tpose, expected_tpose)
