"""The 9D → SO(3) projection the losses and the model use returns the nearest rotation."""

import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, symmetric_orthogonalization


def test_polar_factor_is_recovered():
    g = torch.Generator().manual_seed(0)
    r = axis_angle_to_matrix(torch.randn(8, 3, generator=g, dtype=torch.float64))
    q = axis_angle_to_matrix(torch.randn(8, 3, generator=g, dtype=torch.float64))
    spd = (
        q
        @ torch.diag_embed(torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64)).expand(8, 3, 3)
        @ q.transpose(1, 2)
    )
    assert torch.allclose(symmetric_orthogonalization(r @ spd), r, atol=1e-10)


def test_negative_determinant_flips_the_smallest_singular_direction():
    m = torch.diag(torch.tensor([3.0, 2.0, -1.0], dtype=torch.float64))
    assert torch.allclose(
        symmetric_orthogonalization(m.reshape(9)), torch.eye(3, dtype=torch.float64)
    )


def test_no_sampled_rotation_is_closer_than_the_projection():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    r = symmetric_orthogonalization(m)
    assert torch.allclose(
        r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(4, 3, 3), atol=1e-10
    )
    assert torch.allclose(torch.linalg.det(r), torch.ones(4, dtype=torch.float64))
    best = torch.linalg.norm(m - r, dim=(1, 2))
    candidates = axis_angle_to_matrix(torch.randn(20000, 3, generator=g, dtype=torch.float64) * 1.5)
    brute = torch.linalg.norm(m[:, None] - candidates[None], dim=(2, 3)).min(1).values
    assert torch.all(best <= brute + 1e-12)
    # and small perturbations of the answer only move away
    nudges = axis_angle_to_matrix(torch.randn(500, 3, generator=g, dtype=torch.float64) * 1e-2)
    near = torch.linalg.norm(m[:, None] - r[:, None] @ nudges[None], dim=(2, 3)).min(1).values
    assert torch.all(best <= near)


def test_under_bf16_autocast_it_runs_in_float32_and_matches_float32():
    m = torch.randn(6, 35, 9, generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = symmetric_orthogonalization(m)
    assert r.dtype == torch.float32
    assert torch.allclose(r, symmetric_orthogonalization(m), atol=1e-6)


def test_a_half_precision_input_is_projected_in_float32():
    m = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(3))
    r = symmetric_orthogonalization(m.bfloat16())
    assert r.dtype == torch.float32
    assert torch.allclose(r, symmetric_orthogonalization(m.bfloat16().float()), atol=1e-6)
