import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from genzoo_assets.core.evaluate import metrics


def _cloud(b=4, n=26, seed=0):
    return np.random.default_rng(seed).normal(size=(b, n, 3))


def test_similarity_transform_has_zero_pa_error():
    gt = _cloud()
    r = Rotation.random(4, random_state=1).as_matrix()
    pred = 0.37 * np.einsum("bij,bnj->bni", r, gt) + np.array([1.0, -2.0, 5.0])
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt), 0.0, atol=1e-9)
    np.testing.assert_allclose(metrics.pa_v2v(pred, gt), 0.0, atol=1e-9)
    assert (metrics.s_mpjpe(pred, gt) > 0.1).all()


def test_s_error_equals_residual_rotation_effect():
    # Unit-circle points rotated by θ about z, scaled and shifted: the best scale is cos θ/a and
    # every point ends ‖p − cos θ·R p‖ = |sin θ| from its target.
    theta = math.radians(30.0)
    angles = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    gt = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=-1)[None]
    rz = Rotation.from_euler("z", theta).as_matrix()
    pred = 2.5 * gt @ rz.T + np.array([3.0, 1.0, -1.0])
    np.testing.assert_allclose(metrics.s_mpjpe(pred, gt), [math.sin(theta)], rtol=1e-12)
    np.testing.assert_allclose(metrics.s_v2v(pred, gt), [math.sin(theta)], rtol=1e-12)
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt), [0.0], atol=1e-12)


def test_scaled_and_shifted_copy_has_zero_s_error():
    gt = _cloud()
    np.testing.assert_allclose(metrics.s_mpjpe(3.0 * gt + 7.0, gt), 0.0, atol=1e-9)


def test_mirror_image_is_not_aligned_by_reflection():
    gt = _cloud(b=3, n=30, seed=2)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    err = metrics.pa_mpjpe(mirrored, gt)
    assert (err > 0.05).all()
    # The alignment stays a proper rotation: aligning the mirror image of a rotated copy must
    # not recover it exactly (it would with a reflection allowed).
    aligned = metrics.procrustes_align(mirrored, gt)
    assert not np.allclose(aligned, gt, atol=1e-3)


def test_batched_matches_per_sample():
    gt, pred = _cloud(seed=3), _cloud(seed=4)
    batched = metrics.pa_mpjpe(pred, gt)
    single = [metrics.pa_mpjpe(pred[i : i + 1], gt[i : i + 1])[0] for i in range(4)]
    np.testing.assert_allclose(batched, single, rtol=1e-12)


@pytest.mark.parametrize(
    "pred, gt, match",
    [
        (np.zeros((2, 5, 2)), np.zeros((2, 5, 2)), r"\(B, N, 3\)"),
        (np.zeros((2, 5, 3)), np.zeros((2, 6, 3)), "shapes differ"),
        (np.full((1, 5, 3), np.nan), np.zeros((1, 5, 3)), "non-finite.*sample"),
        (np.ones((1, 5, 3)), np.random.default_rng(0).normal(size=(1, 5, 3)), "single point"),
    ],
)
def test_3d_validation(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        metrics.pa_mpjpe(pred, gt)


def _kp_case():
    gt = np.zeros((2, 4, 2))
    offsets = np.array([[0.05, 0.12, 0.3, 0.9], [0.0, 0.2, 0.6, 0.0]])
    pred = gt.copy()
    pred[..., 0] = offsets * 10.0
    visible = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool)
    return pred, gt, visible, np.array([10.0, 10.0])


def test_pck_several_thresholds_in_order():
    pred, gt, vis, norm = _kp_case()
    # normalised errors of the visible points: image 0 .05 .12 .3 .9, image 1 0 .2 .6; mean over images
    per_image = {0.5: (3 / 4, 2 / 3), 0.10: (1 / 4, 1 / 3), 0.15: (2 / 4, 1 / 3)}
    np.testing.assert_allclose(
        metrics.pck(pred, gt, vis, norm, (0.5, 0.10, 0.15)),
        [np.mean(per_image[t]) for t in (0.5, 0.10, 0.15)],
    )
    hits = metrics.pck_hits(pred, gt, vis, norm, (0.10, 0.15))
    assert hits.shape == (2, 2, 4)
    assert not hits[:, 1, 3].any()  # invisible keypoint with zero error is never a hit
    assert hits[0, 0].tolist() == [True, False, False, False]


def _animer_pck(pred, gt, conf, mask_area, th):
    """AniMer's ``Evaluator.compute_pck`` (amr/utils/evaluate_metric.py), transcribed with loops:
    per image Σ hits·conf / Σ conf, hit = ‖pred − gt‖ / sqrt(seg_area) < th, then the mean over
    images — here over the images with Σ conf > 0 (AniMer's 0/0 would make the mean NaN)."""
    per_image = []
    for b in range(len(pred)):
        total = sum(float(c) for c in conf[b])
        if total == 0:
            continue
        hit_sum = 0.0
        for k in range(len(pred[b])):
            dist = math.hypot(pred[b][k][0] - gt[b][k][0], pred[b][k][1] - gt[b][k][1])
            hit_sum += (1.0 if dist / math.sqrt(mask_area[b]) < th else 0.0) * float(conf[b][k])
        per_image.append(hit_sum / total)
    return sum(per_image) / len(per_image)


def _animer_auc(pred, gt, conf, mask_area):
    """AniMer's ``compute_auc``: np.linspace(0, 1, 100) thresholds, np.trapz, divided by the
    trapz of ones (1.0); the trapezoid rule written out."""
    ths = [i / 99 for i in range(100)]
    curve = [_animer_pck(pred, gt, conf, mask_area, t) for t in ths]
    area = sum((ths[i + 1] - ths[i]) * (curve[i] + curve[i + 1]) / 2 for i in range(99))
    return area / sum((ths[i + 1] - ths[i]) for i in range(99))


@pytest.mark.parametrize("weights", ["binary", "float"])
def test_pck_and_auc_equal_animers_evaluator(weights):
    rng = np.random.default_rng(11)
    b, k = 9, 26
    gt = rng.uniform(0, 256, (b, k, 2))
    pred = gt + rng.normal(0, 1, (b, k, 1)) * rng.uniform(2, 40, (b, 1, 1)) * rng.normal(
        size=(b, k, 2)
    )
    conf = (
        (rng.random((b, k)) < 0.7).astype(float)
        if weights == "binary"
        else rng.random((b, k)) * (rng.random((b, k)) < 0.8)
    )
    conf[4] = 0.0  # an image with no visible keypoint
    mask_area = rng.uniform(500, 30000, b)
    norm = np.sqrt(mask_area)
    taus = (0.05, 0.10, 0.15, 0.5)
    got = metrics.pck(pred, gt, conf if weights == "float" else conf > 0, norm, taus)
    ref = [
        _animer_pck(pred.tolist(), gt.tolist(), conf.tolist(), mask_area.tolist(), t) for t in taus
    ]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert 0 < got[1] < got[-1] < 1  # the thresholds discriminate on these inputs
    hits = metrics.pck_hits(pred, gt, conf > 0, norm, taus)
    pooled = (hits * conf).sum(axis=(1, 2)) / conf.sum()
    assert np.abs(pooled - got).max() > 1e-3  # the pooled form (issue 7's) would fail this test
    auc = metrics.pck_auc(pred, gt, conf, norm)
    assert auc == pytest.approx(
        _animer_auc(pred.tolist(), gt.tolist(), conf.tolist(), mask_area.tolist()), rel=1e-12
    )
    assert metrics.images_without_keypoints(conf) == 1
    per_image = metrics.image_pck(metrics.normalized_errors(pred, gt, conf > 0, norm), taus, conf)
    assert np.isnan(per_image[:, 4]).all() and np.isfinite(np.delete(per_image, 4, axis=1)).all()


def test_pck_no_visible_keypoint():
    pred, gt, vis, norm = _kp_case()
    with pytest.raises(ValueError, match="no image has a visible keypoint"):
        metrics.pck(pred, gt, np.zeros_like(vis), norm)
    assert metrics.images_without_keypoints(np.zeros_like(vis)) == 2


@pytest.mark.parametrize("bad", [0.0, -3.0, np.nan])
def test_pck_bad_normalizer_names_sample(bad):
    pred, gt, vis, _ = _kp_case()
    with pytest.raises(ValueError, match="sample 1.*zero-area mask"):
        metrics.pck(pred, gt, vis, np.array([10.0, bad]))


def test_pck_shape_errors():
    pred, gt, vis, norm = _kp_case()
    with pytest.raises(ValueError, match="visible must have shape"):
        metrics.pck(pred, gt, vis[:, :3], norm)
    with pytest.raises(ValueError, match="one per sample"):
        metrics.pck(pred, gt, vis, norm[:1])
    pred[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="sample 1, keypoint 0"):
        metrics.pck(pred, gt, vis, norm)
