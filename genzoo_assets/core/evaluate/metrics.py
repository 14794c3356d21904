"""Pose/shape accuracy metrics as AniMer defines them (the de-facto Animal3D evaluation code).

All functions take numpy arrays, are vectorised over the batch and return errors in the input's
units (reports multiply 3D errors by 1000 for the usual "mm-like" numbers).

- PCK: a keypoint is correct when ``‖p̂ − p‖ / n < τ``; ``n`` is a per-sample normaliser
  (``sqrt(mask area)`` for Animal3D, or a crop / bbox size).
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
        raise ValueError(f"pred collapses to a single point in sample(s) {bad[:10].tolist()}: no scale fits")
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
        raise ValueError(f"pred collapses to a single point in sample(s) {bad[:10].tolist()}: no similarity fits")
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
        raise ValueError(f"normalizer must have shape ({g.shape[0]},) (one per sample), got {norm.shape}")
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


def pck(pred_2d, gt_2d, visible, normalizer, thresholds=PCK_THRESHOLDS) -> np.ndarray:
    """Percentage of correct keypoints, one value per threshold (in ``thresholds``' order).

    ``PCK@τ = #{visible (b, k) : ‖p̂_bk − p_bk‖ / n_b < τ} / #{visible (b, k)}``, pooled over all
    visible keypoints of the batch (so a sample with more visible keypoints weighs more).

    pred_2d, gt_2d: (B, K, 2) pixels (a third column on gt is ignored); visible: (B, K) bool;
    normalizer: (B,) per sample, e.g. ``sqrt(mask_area)`` or the bbox size, in the same pixels.
    """
    hits = pck_hits(pred_2d, gt_2d, visible, normalizer, thresholds)
    n_vis = int(np.asarray(visible).astype(bool).sum())
    if n_vis == 0:
        raise ValueError("PCK is undefined: no keypoint is visible in the whole batch")
    return hits.reshape(hits.shape[0], -1).sum(axis=1) / n_vis
