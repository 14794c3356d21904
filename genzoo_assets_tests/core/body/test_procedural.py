from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo_assets.core.body import PROCEDURAL_SHAPE_AXES
from genzoo_assets.core.body.skeleton import KEYPOINT_NAMES, SMAL_JOINT_NAMES, SMAL_PARENTS

OUT = Path(__file__).resolve().parents[3] / "test-output" / "body"
KP = {n: i for i, n in enumerate(KEYPOINT_NAMES)}


def _pose(**joints):
    p = torch.zeros(1, 35, 3)
    for name, aa in joints.items():
        p[0, SMAL_JOINT_NAMES.index(name)] = torch.tensor(aa, dtype=torch.float32)
    return p


POSES = {
    "stand": _pose(),
    "walk": _pose(
        LLeg1=[0, 0, 0.5],
        RLeg1=[0, 0, -0.4],
        LLegBack1=[0, 0, -0.5],
        RLegBack1=[0, 0, 0.4],
        LLeg2=[0, 0, -0.3],
        LLegBack2=[0, 0, 0.5],
    ),
    "sit": _pose(
        pelvis=[0, 0, 0.6],
        LLegBack1=[0, 0, -0.4],
        RLegBack1=[0, 0, -0.4],
        LLegBack2=[0, 0, 2.0],
        RLegBack2=[0, 0, 2.0],
        LLegBack3=[0, 0, -2.2],
        RLegBack3=[0, 0, -2.2],
        LLeg1=[0, 0, -0.5],
        RLeg1=[0, 0, -0.5],
        Neck=[0, 0, -0.4],
    ),
    "lie": _pose(
        LLeg1=[0, 0, 1.45],
        RLeg1=[0, 0, 1.45],
        LLeg3=[0, 0, -0.3],
        RLeg3=[0, 0, -0.3],
        LLegBack1=[0, 0, -1.3],
        RLegBack1=[0, 0, -1.3],
        LLegBack2=[0, 0, 2.2],
        RLegBack2=[0, 0, 2.2],
        LLegBack3=[0, 0, -2.0],
        RLegBack3=[0, 0, -2.0],
    ),
    "head_turned_tail_up": _pose(
        Neck=[0, 0.6, 0], Head=[0, 0.4, 0], Tail1=[0, 0, -1.2], Tail2=[0, 0, -0.3]
    ),
}
SHAPES = {
    "dachshund": {"leg_length": -3, "body_length": 1.5},
    "giraffe": {"neck_length": 3, "leg_length": 2.5},
    "pig": {"girth": 3, "leg_length": -1.5, "neck_length": -2, "snout_length": -1},
}


def _betas(**axes):
    b = torch.zeros(1, 20)
    for k, v in axes.items():
        b[0, PROCEDURAL_SHAPE_AXES.index(k)] = v
    return b


def _run(body_model, betas, pose=None):
    pose = torch.zeros(betas.shape[0], 35, 3) if pose is None else pose
    return body_model(betas, pose[:, 0], pose[:, 1:])


def test_skeleton_names_tree_and_regressed_joints(body_model):
    assert body_model.joint_names == SMAL_JOINT_NAMES and tuple(body_model.parents) == SMAL_PARENTS
    assert body_model.num_vertices > 2000 and np.allclose(body_model.canonical_rotation, np.eye(3))
    assert body_model.posedirs.shape == (9 * 34, 3 * body_model.num_vertices)
    w = body_model.lbs_weights.numpy()
    assert np.allclose(w.sum(1), 1) and (w >= -1e-9).all() and ((w > 1e-6).sum(1) <= 3).all()
    # Closed surfaces: every edge is shared by exactly two faces.
    f = body_model.faces
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()


def test_upright_in_canonical_frame(body_model):
    out = _run(body_model, torch.zeros(1, 20))
    v, kp, j = out.vertices[0].numpy(), out.keypoints[0].numpy(), out.joints[0].numpy()
    length = np.ptp(v[:, 0])
    assert 1.0 < length < 1.8 and abs(v[:, 1].min()) < 0.02  # ~1 m body (+ tail), paws on y = 0
    assert (
        kp[KP["nose"], 0]
        > kp[KP["left_eye"], 0]
        > kp[KP["neck"], 0]
        > kp[KP["tail_base"], 0]
        > kp[KP["tail_end"], 0]
    )
    assert all(kp[KP[n], 1] < 0.06 for n in KEYPOINT_NAMES if n.endswith("paw"))
    assert all(
        kp[KP[n], 2] < 0 < kp[KP[n.replace("left", "right")], 2]
        for n in KEYPOINT_NAMES
        if n.startswith("left")
    )
    assert j[SMAL_JOINT_NAMES.index("Head"), 1] > j[0, 1] > j[SMAL_JOINT_NAMES.index("LFoot"), 1]


def _measures(body_model, betas):
    """One dict of proportions per row of ``betas`` (one batched forward)."""
    out = _run(body_model, betas)
    dom = body_model.lbs_weights.numpy().argmax(1)
    rows = []
    for v, j, kp in zip(out.vertices.numpy(), out.joints.numpy(), out.keypoints.numpy()):
        seg = lambda ids: sum(np.linalg.norm(j[a] - j[b]) for a, b in zip(ids[:-1], ids[1:]))  # noqa: E731
        rows.append(
            {
                "body_length": np.linalg.norm(j[6] - j[0]),
                "leg_length": seg([7, 8, 9, 10]),
                "girth": np.ptp(v[np.isin(dom, [1, 2, 3, 4]), 2]),
                "neck_length": np.linalg.norm(j[16] - j[15]),
                "head_size": np.ptp(v[dom == 16, 1]),
                "snout_length": kp[KP["nose"], 0] - j[16, 0],
                "tail_length": seg(list(range(25, 32))),
                "tail_thickness": np.ptp(v[dom == 27, 2]),
                "ear_size": np.linalg.norm(kp[KP["left_ear"]] - j[33]),
                "leg_thickness": np.ptp(v[dom == 8, 2]),
            }
        )
    return rows


def test_each_named_axis_grows_its_proportion(body_model):
    betas = torch.cat(
        [_betas()] + [_betas(**{a: s}) for a in PROCEDURAL_SHAPE_AXES for s in (-1.0, 1.0)]
    )
    rows = _measures(body_model, betas)
    zero = rows[0]
    for i, axis in enumerate(PROCEDURAL_SHAPE_AXES):
        minus, plus = rows[1 + 2 * i], rows[2 + 2 * i]
        assert minus[axis] < zero[axis] < plus[axis], axis
        assert plus[axis] / zero[axis] > 1.05, axis
    two = _measures(body_model, _betas(leg_length=2))[0]
    assert two["leg_length"] > zero["leg_length"] * 1.2 and two["neck_length"] == pytest.approx(
        zero["neck_length"], rel=1e-3
    )


def test_every_shape_in_range_is_a_plausible_animal(body_model):
    rng = np.random.default_rng(0)
    betas = torch.tensor(rng.uniform(-3, 3, size=(64, 20)), dtype=torch.float32)
    betas[:8, :10] = torch.tensor([-3.0, 3.0]).repeat(4)[:8, None].expand(8, 10)
    out = _run(body_model, betas)
    j, kp = out.joints.numpy(), out.keypoints.numpy()
    bones = np.linalg.norm(j[:, 1:] - j[:, list(SMAL_PARENTS[1:])], axis=2)
    assert np.isfinite(out.vertices.numpy()).all() and bones.min() > 0.005
    paws = kp[:, [KP[n] for n in KEYPOINT_NAMES if n.endswith("paw")], 1]
    assert (paws.max(1) < kp[:, KP["neck"], 1]).all() and (
        kp[:, KP["nose"], 0] > kp[:, KP["tail_base"], 0]
    ).all()
    assert (kp[:, KP["left_eye"], 2] < kp[:, KP["right_eye"], 2]).all()
    extra = body_model.shapedirs[:, :, 10:].abs().amax(dim=(0, 1))
    assert (extra > 0.002).all() and (extra < 0.03).all()


def test_renders_look_like_a_quadruped(body_model):
    pytest.importorskip("pyrender")
    import imageio.v2 as iio

    from .views import render_views

    OUT.mkdir(parents=True, exist_ok=True)
    rows, aspect = [], {}
    cases = [(n, torch.zeros(1, 20), p) for n, p in POSES.items()] + [
        (n, _betas(**b), None) for n, b in SHAPES.items()
    ]
    for name, betas, pose in cases:
        out = _run(body_model, betas, pose)
        img = render_views(
            out.vertices[0].numpy(),
            body_model.faces,
            out.keypoints[0].numpy(),
            size=180,
            directions=((0.0, 0.15, 1.0), (0.8, 0.35, 0.8)),
        )
        rows.append(img)
        side = img[:, :180].min(axis=2) < 250
        ys, xs = np.nonzero(side)
        assert len(xs) > 1000, name
        aspect[name] = np.ptp(xs) / np.ptp(ys)
    iio.imwrite(OUT / "procedural_poses_shapes.png", np.concatenate(rows, 0))
    assert aspect["stand"] > 1.2 and aspect["dachshund"] > aspect["stand"] > aspect["giraffe"]
    assert aspect["sit"] < aspect["stand"]
