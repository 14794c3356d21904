import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from genzoo_assets.core.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
    symmetric_orthogonalization,
)


def _random_axis_angles(n, rng):
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.concatenate(
        [
            rng.uniform(0, math.pi, n - 8),
            [0.0, 1e-9, 1e-6, 1e-3, math.pi - 1e-7, math.pi - 1e-4, math.pi, math.pi - 1e-2],
        ]
    )
    return axis * angle[:, None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_axis_angle_matches_scipy_and_round_trips(dtype):
    rng = np.random.default_rng(0)
    aa = _random_axis_angles(200, rng)
    r = axis_angle_to_matrix(torch.tensor(aa, dtype=dtype))
    assert r.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(r.numpy(), Rotation.from_rotvec(aa).as_matrix(), atol=tol)
    back = matrix_to_axis_angle(r)
    # Compare as rotations: near pi, axis-angle is only defined up to the sign of the axis.
    np.testing.assert_allclose(
        axis_angle_to_matrix(back).numpy(),
        r.numpy(),
        atol=20 * tol if dtype == torch.float32 else 1e-9,
    )
    not_pi = np.linalg.norm(aa, axis=1) < math.pi - 1e-2
    np.testing.assert_allclose(
        back.numpy()[not_pi], aa[not_pi], atol=1e-4 if dtype == torch.float32 else 1e-9
    )


def test_axis_angle_batched_shapes_and_gradient_at_zero():
    x = torch.zeros(4, 5, 3, requires_grad=True)
    r = axis_angle_to_matrix(x)
    assert r.shape == (4, 5, 3, 3)
    r.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(r, torch.eye(3).expand(4, 5, 3, 3))


def test_rot6d_is_genzoo_convention_and_round_trips():
    rng = np.random.default_rng(1)
    r = torch.tensor(Rotation.random(50, random_state=2).as_matrix())
    six = matrix_to_rot6d(r)
    # GenZoo (utils.rot6d_to_rotmat): view(-1, 3, 2) -> the first two columns, row-major.
    np.testing.assert_allclose(six.numpy(), r.numpy()[:, :, :2].reshape(50, 6))
    np.testing.assert_allclose(rot6d_to_matrix(six).numpy(), r.numpy(), atol=1e-12)
    noisy = six + 0.05 * torch.tensor(rng.normal(size=six.shape))
    m = rot6d_to_matrix(noisy)
    np.testing.assert_allclose(
        (m.transpose(-1, -2) @ m).numpy(), np.broadcast_to(np.eye(3), m.shape), atol=1e-12
    )
    assert torch.allclose(torch.linalg.det(m), torch.ones(50, dtype=m.dtype))


def test_symmetric_orthogonalization_nearest_rotation_with_det_plus_one():
    rng = np.random.default_rng(3)
    r = torch.tensor(Rotation.random(30, random_state=4).as_matrix())
    np.testing.assert_allclose(
        symmetric_orthogonalization(r.reshape(30, 9)).numpy(), r.numpy(), atol=1e-12
    )
    noisy = r + 0.1 * torch.tensor(rng.normal(size=r.shape))
    out = symmetric_orthogonalization(noisy)
    assert torch.allclose(torch.linalg.det(out), torch.ones(30, dtype=out.dtype))
    # A reflection is mapped to a proper rotation, not kept as det -1.
    refl = torch.diag(torch.tensor([1.0, 1.0, -1.0]))[None]
    fixed = symmetric_orthogonalization(refl)
    assert torch.linalg.det(fixed).item() == pytest.approx(1.0)
    # Nearest: no random rotation is closer to the noisy input than the projection.
    others = torch.tensor(Rotation.random(200, random_state=5).as_matrix())
    d_best = (out[0] - noisy[0]).norm()
    assert ((others - noisy[0]).flatten(1).norm(dim=1) >= d_best - 1e-9).all()


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="axis-angle"):
        axis_angle_to_matrix(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="6D"):
        rot6d_to_matrix(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="orthogonalization"):
        symmetric_orthogonalization(torch.zeros(2, 8))
