"""The sampling plan: reproducible from its inputs, bounded, never planning the test set; the error
model finds a planted effect."""

import json

import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core import layout
from genzoo_assets.core.planning.error_model import fit_error_model, predictive_power
from genzoo_assets.core.planning.factors import FACTORS, sample_factors
from genzoo_assets.core.planning.plan import (
    PlanInputError,
    PlanSettings,
    make_plan,
    newest_round,
    partition_plan,
    record_round,
    sample_errors,
)
from genzoo_assets.core.planning.proposal import bounded_proposal
from genzoo_assets.core.sampling.planned import base_distribution

POSTURES = ["standing", "walking", "trotting", "sitting", "lying"]
TRAIN = pd.DataFrame(
    {
        "species": ["red-fox", "gray-wolf", "brown-bear", "panthera-leo"],
        "family": ["Canidae", "Canidae", "Ursidae", "Felidae"],
    }
)


def _validation(n=400, seed=0):
    """Validation rows whose error is planted: lying and seen-from-behind samples are hard."""
    rng = np.random.default_rng(seed)
    posture = rng.choice(POSTURES, n)
    yaw = rng.uniform(-180, 180, n)
    species = rng.choice(["arctic-fox", "sloth-bear"], n)
    samples = pd.DataFrame(
        {
            "sample_id": [f"{s}.000.{i:05d}" for i, s in enumerate(species)],
            "species": species,
            "family": np.where(species == "arctic-fox", "Canidae", "Ursidae"),
            "posture": posture,
            "yaw_deg": yaw,
            "pitch_deg": rng.normal(10, 10, n),
            "betas": [rng.normal(0, 1, 20) for _ in range(n)],
            "keypoints_vis": [rng.uniform(size=26) < 0.9 for _ in range(n)],
            "keypoints_2d": [rng.uniform(-10, 130, 52) for _ in range(n)],
            "render_resolution": 128,
        }
    )
    error = (
        50
        + 40 * (posture == "lying")
        + 30 * (np.abs(yaw) > 135)
        + 20 * (samples["family"] == "Ursidae")
        + rng.normal(0, 5, n)
    )
    metrics = pd.DataFrame(
        {
            "sample_id": samples["sample_id"],
            "test_set": "val",
            "method": "genzoo",
            "pa_mpjpe": error,
        }
    )
    return metrics, samples


def _plan(settings=PlanSettings(), seed=0):
    metrics, samples = _validation(seed=seed)
    return make_plan(sample_errors(metrics, settings.metric), samples, TRAIN, settings)


def test_a_plan_is_reproducible_from_the_same_inputs():
    a, b = _plan(), _plan()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["plan_id"] != _plan(seed=1)["plan_id"]
    assert a["plan_id"] != _plan(PlanSettings(ratio=3.0))["plan_id"]


@pytest.mark.parametrize("ratio", [1.0, 1.5, 2.0, 4.0])
def test_the_bound_on_the_proposal_holds(ratio):
    plan = _plan(PlanSettings(ratio=ratio, sharpness=8.0))
    for factor, d in plan["factors"].items():
        base, q = np.array(d["base"]), np.array(d["proposal"])
        assert q.sum() == pytest.approx(1.0)
        assert (q <= base * ratio * (1 + 1e-9)).all(), factor
        assert (q >= base / ratio * (1 - 1e-9)).all(), factor
    if ratio == 1.0:
        assert all(np.allclose(d["base"], d["proposal"]) for d in plan["factors"].values())


def test_the_proposal_leans_towards_the_planted_errors():
    plan = _plan()
    post = dict(zip(plan["factors"]["posture"]["levels"], plan["factors"]["posture"]["proposal"]))
    base = base_distribution()["posture"]
    assert post["lying"] > base["lying"] and post["standing"] < base["standing"]
    yaw = plan["factors"]["yaw_bin"]
    ratio = np.array(yaw["proposal"]) / np.array(yaw["base"])
    assert ratio[0] > 1 and ratio[-1] > 1 and ratio[3] < 1 and ratio[4] < 1  # behind vs front
    sp = dict(zip(plan["factors"]["species"]["levels"], plan["factors"]["species"]["proposal"]))
    assert sp["brown-bear"] > sp["red-fox"]  # its family's validation error is higher
    assert plan["model"]["spearman"] > 0.5  # the main-effects model predicts held-out rows


def test_the_test_set_is_never_planned(tmp_path):
    plan = _plan()
    assert "panthera-leo" not in plan["factors"]["species"]["levels"]  # Felidae: held out
    catalog = pd.DataFrame({"species": ["red-fox", "panthera-leo"], "shard": ["000", "002"]})
    planned = record_round(tmp_path, plan, catalog)
    assert {p["species"] for p in planned["partitions"]} <= {"red-fox", "gray-wolf", "brown-bear"}
    assert partition_plan(tmp_path, "panthera-leo", "003") is None
    metrics, _ = _validation()
    leaked = pd.concat([metrics, metrics.head(3).assign(test_set="heldout")])
    with pytest.raises(PlanInputError, match="heldout"):
        sample_errors(leaked, "pa_mpjpe")
    changed = make_plan(
        sample_errors(metrics, "pa_mpjpe"),
        _validation()[1],
        TRAIN,
        PlanSettings(heldout_families=("Ursidae",)),
    )
    assert changed["factors"]["species"]["levels"] == ["gray-wolf", "panthera-leo", "red-fox"]
    with pytest.raises(PlanInputError, match="held-out families"):
        make_plan(
            sample_errors(metrics, "pa_mpjpe"),
            _validation()[1],
            TRAIN[TRAIN["family"] == "Felidae"],
            PlanSettings(),
        )


def test_a_round_is_recorded_once_and_takes_fresh_shards(tmp_path):
    plan = _plan(PlanSettings(round_shards=6))
    catalog = pd.DataFrame({"species": ["red-fox", "red-fox"], "shard": ["000", "001"]})
    first = record_round(tmp_path, plan, catalog)
    assert first["round"] == 1 and len(first["partitions"]) == 6
    assert all(p["shard"] >= "002" for p in first["partitions"] if p["species"] == "red-fox")
    assert layout.plan_file(tmp_path, plan["plan_id"]).is_file()
    again = record_round(tmp_path, plan, catalog)
    assert again == first and newest_round(tmp_path)[0] == 1
    second = record_round(tmp_path, _plan(PlanSettings(round_shards=6), seed=1), catalog)
    assert second["round"] == 2
    taken = {(p["species"], p["shard"]) for p in first["partitions"]}
    assert not taken & {(p["species"], p["shard"]) for p in second["partitions"]}
    sp = first["partitions"][0]
    pp = partition_plan(tmp_path, sp["species"], sp["shard"])
    assert pp.plan_id == plan["plan_id"] and pp.round == 1
    assert pp.species_weight == pytest.approx(first["species_weight"][sp["species"]])


def test_shrinkage_pulls_a_rare_level_towards_the_mean():
    rng = np.random.default_rng(0)
    factors = pd.DataFrame({"posture": ["standing"] * 200 + ["walking"] * 200 + ["lying"] * 2})
    error = np.concatenate([rng.normal(50, 5, 200), rng.normal(60, 5, 200), [200.0, 200.0]])
    t = fit_error_model(factors, error, ["posture"]).tables["posture"].set_index("level")
    assert t.loc["lying", "mean"] == pytest.approx(200.0)
    assert error.mean() < t.loc["lying", "shrunk"] < 200.0
    assert t.loc["walking", "shrunk"] == pytest.approx(t.loc["walking", "mean"], abs=1.0)


def test_predictive_power_is_near_zero_on_pure_noise():
    metrics, samples = _validation()
    noise = np.random.default_rng(5).normal(0, 1, len(samples))
    power = predictive_power(sample_factors(samples), noise, FACTORS)
    assert abs(power["spearman"]) < 0.2 and power["n_heldout"] > 100


def test_bounded_proposal_refuses_bad_settings():
    base = {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError, match="ratio"):
        bounded_proposal(base, {"a": 1.0, "b": 2.0}, ratio=0.5)
    with pytest.raises(ValueError, match="sum to 1"):
        bounded_proposal({"a": 0.5}, {"a": 1.0}, ratio=2.0)
    with pytest.raises(PlanInputError, match="metric"):
        sample_errors(_validation()[0], "accuracy")
