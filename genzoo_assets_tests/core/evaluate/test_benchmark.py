import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from genzoo_assets.core.evaluate import metrics
from genzoo_assets.core.evaluate.animal3d import smal_forward
from genzoo_assets.core.evaluate.benchmark import (
    METRIC_COLUMNS,
    Prediction,
    mean_pose_baseline,
    mean_rotation,
    project_weak,
    run_benchmark,
)
from genzoo_assets.core.evaluate.benchmark_set import (
    benchmark_set_from_arrays,
    benchmark_set_from_samples,
)

B = 8


def synthetic_set(body_model, seed=0, res=96):
    """Random posed animals whose GT 2D keypoints are their own weak projection (the crop = image)."""
    rng = np.random.default_rng(seed)
    rot = (
        Rotation.from_rotvec(rng.normal(scale=0.3, size=(B * 35, 3)))
        .as_matrix()
        .reshape(B, 35, 3, 3)
    )
    betas = rng.normal(size=(B, 41))
    cam = np.c_[rng.uniform(0.8, 1.2, B), rng.uniform(-0.1, 0.1, (B, 2))]
    _, _, kps = smal_forward(body_model, betas, rot)
    vis = rng.uniform(size=(B, 26)) > 0.2
    species = ["beagle", "beagle", "wolf", "wolf", "lion", "lion", "tiger", "tiger"]
    family = ["canidae"] * 4 + ["felidae"] * 4
    images = [np.full((res, res, 3), 30 + 20 * i, np.uint8) for i in range(B)]
    ts = benchmark_set_from_arrays(
        "heldout",
        images,
        np.zeros((B, 26, 2)),
        np.full(B, 900.0),
        betas,
        rot.reshape(B, 35, 9),
        species,
        family,
        visibility=vis,
    )
    ts.keypoints_2d = ts.crop_to_pixels(project_weak(kps.astype(np.float64), cam))
    return ts, cam


def oracle(ts, cam, noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    index = {s: i for i, s in enumerate(ts.sample_ids)}

    def predict(batch):
        rows = [index[s] for s in batch.sample_ids]
        rot = batch.gt_rotmat
        if noise:
            rot = rot @ Rotation.from_rotvec(
                rng.normal(scale=noise, size=(len(batch) * 35, 3))
            ).as_matrix().reshape(-1, 35, 3, 3)
        return {
            "rotmat": rot,
            "betas": batch.gt_betas + noise * rng.normal(size=batch.gt_betas.shape),
            "cam": cam[rows],
        }

    return predict


def test_perfect_and_noisy_predictors(body_model):
    ts, cam = synthetic_set(body_model)
    res = run_benchmark(
        ts,
        oracle(ts, cam),
        body_model,
        baselines={"noisy": oracle(ts, cam, noise=0.3)},
        batch_size=3,
    )
    df = res.per_sample
    assert list(df.columns[:5]) == ["sample_id", "species", "family", "test_set", "method"]
    assert len(df) == 2 * B and set(df["test_set"]) == {"heldout"}
    perfect, noisy = df[df.method == "model"], df[df.method == "noisy"]
    np.testing.assert_allclose(
        perfect[["pa_mpjpe", "s_mpjpe", "pa_v2v", "s_v2v"]].to_numpy(), 0.0, atol=1e-5
    )
    np.testing.assert_allclose(perfect[["pck@0.10", "pck@0.15", "pck_crop@0.5"]].to_numpy(), 1.0)
    assert noisy["auc"].between(0, 1).all() and noisy["auc"].mean() < perfect["auc"].mean()
    assert (noisy[["pa_mpjpe", "s_mpjpe", "pa_v2v", "s_v2v"]].to_numpy() > 1e-3).all()
    assert (noisy["s_mpjpe"].to_numpy() >= noisy["pa_mpjpe"].to_numpy() - 1e-9).all()
    np.testing.assert_allclose(
        perfect["auc"], 1.0 - 1.0 / 99 / 2
    )  # a zero error misses only τ = 0 (trapezoid)
    # The summary's PCK and AUC are metrics.pck / pck_auc over the same images (AniMer's mean over images).
    overall = res.summary[(res.summary.group == "overall")].set_index("method")
    assert list(overall.columns[-len(METRIC_COLUMNS) :]) == list(METRIC_COLUMNS)
    err = res.keypoint_errors["noisy"]
    assert np.isnan(err[~ts.visibility]).all()
    pred = res.predictions["noisy"]
    _, _, kps = smal_forward(body_model, pred.betas, pred.rotmat)
    kp_px = ts.crop_to_pixels(project_weak(kps.astype(np.float64), pred.cam))
    norm = np.sqrt(ts.mask_area)
    expect = metrics.pck(kp_px, ts.keypoints_2d, ts.visibility, norm, (0.10,))[0] * 100
    assert overall.loc["noisy", "pck@0.10"] == pytest.approx(expect)
    auc = metrics.pck_auc(kp_px, ts.keypoints_2d, ts.visibility, norm) * 100
    assert overall.loc["noisy", "auc"] == pytest.approx(auc)
    assert (overall["n_no_visible"] == 0).all()
    assert overall.loc["noisy", "pa_mpjpe"] == pytest.approx(noisy["pa_mpjpe"].mean() * 1000)
    fam = res.summary[res.summary.group == "family"]
    assert sorted(fam["value"].unique()) == ["canidae", "felidae"] and (fam["n"] == 4).all()
    assert set(res.summary[res.summary.group == "species"]["value"]) == {
        "beagle",
        "wolf",
        "lion",
        "tiger",
    }


def test_pck_at_half_uses_crop_units(body_model):
    ts, cam = synthetic_set(body_model)
    shifted = cam.copy()
    shifted[:, 1] += (
        0.3  # 0.3 crop heights = 29 px: a hit at 0.5 (crop units), a miss at 0.10 (29/sqrt(900) ≈ 0.96)
    )
    df = run_benchmark(ts, oracle(ts, shifted), body_model).per_sample
    np.testing.assert_allclose(df["pck_crop@0.5"], 1.0)
    np.testing.assert_allclose(df["pck@0.10"], 0.0)
    np.testing.assert_allclose(df["pa_mpjpe"], 0.0, atol=1e-5)


def test_mean_pose_baseline(body_model):
    ts, cam = synthetic_set(body_model)
    base = mean_pose_baseline(ts.gt_rotmat.reshape(B, 35, 9), ts.gt_betas, body_model)
    res = run_benchmark(ts, None, body_model, baselines={"mean_pose": base})
    df = res.per_sample
    assert set(df.method) == {"mean_pose"} and (df["pa_mpjpe"] > 0).all()
    pred = res.predictions["mean_pose"]
    np.testing.assert_allclose(pred.rotmat[0], pred.rotmat[-1])
    np.testing.assert_allclose(pred.betas[0], ts.gt_betas.mean(axis=0))
    r = pred.rotmat.reshape(-1, 3, 3)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)
    # The oracle camera fits the GT keypoints better than an unfitted one.
    assert df["pck_crop@0.5"].mean() > 0.5


def test_mean_rotation_of_symmetric_spread_is_the_centre():
    centre = Rotation.from_rotvec([0.3, -0.2, 0.5])
    spread = Rotation.from_rotvec(np.array([[0.2, 0, 0], [-0.2, 0, 0], [0, 0.2, 0], [0, -0.2, 0]]))
    np.testing.assert_allclose(
        mean_rotation((centre * spread).as_matrix()), centre.as_matrix(), atol=1e-9
    )


def test_bad_predictions_and_sets(body_model):
    ts, cam = synthetic_set(body_model)
    with pytest.raises(ValueError, match="method 'broken': cam has shape"):
        run_benchmark(
            ts,
            lambda b: Prediction(b.gt_rotmat, b.gt_betas, np.zeros((len(b), 2))),
            body_model,
            method_name="broken",
        )
    with pytest.raises(ValueError, match="lacks"):
        run_benchmark(ts, lambda b: {"rotmat": b.gt_rotmat}, body_model)
    with pytest.raises(ValueError, match=r"sample 'heldout.00002' has mask_area 0.0"):
        benchmark_set_from_arrays(
            "heldout",
            ts.images,
            ts.keypoints_2d,
            [900.0, 900, 0, 900, 900, 900, 900, 900],
            ts.gt_betas,
            ts.gt_rotmat,
            ts.species,
        )


def test_from_reader_samples(body_model):
    ts, _ = synthetic_set(body_model)
    rows = [
        {
            "__key__": f"wolf.000.{i:05d}",
            "poses": ts.gt_rotmat[i].reshape(35, 9),
            "betas": ts.gt_betas[i],
            "keypoints_2d": np.c_[ts.keypoints_2d[i], ts.visibility[i]],
            "mask_area": 500,
            "species": "wolf",
            "jpg": np.zeros((48, 64, 3), np.uint8),
        }
        for i in range(3)
    ]
    s = benchmark_set_from_samples(rows)
    assert s.sample_ids[1] == "wolf.000.00001" and s.family == ["wolf"] * 3
    np.testing.assert_allclose(s.crop_center, [[32.0, 24.0]] * 3)
    np.testing.assert_allclose(s.crop_size, [64.0] * 3)
    np.testing.assert_array_equal(s.visibility, ts.visibility[:3])
    del rows[2]["mask_area"]
    with pytest.raises(ValueError, match=r"sample 'wolf.000.00002' is missing \['mask_area'\]"):
        benchmark_set_from_samples(rows)


def test_regressor_adapter_feeds_crops(body_model):
    import torch

    from genzoo_assets.core.evaluate.adapters import regressor_predict_fn

    ts, cam = synthetic_set(body_model)
    seen = []

    class Echo(torch.nn.Module):
        """Stands in for the regressor: records the crops and answers the ground truth."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(tuple(x.shape))
            n = x.shape[0]
            rot = torch.as_tensor(ts.gt_rotmat[:n], dtype=torch.float32)
            return (
                rot.reshape(n, 35, 9),
                rot,
                torch.as_tensor(ts.gt_betas[:n], dtype=torch.float32),
                torch.as_tensor(cam[:n], dtype=torch.float32),
            )

    res = run_benchmark(
        ts, regressor_predict_fn(Echo(), input_hw=(64, 48)), body_model, batch_size=B
    )
    assert seen == [(B, 3, 64, 48)]
    np.testing.assert_allclose(res.per_sample["pa_mpjpe"], 0.0, atol=1e-4)
    np.testing.assert_allclose(res.per_sample["pck@0.10"], 1.0)


def _fixed_prediction(num_betas, seed=5):
    rng = np.random.default_rng(seed)

    def predict(batch):
        n = len(batch)
        rot = (
            Rotation.from_rotvec(rng.normal(scale=0.2, size=(n * 35, 3)))
            .as_matrix()
            .reshape(n, 35, 3, 3)
        )
        return {
            "rotmat": rot,
            "betas": rng.normal(size=(n, num_betas)),
            "cam": np.tile([1.0, 0.0, 0.0], (n, 1)),
        }

    return predict


def test_ground_truth_comes_from_its_own_model(body_model):
    """Animal3D-style: 41-beta GT through the GT model, predictions through the regressor's model."""
    from genzoo_assets_tests.core.evaluate.tiny_model import tiny_body_model

    ts, _ = synthetic_set(body_model)
    regressor_model = tiny_body_model(10, seed=3)  # another shape space on the same mesh
    with pytest.raises(
        ValueError, match="41-beta ground truth but the GT body model 'tiny-test-model-10' has 10"
    ):
        run_benchmark(ts, _fixed_prediction(10), regressor_model)
    res = run_benchmark(ts, _fixed_prediction(10), regressor_model, gt_body_model=body_model)
    pred = res.predictions["model"]
    verts, _, kps = smal_forward(regressor_model, pred.betas, pred.rotmat)
    gt_verts, _, gt_kps = smal_forward(body_model, ts.gt_betas, ts.gt_rotmat)
    np.testing.assert_allclose(res.per_sample["pa_v2v"], metrics.pa_v2v(verts, gt_verts), rtol=1e-6)
    np.testing.assert_allclose(res.per_sample["pa_mpjpe"], metrics.pa_mpjpe(kps, gt_kps), rtol=1e-6)

    given = ts.subset(slice(None))
    given.gt_keypoints_3d = gt_kps + np.random.default_rng(2).normal(scale=0.05, size=gt_kps.shape)
    res = run_benchmark(given, _fixed_prediction(10), regressor_model, gt_body_model=body_model)
    np.testing.assert_allclose(
        res.per_sample["pa_mpjpe"], metrics.pa_mpjpe(kps, given.gt_keypoints_3d), rtol=1e-6
    )
    np.testing.assert_allclose(res.per_sample["pa_v2v"], metrics.pa_v2v(verts, gt_verts), rtol=1e-6)
    assert res.keypoint_sets == {"prediction": "derived", "ground_truth": "json"}


def test_vertices_across_topologies_are_refused(body_model, tmp_path):
    from genzoo_assets.core.body import procedural_body_model
    from genzoo_assets_tests.core.body.fixtures import smal_topology_model

    ts, _ = synthetic_set(body_model)
    smal = smal_topology_model(tmp_path, num_betas=41)
    procedural = procedural_body_model()
    with pytest.raises(
        ValueError,
        match=r"V2V compares vertex i with vertex i.*procedural.*3889 vertices.*v2v=False",
    ):
        run_benchmark(ts, _fixed_prediction(20), procedural, gt_body_model=smal)
    res = run_benchmark(ts, _fixed_prediction(20), procedural, gt_body_model=smal, v2v=False)
    df = res.per_sample
    assert (
        df[["pa_v2v", "s_v2v"]].isna().all().all()
        and np.isfinite(df[["pa_mpjpe", "s_mpjpe", "auc"]]).all().all()
    )
    assert res.keypoint_sets == {"prediction": "derived", "ground_truth": "animer"}
    assert res.summary[["pa_v2v", "s_v2v"]].isna().all().all()


def test_images_without_visible_keypoints_are_excluded_and_counted(body_model):
    ts, cam = synthetic_set(body_model)
    ts.visibility[[2, 5]] = False
    res = run_benchmark(ts, oracle(ts, cam, noise=0.2), body_model)
    df = res.per_sample
    assert df.loc[[2, 5], ["pck@0.10", "pck@0.15", "pck_crop@0.5", "auc"]].isna().all().all()
    overall = res.summary[res.summary.group == "overall"].iloc[0]
    assert overall["n_no_visible"] == 2 and overall["n"] == B
    assert overall["pck@0.15"] == pytest.approx(100 * df["pck@0.15"].drop([2, 5]).mean())
    assert np.isfinite(overall["pa_mpjpe"])  # 3D metrics still use every image
