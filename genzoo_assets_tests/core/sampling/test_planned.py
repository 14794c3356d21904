"""Drawing under a plan: the proposal is what comes up, the importance weights take it back to
base, a planned partition reruns identically and a uniform one is unchanged."""

import json

import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core.sampling.partition import sample_poses_partition, sample_shapes_partition
from genzoo_assets.core.sampling.planned import (
    PITCH_BINS,
    YAW_BINS,
    PartitionPlan,
    base_distribution,
    importance_weight,
    pitch_bin,
    planned_view,
    yaw_bin,
)
from genzoo_assets.core.sampling.poses import make_pose_sampler
from genzoo_assets.core.sampling.shapes import make_shape_sampler
from genzoo_assets.core.seeds import rng_for
from genzoo_assets_tests.core.sampling.plans import favouring_plan, without_run_identity

ROW = {"species": "red-fox", "family": "Canidae"}


def _plan() -> PartitionPlan:
    """A plan that favours lying and the back views strongly."""
    return favouring_plan("p" * 16, ratio=3.0, species_weight=0.8)


def test_planned_views_follow_the_proposal_and_stay_in_range():
    plan = _plan()
    views = [planned_view(rng_for(f"x.000.{i:05d}", "view"), plan) for i in range(4000)]
    yaw = np.array([v.yaw_deg for v in views])
    pitch = np.array([v.pitch_deg for v in views])
    assert yaw.min() >= -180 and yaw.max() < 180 and pitch.min() >= -10 and pitch.max() <= 60
    q = plan.proposal("yaw_bin")
    freq = np.bincount(yaw_bin(yaw), minlength=len(YAW_BINS)) / len(yaw)
    expected = np.array([q[k] for k in YAW_BINS])
    assert np.abs(freq - expected).max() < 4 * np.sqrt(expected * (1 - expected) / len(yaw)).max()


def _weighted_freq(labels, weights, levels):
    w = pd.Series(weights).groupby(pd.Series(labels)).sum()
    return np.array([w.get(k, 0.0) for k in levels]) / w.sum()


def test_importance_weights_recover_the_base_posture_and_view_bins(body_model):
    """Over a planned round, the weighted frequency of each posture and yaw/pitch bin is the base's
    within sampling error (4 standard errors of the effective sample size), while the raw
    frequency is not."""
    plan = _plan()
    sampler = make_pose_sampler("procedural", body_model).reweighted(plan.proposal("posture"))
    n = 3000
    postures, yaws, pitches, weights = [], [], [], []
    for i in range(n):
        sid = f"red-fox.001.{i:05d}"
        _, _, posture = sampler.sample(rng_for(sid, "pose"))
        view = planned_view(rng_for(sid, "view"), plan)
        postures.append(posture)
        yaws.append(YAW_BINS[int(yaw_bin(view.yaw_deg))])
        pitches.append(PITCH_BINS[int(pitch_bin(view.pitch_deg))])
        weights.append(importance_weight(plan, posture, view.yaw_deg, view.pitch_deg))
    w = np.array(weights)
    n_eff = w.sum() ** 2 / (w**2).sum()
    base = base_distribution()
    for factor, labels in (("posture", postures), ("yaw_bin", yaws), ("pitch_bin", pitches)):
        levels = list(base[factor])
        p = np.array([base[factor][k] for k in levels])
        weighted = _weighted_freq(labels, w, levels)
        raw = _weighted_freq(labels, np.ones(n), levels)
        se = np.sqrt(p * (1 - p) / n_eff)
        assert (np.abs(weighted - p) < 4 * se + 1e-3).all(), (factor, weighted, p)
        assert np.abs(raw - p).max() > 4 * se.max(), factor  # the plan did move the draws


@pytest.fixture(scope="module")
def shapes(body_model):
    return sample_shapes_partition(
        ROW, "005", range(320, 336), make_shape_sampler("prior", body_model)
    )


def test_a_planned_partition_reruns_identically_and_records_its_plan(body_model, shapes):
    plan = _plan()
    sampler = make_pose_sampler("procedural", body_model)
    a = sample_poses_partition(shapes, body_model, sampler, resolution=128, run_id="a", plan=plan)
    b = sample_poses_partition(shapes, body_model, sampler, resolution=128, run_id="b", plan=plan)
    pd.testing.assert_frame_equal(without_run_identity(a), without_run_identity(b))
    assert (a["round"] == 1).all() and (a["plan_id"] == plan.plan_id).all()
    prov = json.loads(a["provenance"].iloc[0])["plan"]
    assert prov["plan_id"] == plan.plan_id and prov["planned"] == [
        "species",
        "posture",
        "yaw_bin",
        "pitch_bin",
    ]
    assert a["importance_weight"].tolist() == [
        json.loads(p)["plan"]["importance_weight"] for p in a["provenance"]
    ]
    assert not np.allclose(a["importance_weight"], 1.0)
    uniform = sample_poses_partition(shapes, body_model, sampler, resolution=128)
    assert (uniform["round"] == 0).all() and uniform["plan_id"].isna().all()
    assert (uniform["importance_weight"] == 1.0).all()
    assert "plan" not in json.loads(uniform["provenance"].iloc[0])
    assert not np.allclose(np.stack(uniform["global_orient"]), np.stack(a["global_orient"]))


def test_a_uniform_plan_weighs_one_except_the_species_share(body_model, shapes):
    base = base_distribution()
    same = {f: {k: (p, p) for k, p in levels.items()} for f, levels in base.items()}
    plan = PartitionPlan("u" * 16, 2, 0.5, same)
    df = sample_poses_partition(
        shapes, body_model, make_pose_sampler("procedural", body_model), resolution=128, plan=plan
    )
    assert np.allclose(df["importance_weight"], 0.5)
