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
    # normalised errors of the 7 visible points: .05 .12 .3 .9 | 0 .2 .6
    np.testing.assert_allclose(metrics.pck(pred, gt, vis, norm, (0.5, 0.10, 0.15)), [5 / 7, 2 / 7, 3 / 7])
    hits = metrics.pck_hits(pred, gt, vis, norm, (0.10, 0.15))
    assert hits.shape == (2, 2, 4)
    assert not hits[:, 1, 3].any()  # invisible keypoint with zero error is never a hit
    assert hits[0, 0].tolist() == [True, False, False, False]


def test_pck_no_visible_keypoint():
    pred, gt, vis, norm = _kp_case()
    with pytest.raises(ValueError, match="no keypoint is visible"):
        metrics.pck(pred, gt, np.zeros_like(vis), norm)


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
