"""Where the procedural quadruped's parts go, as a function of its named shape axes.

Canonical frame: +x forward, +y up, +z the animal's right (left parts at z < 0); metres; paws on
y = 0. Every coordinate is an affine function of the axes, so the linear blend shapes fitted to it
reproduce the construction. A ``scale`` of 1 + k*beta per axis: beta = 1 is roughly one standard
deviation of that proportion across mammals, and beta in [-3, 3] keeps every factor positive.
"""

from __future__ import annotations

import numpy as np

from .tubes import TubeSpec

PROCEDURAL_SHAPE_AXES: tuple[str, ...] = (
    "body_length",
    "leg_length",
    "girth",
    "neck_length",
    "head_size",
    "snout_length",
    "tail_length",
    "tail_thickness",
    "ear_size",
    "leg_thickness",
)

# Relative change per unit beta, in the order of PROCEDURAL_SHAPE_AXES.
AXIS_GAIN = np.array([0.12, 0.17, 0.14, 0.28, 0.12, 0.22, 0.25, 0.2, 0.25, 0.15])

_LEG_DROP = 0.41  # shoulder/hip joint to paw joint, template


def _p(x, y, z=0.0):
    return np.array([x, y, z], dtype=np.float64)


def quadruped_tubes(axes: np.ndarray) -> list[TubeSpec]:
    """The tube specs (torso, legs, neck+head, jaw, ears, tail) for one vector of axis values."""
    (s_len, s_leg, s_girth, s_neck, s_head, s_snout, s_tail, s_tailw, s_ear, s_legw) = (
        1.0 + AXIS_GAIN * axes
    )
    lift = (s_leg - 1.0) * _LEG_DROP
    up = _p(0, lift)
    tubes = []

    torso = [
        (-0.47, 0.50, 0.085, 0.075),
        (-0.36, 0.51, 0.125, 0.105),
        (-0.25, 0.515, 0.13, 0.11),
        (-0.14, 0.515, 0.122, 0.1),
        (-0.04, 0.52, 0.128, 0.105),
        (0.06, 0.53, 0.14, 0.112),
        (0.15, 0.54, 0.15, 0.118),
        (0.24, 0.55, 0.148, 0.115),
        (0.35, 0.56, 0.095, 0.085),
    ]
    tubes.append(
        TubeSpec(
            "torso",
            np.array([_p(x * s_len, y) + up for x, y, _, _ in torso]),
            np.array([(a * s_girth, b * s_girth) for _, _, a, b in torso]),
            bones=(0, 0, 1, 2, 3, 4, 5, 6),
            joint_at={k + 1: k for k in range(7)},
            around=28,
            sub=4,
        )
    )

    side = 0.075 * (1.0 + 0.5 * (s_girth - 1.0))
    legs = (
        (
            "front",
            0.21,
            7,
            6,
            [(0.015, 0.10), (0, 0), (-0.025, -0.16), (0.0, -0.34), (0.015, -_LEG_DROP)],
            [
                (0.075, 0.05),
                (0.068, 0.05),
                (0.045, 0.038),
                (0.03, 0.028),
                (0.034, 0.033),
                (0.028, 0.03),
            ],
        ),
        (
            "back",
            -0.33,
            17,
            0,
            [(-0.01, 0.10), (0, 0), (0.06, -0.17), (-0.05, -0.31), (-0.02, -_LEG_DROP)],
            [
                (0.095, 0.06),
                (0.09, 0.06),
                (0.05, 0.04),
                (0.03, 0.027),
                (0.034, 0.033),
                (0.028, 0.03),
            ],
        ),
    )
    for where, x0, first, parent, offsets, radii in legs:
        for lr, sign, j0 in (("left", -1.0, first), ("right", 1.0, first + 4)):
            base = _p(x0 * s_len, 0.44, sign * side) + up
            pts = [base + _p(*offsets[0]), base]
            pts += [base + s_leg * _p(*o) for o in offsets[2:]]
            pts.append(pts[-1] + _p(0.055, -0.008))
            rad = [(a * s_legw, b * s_legw) for a, b in radii]
            tubes.append(
                TubeSpec(
                    f"{lr}_{where}_leg",
                    np.array(pts),
                    np.array(rad),
                    bones=(parent, j0, j0 + 1, j0 + 2, j0 + 3),
                    joint_at={1: j0, 2: j0 + 1, 3: j0 + 2, 4: j0 + 3},
                    around=14,
                    sub=4,
                )
            )

    neck_base = _p(0.30 * s_len, 0.62) + up
    head = neck_base + s_neck * _p(0.12, 0.15)
    hs = s_head
    crown = head + hs * _p(0.05, 0.01)
    snout_base = head + hs * _p(0.115, -0.012)
    snout_tip = snout_base + hs * s_snout * _p(0.115, -0.02)
    tubes.append(
        TubeSpec(
            "neck_head",
            np.array([_p(0.2 * s_len, 0.58) + up, neck_base, head, crown, snout_base, snout_tip]),
            np.array(
                [
                    (0.09 * s_girth, 0.08 * s_girth),
                    (0.07, 0.06),
                    (0.075 * hs, 0.064 * hs),
                    (0.078 * hs, 0.068 * hs),
                    (0.05 * hs, 0.044 * hs),
                    (0.032 * hs, 0.028 * hs),
                ]
            ),
            bones=(6, 15, 16, 16, 16),
            joint_at={1: 15, 2: 16},
            around=20,
            sub=4,
        )
    )
    mouth = head + hs * _p(0.06, -0.045)
    tubes.append(
        TubeSpec(
            "jaw",
            np.array(
                [head + hs * _p(0.025, -0.03), mouth, mouth + hs * s_snout * _p(0.14, -0.012)]
            ),
            np.array([(0.025 * hs, 0.035 * hs), (0.022 * hs, 0.034 * hs), (0.012 * hs, 0.02 * hs)]),
            bones=(16, 32),
            joint_at={1: 32},
            around=12,
            sub=4,
        )
    )
    for sign, joint in ((-1.0, 33), (1.0, 34)):
        ear = head + hs * _p(0.035, 0.058, sign * 0.042)
        tubes.append(
            TubeSpec(
                "left_ear" if sign < 0 else "right_ear",
                np.array(
                    [
                        ear + hs * _p(0.0, -0.03, -sign * 0.01),
                        ear,
                        ear + hs * s_ear * _p(-0.025, 0.085, sign * 0.03),
                    ]
                ),
                np.array(
                    [
                        (0.014 * hs, 0.03 * hs),
                        (0.012 * hs * s_ear, 0.036 * hs * s_ear),
                        (0.004, 0.008),
                    ]
                ),
                bones=(16, joint),
                joint_at={1: joint},
                around=12,
                sub=3,
            )
        )

    tail1 = _p(-0.45 * s_len, 0.575) + up
    pts = [_p(-0.40 * s_len, 0.56) + up, tail1]
    ang = np.radians(-15.0)
    for k in range(7):
        ang += np.radians(-7.0)
        step = 0.068 if k < 6 else 0.05
        pts.append(pts[-1] + s_tail * step * _p(-np.cos(ang), np.sin(ang)))
    taper = np.linspace(0.036, 0.011, 8)
    rad = [(0.04 * s_tailw, 0.04 * s_tailw)] + [(r * s_tailw, r * s_tailw) for r in taper]
    tubes.append(
        TubeSpec(
            "tail",
            np.array(pts),
            np.array(rad),
            bones=(0, 25, 26, 27, 28, 29, 30, 31),
            joint_at={k + 1: 25 + k for k in range(7)},
            around=12,
            sub=3,
        )
    )
    return tubes
