"""Each scored sample's sampling factors, binned: what the error model explains the error by.

From catalog ``samples`` rows (and the metric rows' ``species``/``family``):

- ``species``, ``family``; ``posture``; ``yaw_bin``, ``pitch_bin`` (the bins of
  :mod:`genzoo_assets.core.sampling.planned`, read off the posed body: what the regressor saw);
- ``shape_bin``: tertile of ‖betas‖ among the rows (how far the shape is from the mean shape);
- ``truncation_bin``: share of the 26 projected keypoints outside the image (none, some, many);
- ``visibility_bin``: share of keypoints visible (low < 0.5 ≤ mid < 0.8 ≤ high).

A column the catalog lacks (a stage not run) gives the level ``"unknown"`` for every row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genzoo_assets.core.sampling.planned import PITCH_BINS, YAW_BINS, pitch_bin, yaw_bin

FACTORS = (
    "species",
    "family",
    "posture",
    "yaw_bin",
    "pitch_bin",
    "shape_bin",
    "truncation_bin",
    "visibility_bin",
)
UNKNOWN = "unknown"


def _rows_of(column: pd.Series, width: int | None = None) -> np.ndarray | None:
    """A list column as a (N, width) float array; None when any row is missing."""
    if column.isna().any():
        return None
    arr = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in column])
    return arr if width is None or arr.shape[1] == width else None


def _shape_bins(betas: pd.Series) -> np.ndarray:
    arr = _rows_of(betas)
    if arr is None or len(arr) == 0:
        return np.full(len(betas), UNKNOWN, dtype=object)
    norm = np.linalg.norm(arr, axis=1)
    lo, hi = np.quantile(norm, [1 / 3, 2 / 3])
    return np.where(norm <= lo, "near_mean", np.where(norm <= hi, "mid", "far"))


def _truncation_bins(kp2d: pd.Series, resolution: pd.Series) -> np.ndarray:
    arr = _rows_of(kp2d)
    if arr is None or resolution.isna().any():
        return np.full(len(kp2d), UNKNOWN, dtype=object)
    xy = arr.reshape(len(arr), -1, 2)
    res = resolution.to_numpy(dtype=np.float64)[:, None]
    outside = ((xy < 0) | (xy >= res[..., None])).any(axis=2).mean(axis=1)
    return np.where(outside == 0, "none", np.where(outside < 0.2, "some", "many"))


def _visibility_bins(vis: pd.Series) -> np.ndarray:
    arr = _rows_of(vis)
    if arr is None:
        return np.full(len(vis), UNKNOWN, dtype=object)
    share = arr.mean(axis=1)
    return np.where(share < 0.5, "low", np.where(share < 0.8, "mid", "high"))


def sample_factors(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: ``sample_id`` and the :data:`FACTORS` as strings."""
    if "sample_id" not in rows.columns:
        raise ValueError(f"factor rows need a 'sample_id' column, got {sorted(rows.columns)}")

    def col(name):
        return rows[name] if name in rows.columns else pd.Series([None] * len(rows), rows.index)

    def level(name):
        return col(name).astype(object).where(col(name).notna(), UNKNOWN).astype(str).to_numpy()

    yaw, pitch = col("yaw_deg"), col("pitch_deg")
    out = pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype(str).to_numpy(),
            "species": level("species"),
            "family": level("family"),
            "posture": level("posture"),
            "yaw_bin": np.where(yaw.notna(), np.take(YAW_BINS, yaw_bin(yaw.fillna(0.0))), UNKNOWN),
            "pitch_bin": np.where(
                pitch.notna(), np.take(PITCH_BINS, pitch_bin(pitch.fillna(0.0))), UNKNOWN
            ),
            "shape_bin": _shape_bins(col("betas")),
            "truncation_bin": _truncation_bins(col("keypoints_2d"), col("render_resolution")),
            "visibility_bin": _visibility_bins(col("keypoints_vis")),
        }
    )
    return out.astype({f: str for f in FACTORS})
