"""The pose bank under a plan: postures and the bank's own orientations come up as the plan tilts
them, the importance weights take them back to the bank's base, the weights stay within the plan's
bound, and a planned bank partition reruns identically."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, matrix_to_rot6d
from genzoo_assets.core.planning.proposal import tilted_proposal
from genzoo_assets.core.sampling.camera_model import view_angles, view_rotation
from genzoo_assets.core.sampling.partition import sample_poses_partition, sample_shapes_partition
from genzoo_assets.core.sampling.planned import (
    PITCH_BINS,
    YAW_BINS,
    PartitionPlan,
    pitch_bin,
    yaw_bin,
)
from genzoo_assets.core.sampling.poses import make_pose_sampler
from genzoo_assets.core.sampling.shapes import make_shape_sampler
from genzoo_assets.core.seeds import rng_for
from genzoo_assets_tests.core.sampling.plans import favouring_plan, without_run_identity

RATIO = 3.0
# A bank whose posture frequencies are not the procedural base's: 30 standing, 6 lying, 12 sitting,
# 4 of a posture the plan does not know.
POSTURES = ["standing"] * 30 + ["lying"] * 6 + ["sitting"] * 12 + ["rearing"] * 4


def _plan() -> PartitionPlan:
    """A plan that favours lying, the back views and mid pitch, bounded by RATIO."""
    return favouring_plan("b" * 16, ratio=RATIO, species_weight=1.0)


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory):
    """52 body poses with postures and 80 orientations: upright views, yaw uniform, pitch from
    the camera sampler's N(10°, 10°), in the model frame of a model whose canonical frame is it."""
    rng = np.random.default_rng(7)
    aa = rng.normal(0, 0.15, (len(POSTURES), 34, 3))
    mats = axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
    views = [
        view_rotation(rng.uniform(-180, 180), float(np.clip(rng.normal(10, 10), -10, 60)))
        for _ in range(80)
    ]
    path = tmp_path_factory.mktemp("bank") / "dog_poses.npz"
    np.savez(
        path,
        pose_6d=matrix_to_rot6d(torch.from_numpy(mats)).numpy(),
        orient_6d=matrix_to_rot6d(torch.from_numpy(np.stack(views))).numpy(),
        postures=np.array(POSTURES),
    )
    return path


class _Upright:
    canonical_rotation = np.eye(3)


def _weighted_freq(labels, weights, levels):
    w = pd.Series(weights).groupby(pd.Series(labels)).sum()
    return np.array([w.get(k, 0.0) for k in levels]) / w.sum()


def _bank_base(labels):
    levels, counts = np.unique(labels, return_counts=True)
    return list(levels), counts / counts.sum()


def test_tilting_the_plans_own_base_gives_the_plans_proposal():
    plan = _plan()
    for factor, levels in plan.factors.items():
        base = {k: p for k, (p, _) in levels.items()}
        q = tilted_proposal(base, plan.tilt(factor))
        assert np.allclose([q[k] for k in levels], [levels[k][1] for k in levels], atol=1e-9)


def test_planned_bank_draws_reweight_to_the_banks_base(bank_file):
    """Over 3,000 planned draws the importance-weighted frequency of each posture and of each yaw
    and pitch bin of the bank's orientations is the bank's own within 4 standard errors (of the
    effective sample size); the raw frequencies are not; every weight is within the plan's bound
    (RATIO per factor: posture, and the yaw × pitch pair)."""
    plan = _plan()
    bank = make_pose_sampler("bank", _Upright(), path=bank_file)
    planned = bank.under_plan(plan)
    assert planned.planned_factors == ("posture", "yaw_bin", "pitch_bin")
    n = 3000
    postures, yaws, pitches, weights = [], [], [], []
    for i in range(n):
        orient, _, posture, w = planned.sample_weighted(rng_for(f"fox.002.{i:05d}", "pose"))
        yaw, pitch = view_angles(orient)
        postures.append(posture)
        yaws.append(YAW_BINS[int(yaw_bin(yaw))])
        pitches.append(PITCH_BINS[int(pitch_bin(pitch))])
        weights.append(w)
    w = np.array(weights)
    assert w.min() >= 1 / RATIO**3 - 1e-9 and w.max() <= RATIO**3 + 1e-9
    n_eff = w.sum() ** 2 / (w**2).sum()
    orient_angles = np.array([view_angles(r) for r in bank.global_orient])
    bank_yaws = np.take(YAW_BINS, yaw_bin(orient_angles[:, 0]))
    bank_pitches = np.take(PITCH_BINS, pitch_bin(orient_angles[:, 1]))
    for name, labels, bank_labels in (
        ("posture", postures, np.array(POSTURES)),
        ("yaw_bin", yaws, bank_yaws),
        ("pitch_bin", pitches, bank_pitches),
    ):
        levels, p = _bank_base(bank_labels)
        weighted = _weighted_freq(labels, w, levels)
        raw = _weighted_freq(labels, np.ones(n), levels)
        se = np.sqrt(p * (1 - p) / n_eff)
        assert (np.abs(weighted - p) < 4 * se + 1e-3).all(), (name, weighted, p)
        assert np.abs(raw - p).max() > 4 * se.max(), name  # the plan did move the draws
    lying = np.mean(np.array(postures) == "lying")
    assert lying > 2 * POSTURES.count("lying") / len(POSTURES)  # towards the plan's hard posture


def test_a_bank_without_postures_plans_only_what_it_has(tmp_path):
    mats = axis_angle_to_matrix(torch.zeros(3, 34, 3, dtype=torch.float64)).numpy()
    np.savez(tmp_path / "plain.npz", pose_rotmat=mats)
    bank = make_pose_sampler("bank", _Upright(), path=tmp_path / "plain.npz", orientation="view")
    planned = bank.under_plan(_plan())
    assert planned.planned_factors == ()
    draws = [planned.sample_weighted(np.random.default_rng(i)) for i in range(20)]
    assert all(o is None and p == "bank" and w == 1.0 for o, _, p, w in draws)


@pytest.fixture(scope="module")
def shapes(body_model):
    return sample_shapes_partition(
        {"species": "red-fox", "family": "Canidae"},
        "007",
        range(40, 56),
        make_shape_sampler("prior", body_model),
    )


@pytest.mark.parametrize("orientation", ["bank", "view"])
def test_a_planned_bank_partition_reruns_identically(body_model, shapes, bank_file, orientation):
    sampler = make_pose_sampler("bank", body_model, path=bank_file, orientation=orientation)
    plan = _plan()
    a = sample_poses_partition(shapes, body_model, sampler, resolution=128, run_id="a", plan=plan)
    b = sample_poses_partition(shapes, body_model, sampler, resolution=128, run_id="b", plan=plan)
    pd.testing.assert_frame_equal(without_run_identity(a), without_run_identity(b))
    assert (a["plan_id"] == plan.plan_id).all() and (a["round"] == 1).all()
    prov = json.loads(a["provenance"].iloc[0])["plan"]
    assert prov["planned"] == ["species", "posture", "yaw_bin", "pitch_bin"]
    assert a["importance_weight"].tolist() == [
        json.loads(p)["plan"]["importance_weight"] for p in a["provenance"]
    ]
    assert not np.allclose(a["importance_weight"], 1.0)
    uniform = sample_poses_partition(shapes, body_model, sampler, resolution=128)
    assert (uniform["importance_weight"] == 1.0).all() and uniform["plan_id"].isna().all()
