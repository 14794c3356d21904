import numpy as np
import pytest
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from genzoo_assets.core.sampling.pose_bank import BankPoseSampler, PoseBankError, load_pose_bank
from genzoo_assets.core.sampling.poses import make_pose_sampler


class _Model:
    num_betas = 20
    canonical_rotation = np.eye(3)


def _rotations(n=5, joints=34, seed=0):
    aa = np.random.default_rng(seed).normal(0, 0.6, (n, joints, 3))
    return aa, axis_angle_to_matrix(torch.from_numpy(aa)).numpy()


@pytest.mark.parametrize(
    "layout", ["pose_6d", "pose_6d_flat", "poses", "poses_flat_root", "pose_rotmat"]
)
def test_bank_formats_give_the_same_rotations(tmp_path, layout):
    aa, mats = _rotations()
    root = np.zeros((5, 1, 3))
    arrays = {
        "pose_6d": {
            "pose_6d": matrix_to_rot6d(torch.from_numpy(mats)).numpy(),
            "orient_6d": matrix_to_rot6d(torch.from_numpy(mats[:, 0])).numpy(),
        },
        "pose_6d_flat": {
            "pose_6d": matrix_to_rot6d(torch.from_numpy(mats)).numpy().reshape(5, 204)
        },
        "poses": {"poses": aa},
        "poses_flat_root": {"poses": np.concatenate([root, aa], 1).reshape(5, 105)},
        "pose_rotmat": {"pose_rotmat": mats},
    }[layout]
    np.savez(tmp_path / "bank.npz", **arrays)
    loaded, postures, orient = load_pose_bank(tmp_path / "bank.npz")
    assert postures is None and loaded.shape == (5, 34, 3, 3)
    if layout == "pose_6d":
        assert np.allclose(orient, mats[:, 0], atol=1e-6)
    assert np.allclose(loaded, mats, atol=1e-6)


def test_bank_sampler_draws_rows_and_postures(tmp_path):
    _, mats = _rotations(4)
    np.savez(
        tmp_path / "bank.npz", pose_rotmat=mats, postures=np.array(["sit", "lie", "stand", "walk"])
    )
    s = make_pose_sampler("bank", _Model(), path=tmp_path / "bank.npz", orientation="view")
    assert len(s) == 4 and "pose_bank" in s.model_files and s.orientation == "view"
    orient, body_pose, posture = s.sample(np.random.default_rng(3))
    i = ["sit", "lie", "stand", "walk"].index(posture)
    assert orient is None and np.allclose(body_pose, mats[i])
    again = s.sample(np.random.default_rng(3))
    assert again[2] == posture and np.array_equal(again[1], body_pose)


def test_bank_recorded_in_another_frame_is_reexpressed(tmp_path):
    _, mats = _rotations(1)
    np.savez(tmp_path / "bank.npz", pose_rotmat=mats)
    c_bank = axis_angle_to_matrix(torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)).numpy()
    s = BankPoseSampler(
        tmp_path / "bank.npz", _Model(), orientation="view", bank_canonical_rotation=c_bank
    )
    expected = c_bank @ mats[0] @ c_bank.T  # model frame is canonical (identity) here
    assert np.allclose(s.body_pose[0], expected)
    np.savez(
        tmp_path / "oriented.npz",
        pose_rotmat=mats,
        orient_6d=matrix_to_rot6d(torch.from_numpy(mats[0, :1])).numpy(),
    )
    s = BankPoseSampler(tmp_path / "oriented.npz", _Model(), bank_canonical_rotation=c_bank)
    assert np.allclose(s.global_orient[0], mats[0, 0] @ c_bank.T)  # camera ← bank model ← canonical


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"pose_6d": np.zeros((3, 34, 5))}, r"'pose_6d' has shape \(3, 34, 5\)"),
        ({"poses": np.zeros((3, 33, 3))}, r"'poses' has shape \(3, 33, 3\)"),
        ({"pose_rotmat": np.zeros((3, 34, 3, 2))}, r"'pose_rotmat' has shape"),
        ({"poses": np.zeros((0, 34, 3))}, "'poses' is empty"),
        ({"poses": np.full((2, 34, 3), np.nan)}, "NaN or inf .first at pose 0"),
        ({"pose_6d": np.zeros((2, 204))}, "degenerate 6D rotation"),
        ({"pose_rotmat": np.ones((2, 34, 3, 3))}, "is not a rotation matrix"),
        ({"poses": np.zeros((2, 34, 3)), "betas": np.zeros(3)}, r"unknown key\(s\) \['betas'\]"),
        ({"orient_6d": np.zeros((2, 6))}, "exactly one of"),
        (
            {"poses": np.zeros((2, 34, 3)), "postures": np.array(["a"])},
            "'postures' has 1 entries for 2 poses",
        ),
        (
            {"poses": np.zeros((2, 34, 3)), "orient_6d": np.ones((2, 5))},
            r"'orient_6d' has shape \(2, 5\)",
        ),
        (
            {"poses": np.zeros((2, 34, 3)), "orient_6d": np.zeros((2, 6))},
            "'orient_6d' pose 0 has a degenerate",
        ),
    ],
)
def test_bad_banks_name_the_file_and_key(tmp_path, arrays, match):
    np.savez(tmp_path / "bad_bank.npz", **arrays)
    with pytest.raises(PoseBankError, match=match) as info:
        load_pose_bank(tmp_path / "bad_bank.npz")
    assert "bad_bank.npz" in str(info.value)


def test_missing_bank_and_factory_errors(tmp_path):
    with pytest.raises(PoseBankError, match="does not exist"):
        load_pose_bank(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="needs path="):
        make_pose_sampler("bank", _Model())
    with pytest.raises(ValueError, match="unknown pose sampler 'mocap'"):
        make_pose_sampler("mocap", _Model())


def _genzoo_draw(bank, rng):
    """GenZoo's genzoo_pipeline.ipynb, transcribed: a pose index, then an orientation index of its own."""
    pose = bank["pose_6d"][rng.integers(bank["pose_6d"].shape[0])]
    orient = bank["orient_6d"][rng.integers(bank["orient_6d"].shape[0])]
    return (
        rot6d_to_matrix(torch.tensor(orient).reshape(-1, 6)).reshape(3, 3).numpy(),
        rot6d_to_matrix(torch.tensor(pose).reshape(-1, 6)).reshape(34, 3, 3).numpy(),
    )


def test_bank_orientation_is_drawn_as_genzoo_does(tmp_path):
    _, mats = _rotations(6)
    _, orients = _rotations(9, joints=1, seed=4)
    bank = {
        "pose_6d": matrix_to_rot6d(torch.from_numpy(mats)).numpy().reshape(6, 204),
        "orient_6d": matrix_to_rot6d(torch.from_numpy(orients[:, 0])).numpy(),
    }
    np.savez(tmp_path / "dog_poses.npz", **bank)
    s = make_pose_sampler("bank", _Model(), path=tmp_path / "dog_poses.npz")  # GenZoo's default
    assert s.orientation == "bank"
    seen = set()
    for seed in range(12):
        orient, body_pose, posture = s.sample(np.random.default_rng(seed))
        ref_orient, ref_pose = _genzoo_draw(bank, np.random.default_rng(seed))
        np.testing.assert_allclose(orient, ref_orient, atol=1e-6)
        np.testing.assert_allclose(body_pose, ref_pose, atol=1e-6)
        seen.add(int(np.argmin([np.abs(orient - o).max() for o in orients[:, 0]])))
    assert len(seen) > 3  # the orientation index varies on its own
    assert s.sample(np.random.default_rng(0))[1].shape == (34, 3, 3) and posture == "bank"


def test_orientation_choices_are_checked(tmp_path):
    _, mats = _rotations(2)
    np.savez(tmp_path / "no_orient.npz", pose_rotmat=mats)
    with pytest.raises(PoseBankError, match="no_orient.npz has no 'orient_6d'.*orientation 'view'"):
        make_pose_sampler("bank", _Model(), path=tmp_path / "no_orient.npz")
    with pytest.raises(ValueError, match="orientation must be one of"):
        make_pose_sampler("bank", _Model(), path=tmp_path / "no_orient.npz", orientation="random")
    with pytest.raises(ValueError, match="'procedural' draws postures.*needs the bank backend"):
        make_pose_sampler("procedural", _Model(), orientation="bank")
    assert make_pose_sampler("procedural", _Model(), orientation="view").orientation == "view"
