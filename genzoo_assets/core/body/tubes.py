"""Closed generalised cylinders ("tubes") swept along control points: the procedural model's parts.

A tube is a sequence of elliptical rings. Every control point gets an exact ring, and the mean of a
ring's vertices is its centre, so a joint placed at a control point is reproduced exactly by
averaging that ring (the procedural J_regressor) for every shape the blend shapes produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LATERAL = np.array([0.0, 0.0, 1.0])
_CAP_ANGLES = np.radians([35.0, 60.0, 80.0])


@dataclass
class TubeSpec:
    """Control points (n, 3), radii (n, 2) = (sagittal, lateral), the joint driving each segment
    (n-1), and which control points are joints (index -> joint id)."""

    name: str
    points: np.ndarray
    radii: np.ndarray
    bones: tuple[int, ...]
    joint_at: dict[int, int]
    around: int
    sub: int = 4


@dataclass
class TubeMesh:
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) local indices
    param: np.ndarray  # (V,) position along the chain in segment units (0 .. n-1)
    joint_rings: dict[int, np.ndarray]  # joint id -> local vertex ids of its ring


def _catmull_rom(p: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Uniform Catmull-Rom through ``p`` at parameters ``s`` (0..n-1): linear in ``p``."""
    n = len(p)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    k = np.clip(np.floor(s).astype(int), 0, n - 2)
    t = (s - k)[:, None]
    p0, p1, p2, p3 = ext[k], ext[k + 1], ext[k + 2], ext[k + 3]
    return 0.5 * (
        (2 * p1)
        + (-p0 + p2) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
    )


def _frames(centres: np.ndarray, frame_centres: np.ndarray | None = None):
    t = np.gradient(centres if frame_centres is None else frame_centres, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    w = _LATERAL - (t @ _LATERAL)[:, None] * t
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    u = np.cross(t, w)
    return t, u, w


def build_tube(spec: TubeSpec, frame_centres: np.ndarray | None = None) -> TubeMesh:
    """Sample rings along the spline, close both ends with rounded caps.

    ``frame_centres`` (rings, 3), the template's ring centres, freezes the ring orientation so the
    vertices are an affine function of the control points and radii: the blend shapes are then exact.
    """
    n = len(spec.points)
    s = np.concatenate(
        [np.arange(k, k + 1, 1.0 / spec.sub) for k in range(n - 1)] + [np.array([n - 1.0])]
    )
    s = np.round(s, 9)
    centres = _catmull_rom(spec.points, s)
    radii = (
        np.interp(s[:, None], np.arange(n), spec.radii[:, 0])[:, 0],
        np.interp(s, np.arange(n), spec.radii[:, 1]),
    )
    a, b = radii
    t, u, w = _frames(centres, frame_centres)
    phi = 2 * np.pi * np.arange(spec.around) / spec.around
    cos, sin = np.cos(phi), np.sin(phi)

    rings, params = [], []
    cap_len0 = 0.8 * min(a[0], b[0]) if min(a[0], b[0]) > 0 else 0.8 * max(a[0], b[0])
    for ang in _CAP_ANGLES[::-1]:
        c = centres[0] - t[0] * cap_len0 * np.sin(ang)
        rings.append(c + np.cos(ang) * (a[0] * cos[:, None] * u[0] + b[0] * sin[:, None] * w[0]))
        params.append(0.0)
    for i in range(len(s)):
        rings.append(centres[i] + a[i] * cos[:, None] * u[i] + b[i] * sin[:, None] * w[i])
        params.append(s[i])
    cap_len1 = 0.8 * min(a[-1], b[-1])
    for ang in _CAP_ANGLES:
        c = centres[-1] + t[-1] * cap_len1 * np.sin(ang)
        rings.append(
            c + np.cos(ang) * (a[-1] * cos[:, None] * u[-1] + b[-1] * sin[:, None] * w[-1])
        )
        params.append(n - 1.0)
    m = spec.around
    nr = len(rings)
    verts = np.concatenate(
        rings + [(centres[0] - t[0] * cap_len0)[None], (centres[-1] + t[-1] * cap_len1)[None]]
    )
    param = np.concatenate([np.full(m, p) for p in params] + [np.array([0.0, n - 1.0])])
    faces = []
    j = np.arange(m)
    jn = (j + 1) % m
    for r in range(nr - 1):
        a0, a1 = r * m + j, r * m + jn
        b0, b1 = (r + 1) * m + j, (r + 1) * m + jn
        faces += [np.stack([a0, b0, a1], 1), np.stack([a1, b0, b1], 1)]
    pole0, pole1 = nr * m, nr * m + 1
    faces.append(np.stack([np.full(m, pole0), j, jn], 1))
    faces.append(np.stack([np.full(m, pole1), (nr - 1) * m + jn, (nr - 1) * m + j], 1))
    faces = np.concatenate(faces)
    ring_of = {}
    for idx, joint in spec.joint_at.items():
        ring = len(_CAP_ANGLES) + int(np.argmin(np.abs(s - idx)))
        ring_of[joint] = ring * m + j
    return TubeMesh(vertices=verts, faces=faces, param=param, joint_rings=ring_of)


def ring_centres(spec: TubeSpec) -> np.ndarray:
    """Centres of the rings (to freeze a template's ring frames with :func:`build_tube`)."""
    n = len(spec.points)
    s = np.concatenate(
        [np.arange(k, k + 1, 1.0 / spec.sub) for k in range(n - 1)] + [np.array([n - 1.0])]
    )
    return _catmull_rom(spec.points, np.round(s, 9))


def chain_weights(
    param: np.ndarray, bones: tuple[int, ...], num_joints: int, half_width: float = 0.4
) -> np.ndarray:
    """Skinning weights along a chain: segment k belongs to ``bones[k]``, blended smoothly (smoothstep)
    across each control point over +-``half_width`` segments; rows sum to 1."""
    w = np.zeros((len(param), num_joints))
    nseg = len(bones)

    def step(x):
        x = np.clip(x, 0.0, 1.0)
        return x * x * (3 - 2 * x)

    for k, bone in enumerate(bones):
        rise = 1.0 if k == 0 else step((param - k + half_width) / (2 * half_width))
        fall = 0.0 if k == nseg - 1 else step((param - (k + 1) + half_width) / (2 * half_width))
        w[:, bone] += rise - fall
    return w
