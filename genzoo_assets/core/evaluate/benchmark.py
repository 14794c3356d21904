"""Run predictors over a BenchmarkSet and score them with AniMer's metrics.

A ``predict_fn`` maps a batch (a ``BenchmarkSet`` slice: images, crops, keypoints...) to an
object with ``rotmat`` (B,35,3,3), ``betas`` (B,nb) and ``cam`` (B,3) = (s, tx, ty), the weak
perspective camera in crop coordinates (``x_c = s·X + tx``; crop coordinates are
``(p − crop_center) / crop_height``, the regressor's convention, see ``benchmark_set``).
The regressor's ``RegressorOutput`` qualifies as is; torch tensors or numpy arrays both work.

Two body models: ``body_model`` turns predictions into meshes (the regressor's); ``gt_body_model``
(default: the same) turns the set's GT betas/rotations into the GT meshes — for Animal3D, SMAL's
41-beta model. The GT betas must fit the GT model exactly (no zero-padding).

Per sample and method:
- S-/PA-MPJPE on the 26 Animal3D keypoints (vertex-group means), not the 35 skeleton joints:
  AniMer scores Animal3D on keypoints, and keypoints are defined on the surface for every model.
  The GT keypoints are the GT model's, or the set's ``gt_keypoints_3d`` (Animal3D's JSON) when
  given. Across topologies (a procedural-model regressor on SMAL ground truth) the keypoints still
  correspond by name, so MPJPE is computed; the report names both keypoint sets.
- S-/PA-V2V on all mesh vertices — only when both models share one topology (vertex count and
  faces); otherwise :func:`run_benchmark` refuses, unless ``v2v=False`` (the V2V columns are NaN).
- PCK as AniMer's ``Evaluator.compute_pck``: predicted keypoints projected with the predicted
  camera into the crop, mapped to image pixels; per image the fraction of its visible keypoints
  whose pixel error / sqrt(mask_area) is below τ (``pck@0.10``, ``pck@0.15``). ``pck_crop@0.5`` is
  4D-Humans' crop-unit PCK (pixel error / crop height < 0.5, HMR2's keypoint units): so loose that
  the mean pose scores near 100, and not Animal3D's PCK behind GenZoo's table (ViTPose 97.0,
  HMR* 63.1), whose normaliser we could not establish from the paper; never compare it with
  those. ``auc``: AniMer's
  AUC, the per-image PCK (sqrt(mask area)) integrated over 100 thresholds in [0, 1]. All NaN for an
  image with no visible keypoint; :func:`summarize` averages over the others and counts them.
Translation is irrelevant: every 3D metric aligns it away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.evaluate import metrics
from genzoo_assets.core.evaluate.animal3d import smal_forward
from genzoo_assets.core.evaluate.benchmark_set import BenchmarkSet

PCK_COLUMNS = (
    "pck@0.10",
    "pck@0.15",
    "pck_crop@0.5",
    "auc",
)  # per-image, averaged over images (AniMer)
ERROR_COLUMNS = ("pa_mpjpe", "s_mpjpe", "pa_v2v", "s_v2v")
V2V_COLUMNS = ("pa_v2v", "s_v2v")
METRIC_COLUMNS = ERROR_COLUMNS + PCK_COLUMNS
REPORT_SCALE = 1000.0  # 3D errors in the summary are ×1000 ("mm-like" for metre-scale models)


@dataclass
class Prediction:
    rotmat: np.ndarray  # (B, 35, 3, 3)
    betas: np.ndarray  # (B, nb)
    cam: np.ndarray  # (B, 3) s, tx, ty — weak perspective in crop coordinates


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def as_prediction(out, n: int, method: str) -> Prediction:
    """Validate a predictor's output (attributes or dict keys ``rotmat, betas, cam``) for ``n`` samples."""
    get = (lambda k: out[k]) if isinstance(out, dict) else (lambda k: getattr(out, k))
    try:
        rotmat, betas, cam = (_numpy(get(k)) for k in ("rotmat", "betas", "cam"))
    except (KeyError, AttributeError) as exc:
        raise ValueError(
            f"method {method!r}: prediction lacks {exc} (needs rotmat, betas, cam)"
        ) from exc
    rotmat = (
        rotmat.reshape(rotmat.shape[0], -1, 3, 3)
        if rotmat.ndim in (3, 4) and rotmat.shape[-1] in (3, 9)
        else rotmat
    )
    for key, arr, shape in (("rotmat", rotmat, (n, 35, 3, 3)), ("cam", cam, (n, 3))):
        if arr.shape != shape:
            raise ValueError(f"method {method!r}: {key} has shape {arr.shape}, expected {shape}")
    if betas.ndim != 2 or betas.shape[0] != n:
        raise ValueError(
            f"method {method!r}: betas has shape {betas.shape}, expected ({n}, num_betas)"
        )
    for key, arr in (("rotmat", rotmat), ("betas", betas), ("cam", cam)):
        if not np.isfinite(arr).all():
            raise ValueError(f"method {method!r}: {key} has non-finite values")
    return Prediction(rotmat=rotmat, betas=betas, cam=cam)


def project_weak(points: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Crop coordinates (B, N, 2) of camera-frame points (B, N, 3): ``s·(X, Y) + (tx, ty)``."""
    return cam[:, None, :1] * points[..., :2] + cam[:, None, 1:]


@dataclass
class BenchmarkResult:
    test_set: str
    per_sample: pd.DataFrame  # one row per (sample, method); 3D errors in model units
    summary: pd.DataFrame  # methods × groups; 3D errors ×1000, PCK and AUC in percent
    keypoint_errors: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # (B, 26) px / sqrt(mask area), NaN invisible
    predictions: dict[str, Prediction] = field(default_factory=dict)
    keypoint_sets: dict[str, str] = field(
        default_factory=dict
    )  # {"prediction": ..., "ground_truth": ...}


def same_topology(a, b) -> bool:
    """Same vertex count and the same faces: vertex i means the same surface point on both."""
    fa, fb = np.asarray(a.faces), np.asarray(b.faces)
    return (
        int(a.num_vertices) == int(b.num_vertices)
        and fa.shape == fb.shape
        and bool(np.array_equal(fa, fb))
    )


def _check_models(test_set: BenchmarkSet, body_model, gt_body_model, v2v: bool) -> None:
    nb = test_set.gt_betas.shape[1]
    if nb != int(gt_body_model.num_betas):
        raise InputError(
            f"test set {test_set.name!r} has {nb}-beta ground truth but the GT body model "
            f"{gt_body_model.source!r} has {gt_body_model.num_betas} betas: give the model those betas belong to "
            "(Animal3D: SMAL's 41-beta model)"
        )
    if v2v and not same_topology(body_model, gt_body_model):
        raise InputError(
            f"V2V compares vertex i with vertex i, but the prediction's body model {body_model.source!r} "
            f"({body_model.num_vertices} vertices, {body_model.num_faces} faces) and the GT model "
            f"{gt_body_model.source!r} ({gt_body_model.num_vertices} vertices, {gt_body_model.num_faces} faces) "
            "have different topologies; score keypoints only with v2v=False"
        )


def _score(
    batch: BenchmarkSet, pred: Prediction, gt: tuple[np.ndarray, np.ndarray], body_model, v2v: bool
):
    verts, _, kps = smal_forward(body_model, pred.betas, pred.rotmat)
    gt_verts, gt_kps = gt
    kp_px = batch.crop_to_pixels(project_weak(kps.astype(np.float64), pred.cam))
    err_mask = metrics.normalized_errors(
        kp_px, batch.keypoints_2d, batch.visibility, np.sqrt(batch.mask_area)
    )
    err_crop = metrics.normalized_errors(
        kp_px, batch.keypoints_2d, batch.visibility, batch.crop_size
    )
    at_mask = metrics.image_pck(err_mask, (0.10, 0.15))
    nan = np.full(len(batch), np.nan)
    cols = {
        "pa_mpjpe": metrics.pa_mpjpe(kps, gt_kps),
        "s_mpjpe": metrics.s_mpjpe(kps, gt_kps),
        "pa_v2v": metrics.pa_v2v(verts, gt_verts) if v2v else nan,
        "s_v2v": metrics.s_v2v(verts, gt_verts) if v2v else nan,
        "pck@0.10": at_mask[0],
        "pck@0.15": at_mask[1],
        "pck_crop@0.5": metrics.image_pck(err_crop, (0.5,))[0],
        "auc": metrics.image_auc(err_mask),
        "n_visible": batch.visibility.sum(axis=1),
    }
    return cols, err_mask


def run_benchmark(
    test_set: BenchmarkSet,
    predict_fn: Callable | None,
    body_model,
    baselines: dict[str, Callable] | None = None,
    method_name: str = "model",
    batch_size: int = 64,
    gt_body_model=None,
    v2v: bool = True,
) -> BenchmarkResult:
    """Score ``predict_fn`` (as ``method_name``) and each baseline on every sample of ``test_set``.

    ``predict_fn`` may be None to score baselines only. ``gt_body_model`` (default ``body_model``)
    makes the GT geometry; ``v2v=False`` skips the vertex metrics (needed when the two models'
    topologies differ). Returns per-sample rows (columns ``sample_id, species, family, test_set,
    method, pa_mpjpe, s_mpjpe, pa_v2v, s_v2v, pck@0.10, pck@0.15, pck_crop@0.5, auc, n_visible``) and the
    summary of :func:`summarize`.
    """
    methods = ({method_name: predict_fn} if predict_fn is not None else {}) | dict(baselines or {})
    if not methods:
        raise ValueError("run_benchmark needs a predict_fn or at least one baseline")
    gt_model = body_model if gt_body_model is None else gt_body_model
    _check_models(test_set, body_model, gt_model, v2v)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    errs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    preds: dict[str, list[Prediction]] = {m: [] for m in methods}
    for start in range(0, len(test_set), batch_size):
        batch = test_set.subset(slice(start, start + batch_size))
        gt_verts, _, gt_kps = smal_forward(gt_model, batch.gt_betas, batch.gt_rotmat)
        if batch.gt_keypoints_3d is not None:
            gt_kps = batch.gt_keypoints_3d
        for method, fn in methods.items():
            pred = as_prediction(fn(batch), len(batch), method)
            cols, err = _score(batch, pred, (gt_verts, gt_kps), body_model, v2v)
            meta = {
                "sample_id": batch.sample_ids,
                "species": batch.species,
                "family": batch.family,
                "test_set": [test_set.name] * len(batch),
                "method": [method] * len(batch),
            }
            rows[method].append(pd.DataFrame(meta | cols))
            errs[method].append(err)
            preds[method].append(pred)
    per_sample = pd.concat([df for m in methods for df in rows[m]], ignore_index=True)
    per_sample["n_visible"] = per_sample["n_visible"].astype("int64")
    return BenchmarkResult(
        test_set=test_set.name,
        per_sample=per_sample,
        summary=summarize(per_sample),
        keypoint_errors={m: np.concatenate(errs[m]) for m in methods},
        predictions={
            m: Prediction(
                *(
                    np.concatenate([getattr(p, k) for p in preds[m]])
                    for k in ("rotmat", "betas", "cam")
                )
            )
            for m in methods
        },
        keypoint_sets={
            "prediction": body_model.keypoint_set,
            "ground_truth": "json"
            if test_set.gt_keypoints_3d is not None
            else gt_model.keypoint_set,
        },
    )


def summarize(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Means per method overall, per family and per species.

    Columns ``method, group (overall|family|species), value, n, n_no_visible`` + metrics: 3D errors
    are the mean per-sample error ×1000; PCK and AUC are the mean over the group's images that have
    a visible keypoint, in percent (so PCK equals :func:`metrics.pck` on the group's images, as
    AniMer's evaluator averages them); ``n_no_visible`` counts the images left out.
    """
    parts = []
    df = per_sample.assign(overall="all")
    methods = list(dict.fromkeys(per_sample["method"]))  # run order, so the model leads
    for group, method in ((g, m) for g in ("overall", "family", "species") for m in methods):
        for value, g in df[df["method"] == method].groupby(group, sort=True):
            scored = g["n_visible"].to_numpy() > 0
            row = {
                "method": method,
                "group": group,
                "value": value,
                "n": len(g),
                "n_no_visible": int((~scored).sum()),
            }
            row |= {c: float(g[c].mean()) * REPORT_SCALE for c in ERROR_COLUMNS}
            for c in PCK_COLUMNS:
                row[c] = 100.0 * float(g[c].to_numpy()[scored].mean()) if scored.any() else np.nan
            parts.append(row)
    return pd.DataFrame(
        parts, columns=["method", "group", "value", "n", "n_no_visible", *METRIC_COLUMNS]
    )


def mean_rotation(rotmats: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of rotations (..., N, 3, 3) over axis −3: the arithmetic mean, SVD-orthogonalised."""
    m = np.asarray(rotmats, dtype=np.float64).mean(axis=-3)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return u @ vt


def fit_weak_camera(
    points_2d_n: np.ndarray, model_points: np.ndarray, visible: np.ndarray
) -> np.ndarray:
    """Least-squares (s, tx, ty) per sample so that ``s·X_xy + t ≈ x_n`` over visible points.

    Samples with fewer than two visible points get the camera that centres the model and fits
    its extent into 80 % of the crop height.
    """
    w = visible.astype(np.float64)
    nv = w.sum(axis=1, keepdims=True)
    x = np.broadcast_to(model_points[..., :2], points_2d_n.shape)
    xm = (w[..., None] * x).sum(1) / np.maximum(nv, 1)
    ym = (w[..., None] * points_2d_n).sum(1) / np.maximum(nv, 1)
    xc, yc = x - xm[:, None], points_2d_n - ym[:, None]
    s = (w * (xc * yc).sum(-1)).sum(1) / np.maximum((w * (xc**2).sum(-1)).sum(1), 1e-12)
    extent = np.ptp(x, axis=1).max(axis=1)
    fallback = nv[:, 0] < 2
    s = np.where(fallback, 0.8 / np.maximum(extent, 1e-12), s)
    t = np.where(fallback[:, None], -s[:, None] * x.mean(axis=1), ym - s[:, None] * xm)
    return np.concatenate([s[:, None], t], axis=1)


def mean_pose_baseline(
    train_poses_rotmat, train_betas, body_model
) -> Callable[[BenchmarkSet], Prediction]:
    """A predict_fn answering the training set's mean pose and mean betas for every image.

    The pose is the per-joint rotation mean (SVD-orthogonalised arithmetic mean, global
    orientation included); the camera is fitted per sample to the GT 2D keypoints (an oracle
    camera: it flatters the baseline's PCK, while the aligned 3D metrics ignore the camera).
    """
    poses = np.asarray(train_poses_rotmat, dtype=np.float64)
    poses = poses.reshape(poses.shape[0], -1, 3, 3)
    if poses.shape[1:] != (35, 3, 3) or poses.shape[0] == 0:
        raise ValueError(
            f"train_poses_rotmat must be (N, 35, 3, 3) or (N, 35, 9), got {np.shape(train_poses_rotmat)}"
        )
    rot = mean_rotation(poses.transpose(1, 0, 2, 3)[None])[0]
    betas = np.asarray(train_betas, dtype=np.float64).mean(axis=0)
    _, _, kps = smal_forward(body_model, betas[None], rot[None])

    def predict(batch: BenchmarkSet) -> Prediction:
        n = len(batch)
        cam = fit_weak_camera(
            batch.pixels_to_crop(batch.keypoints_2d), kps.astype(np.float64), batch.visibility
        )
        return Prediction(
            rotmat=np.broadcast_to(rot, (n, 35, 3, 3)).copy(),
            betas=np.broadcast_to(betas, (n, betas.size)).copy(),
            cam=cam,
        )

    return predict
