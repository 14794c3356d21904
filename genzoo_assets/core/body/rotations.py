"""Rotation conversions, batched over any leading dimensions, in torch (float32 or float64).

Kept free of pytorch3d/roma so the whole pipeline (sampler, LBS, regressor losses) shares one
definition of each convention.
"""

from __future__ import annotations

import torch

_SMALL_ANGLE = 1e-4


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, ``(..., 3) -> (..., 3, 3)``; Taylor terms near 0 keep gradients finite."""
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle must end in 3 values, got shape {tuple(axis_angle.shape)}")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _SMALL_ANGLE**2
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    # a = sin(t)/t, b = (1 - cos(t))/t^2, with their series where t is tiny.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        *axis_angle.shape[:-1], 3, 3
    )
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3) -> (..., 4)`` as (w, x, y, z) with w >= 0.

    Shepperd's method: of the four algebraically equal candidates, take the one with the largest
    denominator, so the result stays accurate for every angle including pi.
    """
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must end in (3, 3), got shape {tuple(matrix.shape)}")
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    q_abs2 = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    q_abs = torch.sqrt(torch.clamp(q_abs2, min=0.0))
    m21_12 = m[..., 2, 1] - m[..., 1, 2]
    m02_20 = m[..., 0, 2] - m[..., 2, 0]
    m10_01 = m[..., 1, 0] - m[..., 0, 1]
    m10p01 = m[..., 1, 0] + m[..., 0, 1]
    m02p20 = m[..., 0, 2] + m[..., 2, 0]
    m12p21 = m[..., 1, 2] + m[..., 2, 1]
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21_12, m02_20, m10_01], -1),
            torch.stack([m21_12, q_abs[..., 1] ** 2, m10p01, m02p20], -1),
            torch.stack([m02_20, m10p01, q_abs[..., 2] ** 2, m12p21], -1),
            torch.stack([m10_01, m02p20, m12p21, q_abs[..., 3] ** 2], -1),
        ],
        dim=-2,
    ) / (2.0 * torch.clamp(q_abs, min=0.1)[..., None])
    best = q_abs.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` (w, x, y, z) -> ``(..., 3)`` with angle in [0, pi]; atan2 keeps it exact near pi."""
    q = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    xyz = q[..., 1:]
    s = torch.linalg.norm(xyz, dim=-1, keepdim=True)
    half = torch.atan2(s, q[..., :1])
    angle = 2.0 * half
    small = s < 1e-6
    s_safe = torch.where(small, torch.ones_like(s), s)
    scale = torch.where(small, 2.0 / torch.clamp(q[..., :1], min=1e-6), angle / s_safe)
    return xyz * scale


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3) -> (..., 3)``, robust near 0 and near pi (goes through a quaternion)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """GenZoo's 6D (``(..., 6)``) -> ``(..., 3, 3)`` by Gram-Schmidt.

    Convention (GenZoo ``utils.rot6d_to_rotmat``, as SPIN/HMR): the 6 numbers are the first two
    columns of R read row-major, i.e. ``R[:, :2].reshape(6)`` = (R00, R01, R10, R11, R20, R21).
    """
    if rot6d.shape[-1] != 6:
        raise ValueError(f"6D rotations must end in 6 values, got shape {tuple(rot6d.shape)}")
    m = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rot6d_to_matrix` for rotation matrices: ``R[..., :, :2]`` flattened."""
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


def symmetric_orthogonalization(x: torch.Tensor) -> torch.Tensor:
    """Raw 9D (``(..., 9)`` or ``(..., 3, 3)``) -> nearest rotation (Frobenius) by SVD, det = +1.

    Levinson et al. 2020, the projection the GenZoo/HMR2 regressor uses for its 9D output.

    Always computed in float32 or wider with autocast off, and returned in that dtype: under
    bf16/fp16 autocast (accelerate's mixed precision) ``u @ vh`` would come out in half
    precision, and neither LU (``det``) nor SVD has a half-precision kernel on CPU or CUDA; a
    bf16 rotation would also be off by ~0.4 % per entry, which the 9D loss (×100) would see.
    """
    if x.shape[-1] == 9:
        m = x.reshape(*x.shape[:-1], 3, 3)
    elif x.shape[-2:] == (3, 3):
        m = x
    else:
        raise ValueError(
            f"symmetric orthogonalization needs (..., 9) or (..., 3, 3), got {tuple(x.shape)}"
        )
    wide = m.dtype if m.dtype in (torch.float32, torch.float64) else torch.float32
    with torch.autocast(m.device.type, enabled=False):
        u, _, vh = torch.linalg.svd(m.to(wide))
        det = torch.linalg.det(u @ vh)
        ones = torch.ones_like(det)
        d = torch.stack([ones, ones, det], dim=-1)
        return u @ (d[..., :, None] * vh)
