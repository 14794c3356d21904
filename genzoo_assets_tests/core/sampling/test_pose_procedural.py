import numpy as np
import pytest
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.body.skeleton import KEYPOINT_NAMES, SMAL_JOINT_NAMES
from genzoo_assets.core.sampling.joint_limits import JOINT_LIMITS_DEG, within_limits
from genzoo_assets.core.sampling.pose_procedural import POSTURE_WEIGHTS, ProceduralPoseSampler

KP = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
J = {n: i for i, n in enumerate(SMAL_JOINT_NAMES)}


class _Model:
    def __init__(self, c=np.eye(3)):
        self.canonical_rotation = c


def test_draws_are_rotations_within_limits_with_documented_weights():
    s = ProceduralPoseSampler(_Model())
    rng = np.random.default_rng(0)
    counts = dict.fromkeys(POSTURE_WEIGHTS, 0)
    for _ in range(600):
        posture, orient, angles = s.sample_angles(rng)
        counts[posture] += 1
        assert angles.shape == (34, 3) and within_limits(angles)
        if orient is not None:
            assert np.allclose(orient @ orient.T, np.eye(3)) and np.isclose(
                np.linalg.det(orient), 1
            )
    for posture, w in POSTURE_WEIGHTS.items():
        assert abs(counts[posture] / 600 - w) < 0.06, (posture, counts)
    _, body_pose, _ = s.sample(rng)
    assert body_pose.shape == (34, 3, 3)
    assert np.allclose(body_pose @ np.swapaxes(body_pose, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(body_pose), 1.0)


def test_limits_table_is_ordered():
    assert JOINT_LIMITS_DEG.shape == (34, 3, 2) and np.all(
        JOINT_LIMITS_DEG[..., 0] <= JOINT_LIMITS_DEG[..., 1]
    )


def test_deterministic_per_rng_and_converted_to_model_frame():
    c = axis_angle_to_matrix(torch.tensor([0.0, 0.0, np.pi / 2], dtype=torch.float64)).numpy()
    canon, model = ProceduralPoseSampler(_Model()), ProceduralPoseSampler(_Model(c))
    o1, p1, n1 = canon.sample(np.random.default_rng(5))
    o2, p2, n2 = model.sample(np.random.default_rng(5))
    assert n1 == n2 and np.allclose(p2, c.T @ p1 @ c)
    assert np.array_equal(canon.sample(np.random.default_rng(5))[1], p1)


def test_weights_are_validated():
    with pytest.raises(ValueError, match="unknown posture"):
        ProceduralPoseSampler(_Model(), {"galloping": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        ProceduralPoseSampler(_Model(), {"sitting": 0.0})


def _posed(body_model, posture, n=16):
    s = ProceduralPoseSampler(body_model, {posture: 1.0})
    rng = np.random.default_rng(1)
    draws = [s.sample(rng) for _ in range(n)]
    go = np.stack([np.eye(3) if o is None else o for o, _, _ in draws])
    out = body_model(
        torch.zeros(n, body_model.num_betas),
        torch.tensor(go, dtype=torch.float32),
        torch.tensor(np.stack([d[1] for d in draws]), dtype=torch.float32),
    )
    return (
        out.keypoints.double().numpy(),
        out.joints.double().numpy(),
        out.vertices.double().numpy(),
        go,
    )


def test_postures_put_the_right_parts_on_the_ground(body_model):
    """y is up in the canonical frame: compare heights of paws, rump and belly."""
    kp, joints, verts, _ = _posed(body_model, "standing")
    paws = kp[
        :,
        [KP["left_front_paw"], KP["right_front_paw"], KP["left_back_paw"], KP["right_back_paw"]],
        1,
    ]
    ground = verts[:, :, 1].min(1)
    assert np.all(paws.max(1) - ground < 0.08)  # all four paws on (or just above) the ground
    assert np.all(
        joints[:, J["LLegBack2"], 0] > joints[:, J["LLegBack3"], 0]
    )  # stifle ahead of the hock
    belly_standing = np.median(joints[:, J["spine1"], 1] - ground)

    kp, joints, verts, _ = _posed(body_model, "sitting")
    front = kp[:, [KP["left_front_paw"], KP["right_front_paw"]], 1].min(1)
    hind = kp[:, [KP["left_back_paw"], KP["right_back_paw"]], 1].min(1)
    assert np.all(np.abs(hind - front) < 0.08)  # hind legs folded down to the front paws' ground
    assert np.all(joints[:, J["pelvis"], 1] - front < 0.5 * belly_standing)  # rump low
    assert np.all(verts[:, :, 1].min(1) - front > -0.1)  # nothing sinks below the paws
    assert np.all(joints[:, J["Neck"], 1] - front > 0.5)  # chest and head up, front legs upright
    assert np.all(np.abs(joints[:, J["LLeg3"], 0] - joints[:, J["LLeg1"], 0]) < 0.08)

    kp, joints, verts, orient = _posed(body_model, "lying", n=24)
    chest = [i for i in range(24) if orient[i, 1, 1] > 0.9]  # not rolled onto the side
    front = kp[chest][:, [KP["left_front_paw"], KP["right_front_paw"]], 1].min(1)
    assert len(chest) > 10
    assert np.all(
        joints[chest, J["spine1"], 1] - front < 0.5 * belly_standing
    )  # belly near the ground
