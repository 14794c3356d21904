"""Pose/shape accuracy metrics as AniMer defines them (the de-facto Animal3D evaluation code).

All functions take numpy arrays, are vectorised over the batch and return errors in the input's
units (reports multiply 3D errors by 1000 for the usual "mm-like" numbers).

- PCK (AniMer's ``Evaluator.compute_pck``): a keypoint is correct when ``‖p̂ − p‖ / n < τ``; ``n``
  is a per-image normaliser (``sqrt(mask area)`` for Animal3D, or a crop / bbox size). Each image
  scores the confidence-weighted fraction of its visible keypoints that are correct; PCK is the
  mean over images (images without a visible keypoint are left out). AUC: that PCK integrated over
  100 thresholds in [0, 1] (``compute_auc``).
- S-MPJPE / S-V2V: centre both point sets, ``X̂c = X̂ − mean(X̂)``, ``Xc = X − mean(X)``; scale
  ``s = ⟨Xc, X̂c⟩ / ‖X̂c‖²`` (least squares); error ``mean_i ‖s·X̂c_i + mean(X) − X_i‖``.
- PA-MPJPE / PA-V2V: similarity Procrustes (rotation, isotropic scale, translation) of the
  prediction onto the ground truth, reflections excluded, then the mean point error. (AniMer
  root-aligns first; Procrustes solves the translation, so that step changes nothing.)

MPJPE and V2V are the same computation, named after what is compared: the 26 keypoints (or 35
joints) for MPJPE, the mesh vertices for V2V.
"""

from __future__ import annotations

import numpy as np

PCK_THRESHOLDS = (0.10, 0.15, 0.5)


def _points(name: str, a) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (B, N, 3), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.unique(np.nonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} has non-finite values in sample(s) {bad[:10].tolist()}")
    return arr


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = _points("pred", pred), _points("gt", gt)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _mean_error(aligned: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(aligned - gt, axis=-1).mean(axis=1)


def scale_align(pred, gt) -> np.ndarray:
    """``s·(X̂ − mean X̂) + mean X`` with the least-squares scale ``s = ⟨Xc, X̂c⟩ / ‖X̂c‖²``."""
    p, g = _pair(pred, gt)
    pc = p - p.mean(axis=1, keepdims=True)
    gm = g.mean(axis=1, keepdims=True)
    denom = np.einsum("bnk,bnk->b", pc, pc)
    if (denom <= 0).any():
        bad = np.nonzero(denom <= 0)[0]
        raise ValueError(
            f"pred collapses to a single point in sample(s) {bad[:10].tolist()}: no scale fits"
        )
    s = np.einsum("bnk,bnk->b", g - gm, pc) / denom
    return s[:, None, None] * pc + gm


def procrustes_align(pred, gt) -> np.ndarray:
    """Similarity Procrustes of ``pred`` onto ``gt``: ``s·R·X̂ + t`` minimising the squared error.

    With centred ``X̂c, Xc`` (N×3) and ``K = X̂cᵀ Xc = U Σ Vᵀ``: ``R = V D Uᵀ`` where
    ``D = diag(1, 1, sign det(V Uᵀ))`` keeps R a proper rotation (no mirror image),
    ``s = tr(R K) / ‖X̂c‖²`` and ``t = mean X − s·R·mean X̂``.
    """
    p, g = _pair(pred, gt)
    pm, gm = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    pc, gc = p - pm, g - gm
    var = np.einsum("bnk,bnk->b", pc, pc)
    if (var <= 0).any():
        bad = np.nonzero(var <= 0)[0]
        raise ValueError(
            f"pred collapses to a single point in sample(s) {bad[:10].tolist()}: no similarity fits"
        )
    k = np.einsum("bni,bnj->bij", pc, gc)
    u, _, vt = np.linalg.svd(k)
    v = np.swapaxes(vt, 1, 2)
    d = np.ones((p.shape[0], 3))
    d[:, 2] = np.sign(np.linalg.det(v @ np.swapaxes(u, 1, 2)))
    d[d == 0] = 1.0
    r = (v * d[:, None, :]) @ np.swapaxes(u, 1, 2)
    s = np.einsum("bii->b", r @ k) / var
    return s[:, None, None] * np.einsum("bij,bnj->bni", r, pc) + gm


def s_mpjpe(pred, gt) -> np.ndarray:
    """Per-sample scale-aligned mean joint/keypoint error (B,), input units. See module doc."""
    return _mean_error(scale_align(pred, gt), np.asarray(gt, dtype=np.float64))


def pa_mpjpe(pred, gt) -> np.ndarray:
    """Per-sample Procrustes-aligned mean joint/keypoint error (B,), input units."""
    return _mean_error(procrustes_align(pred, gt), np.asarray(gt, dtype=np.float64))


def s_v2v(pred, gt) -> np.ndarray:
    """Per-sample scale-aligned mean vertex-to-vertex error (B,) over the mesh vertices (B, V, 3)."""
    return s_mpjpe(pred, gt)


def pa_v2v(pred, gt) -> np.ndarray:
    """Per-sample Procrustes-aligned mean vertex-to-vertex error (B,) over the mesh vertices."""
    return pa_mpjpe(pred, gt)


def _pck_inputs(pred_2d, gt_2d, visible, normalizer):
    p = np.asarray(pred_2d, dtype=np.float64)
    g = np.asarray(gt_2d, dtype=np.float64)
    if g.ndim != 3 or g.shape[-1] not in (2, 3):
        raise ValueError(f"gt_2d must have shape (B, K, 2), got {g.shape}")
    g = g[..., :2]
    if p.ndim != 3 or p.shape[-1] not in (2, 3) or p.shape[:2] != g.shape[:2]:
        raise ValueError(f"pred_2d must have shape {g.shape[:2] + (2,)}, got {p.shape}")
    p = p[..., :2]
    vis = np.asarray(visible)
    if vis.shape != g.shape[:2]:
        raise ValueError(f"visible must have shape {g.shape[:2]}, got {vis.shape}")
    vis = vis.astype(bool)
    norm = np.asarray(normalizer, dtype=np.float64)
    if norm.ndim == 0:
        norm = np.full(g.shape[0], float(norm))
    if norm.shape != (g.shape[0],):
        raise ValueError(
            f"normalizer must have shape ({g.shape[0]},) (one per sample), got {norm.shape}"
        )
    bad = ~(np.isfinite(norm) & (norm > 0))
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(
            f"normalizer of sample {i} is {float(norm[i])}: it must be a positive finite number "
            "(a zero-area mask or an empty bbox cannot normalise PCK)"
        )
    for name, arr in (("pred_2d", p), ("gt_2d", g)):
        nonfinite = vis & ~np.isfinite(arr).all(axis=-1)
        if nonfinite.any():
            b, k = (int(x) for x in np.argwhere(nonfinite)[0])
            raise ValueError(f"{name} has a non-finite visible keypoint: sample {b}, keypoint {k}")
    return p, g, vis, norm


def normalized_errors(pred_2d, gt_2d, visible, normalizer) -> np.ndarray:
    """``‖p̂ − p‖ / n`` per keypoint (B, K); NaN where the keypoint is not visible."""
    p, g, vis, norm = _pck_inputs(pred_2d, gt_2d, visible, normalizer)
    with np.errstate(invalid="ignore"):
        err = np.linalg.norm(p - g, axis=-1) / norm[:, None]
    return np.where(vis, err, np.nan)


def pck_hits(pred_2d, gt_2d, visible, normalizer, thresholds=PCK_THRESHOLDS) -> np.ndarray:
    """Per-keypoint correctness (T, B, K) bool: ``vis ∧ ‖p̂ − p‖ / n < τ`` for each threshold τ.

    Invisible keypoints are False; use ``visible`` to tell them from misses.
    """
    taus = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    err = normalized_errors(pred_2d, gt_2d, visible, normalizer)
    with np.errstate(invalid="ignore"):
        return err[None] < taus[:, None, None]


def image_pck(errors, thresholds=PCK_THRESHOLDS, weights=None) -> np.ndarray:
    """Per-image PCK (T, B) from normalised keypoint errors (B, K) (NaN = not visible).

    ``Σ_k hit_k·c_k / Σ_k c_k`` with ``c`` the keypoint confidences (``weights``; default 1 where the
    error is finite), as AniMer's ``Evaluator.compute_pck`` weighs by the visibility column. An image
    with ``Σ c = 0`` (no visible keypoint) is NaN: excluded, never a division by zero.
    """
    err = np.asarray(errors, dtype=np.float64)
    if err.ndim != 2:
        raise ValueError(f"errors must have shape (B, K), got {err.shape}")
    conf = (
        np.isfinite(err).astype(np.float64)
        if weights is None
        else np.asarray(weights, dtype=np.float64)
    )
    if conf.shape != err.shape:
        raise ValueError(f"weights must have shape {err.shape}, got {conf.shape}")
    if not (np.isfinite(conf).all() and (conf >= 0).all()):
        raise ValueError("keypoint confidences must be finite and non-negative")
    if (~np.isfinite(err) & (conf > 0)).any():
        b, k = (int(x) for x in np.argwhere(~np.isfinite(err) & (conf > 0))[0])
        raise ValueError(f"keypoint {k} of image {b} has a positive confidence but no finite error")
    taus = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        hits = (err[None] < taus[:, None, None]).astype(np.float64)
    total = conf.sum(axis=1)
    num = (hits * conf[None]).sum(axis=2)
    return np.divide(num, total[None], out=np.full(num.shape, np.nan), where=total[None] > 0)


def _mean_over_images(per_image: np.ndarray) -> np.ndarray:
    scored = np.isfinite(per_image[0])
    if not scored.any():
        raise ValueError("PCK is undefined: no image has a visible keypoint")
    return per_image[:, scored].mean(axis=1)


def pck(pred_2d, gt_2d, visible, normalizer, thresholds=PCK_THRESHOLDS) -> np.ndarray:
    """Percentage of correct keypoints as AniMer's ``Evaluator.compute_pck``, one value per threshold.

    Per image ``b``: ``PCK_b@τ = Σ_k c_bk·[‖p̂_bk − p_bk‖ / n_b < τ] / Σ_k c_bk``; then the mean over
    images. ``c`` is ``visible`` (bool, or AniMer's confidence column as non-negative weights).
    Images with no visible keypoint are excluded (:func:`images_without_keypoints` counts them).

    pred_2d, gt_2d: (B, K, 2) pixels (a third column is ignored); visible: (B, K);
    normalizer: (B,) per image, e.g. ``sqrt(mask_area)`` (AniMer) or the crop size, same pixels.
    """
    conf = np.asarray(visible, dtype=np.float64)
    err = normalized_errors(pred_2d, gt_2d, conf > 0, normalizer)
    return _mean_over_images(image_pck(err, thresholds, conf))


AUC_THRESHOLDS = np.linspace(0.0, 1.0, 100)  # AniMer's compute_auc: np.linspace(0, 1, steps=100)


def image_auc(errors, thresholds=AUC_THRESHOLDS, weights=None) -> np.ndarray:
    """Per-image AUC (B,): :func:`image_pck` integrated over ``thresholds`` (trapezoid rule) and
    divided by their span; NaN for an image with no visible keypoint."""
    taus = np.asarray(thresholds, dtype=np.float64)
    curve = image_pck(errors, taus, weights)
    return np.trapezoid(curve, taus, axis=0) / np.trapezoid(np.ones_like(taus), taus)


def pck_auc(pred_2d, gt_2d, visible, normalizer, thresholds=AUC_THRESHOLDS) -> float:
    """AniMer's AUC (``Evaluator.compute_auc``): :func:`pck` integrated over ``thresholds`` (100 in
    [0, 1]) by the trapezoid rule, divided by their span. The integral is linear, so this is also
    the mean of the per-image :func:`image_auc` over the images with a visible keypoint."""
    conf = np.asarray(visible, dtype=np.float64)
    err = normalized_errors(pred_2d, gt_2d, conf > 0, normalizer)
    return float(_mean_over_images(image_auc(err, thresholds, conf)[None])[0])


def images_without_keypoints(visible) -> int:
    """How many images have no visible keypoint (excluded from :func:`pck` and :func:`pck_auc`)."""
    return int((np.asarray(visible, dtype=np.float64).sum(axis=1) <= 0).sum())
