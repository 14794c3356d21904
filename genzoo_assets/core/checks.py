"""Data checks: each recomputes what a stage stored along another path and says whether it holds.

The Dagster layer turns a :class:`CheckOutcome` into an asset check result; the functions here
know nothing of Dagster. Each check reads the stored rows (what downstream stages and the export
see), so it fails on a real defect: a projection in the wrong pixel frame, a sampler that leaks
past its bound, an image stored at another size than its labels, a model that silently fell back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo_assets.core.errors import InputError

MAX_LISTED = 20  # sample ids named in a check's metadata
REPROJECTION_TOL_PX = 0.5


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    metadata: dict = field(default_factory=dict)  # JSON-able values only (numbers, strings, lists)


def _ids(sample_ids: Iterable, mask: Iterable[bool]) -> list[str]:
    return [str(s) for s, bad in zip(sample_ids, mask) if bad][:MAX_LISTED]


def betas_within_bound(sample_ids: Iterable[str], betas: Iterable, bound: float) -> CheckOutcome:
    """Every stored beta is finite and ``|β| ≤ bound``, the bound the shape sampler enforces
    (``ShapeSampler.beta_limit``: the prior clips to it, clip_flow redraws above it)."""
    sample_ids = list(sample_ids)
    rows = [np.asarray(b, dtype=np.float64).reshape(-1) for b in betas]
    worst = np.array(
        [np.nanmax(np.abs(r), initial=0.0) if np.isfinite(r).any() else math.inf for r in rows]
    )
    bad = [not np.isfinite(r).all() or w > bound for r, w in zip(rows, worst)]
    return CheckOutcome(
        not any(bad),
        {
            "bound": float(bound),
            "abs_max": float(worst.max(initial=0.0)),
            "failing": int(sum(bad)),
            "failing_ids": _ids(sample_ids, bad),
        },
    )


def keypoint_reprojection(
    rows: pd.DataFrame, body_model, tol_px: float = REPROJECTION_TOL_PX, batch_size: int = 64
) -> CheckOutcome:
    """Stored 2D keypoints re-project from the stored parameters and camera within ``tol_px``.

    ``rows``: shape_params ⋈ pose_params ⋈ control_renders. The body model is re-run from the
    stored ``betas``, ``global_orient``, ``body_pose`` and ``transl`` and its keypoints (B, 26, 3)
    projected with the stored camera rebuilt at ``render_resolution``; the error is the largest
    pixel distance to the stored ``keypoints_2d`` (26×2). It fails on labels in another pixel frame
    than the renders, on a different body model, or on parameters changed after rendering.
    """
    import torch

    from genzoo_assets.core.render.partition import camera_from_row
    from genzoo_assets.core.sampling.camera_model import project

    nj, nk = body_model.num_joints, len(body_model.keypoint_names)

    def column(batch: pd.DataFrame, key: str, n: int) -> np.ndarray:
        return np.stack([np.asarray(v, dtype=np.float64).reshape(n) for v in batch[key]])

    errors = []
    for start in range(0, len(rows), batch_size):
        batch = rows.iloc[start : start + batch_size]
        with torch.no_grad():
            out = body_model(
                column(batch, "betas", body_model.num_betas),
                column(batch, "global_orient", 3),
                column(batch, "body_pose", 3 * (nj - 1)),
                column(batch, "transl", 3),
            )
        kp3 = out.keypoints.detach().cpu().double().numpy()
        stored = column(batch, "keypoints_2d", 2 * nk).reshape(-1, nk, 2)
        for b, (_, row) in enumerate(batch.iterrows()):
            camera = camera_from_row(row, int(row["render_resolution"]))
            err = np.linalg.norm(project(kp3[b], camera) - stored[b], axis=-1).max()
            errors.append(float(err) if np.isfinite(err) else math.inf)
    errors = np.asarray(errors)
    bad = errors > tol_px
    return CheckOutcome(
        not bad.any(),
        {
            "max_error_px": float(errors.max(initial=0.0)),
            "tolerance_px": float(tol_px),
            "failing": int(bad.sum()),
            "failing_ids": _ids(rows["sample_id"], bad),
        },
    )


def image_resolution(
    images: pd.DataFrame, expected: Mapping[str, int], data_dir: str | Path
) -> CheckOutcome:
    """Each stored image (``image_path``) is ``expected[sample_id]`` pixels square: the control
    render's resolution, the frame its keypoints and bbox are in. Reads only the file headers."""
    from PIL import Image

    root = Path(data_dir)
    sizes, bad = [], []
    for sid, rel in zip(images["sample_id"], images["image_path"]):
        try:
            with Image.open(root / str(rel)) as im:
                size = im.size
        except OSError:
            size = None
        want = int(expected[sid])
        sizes.append(list(size) if size else None)
        bad.append(size != (want, want))
    return CheckOutcome(
        not any(bad),
        {
            "expected_px": sorted({int(v) for v in expected.values()}),
            "failing": int(sum(bad)),
            "failing_ids": _ids(images["sample_id"], bad),
            "failing_sizes": [s for s, b in zip(sizes, bad) if b][:MAX_LISTED],
        },
    )


def fallback_rate(
    sample_ids: Iterable[str], fell_back: Iterable[bool], ceiling: float
) -> CheckOutcome:
    """The share of samples made by a fallback backend is at most ``ceiling``."""
    sample_ids, fell_back = list(sample_ids), [bool(f) for f in fell_back]
    rate = sum(fell_back) / len(fell_back) if fell_back else 0.0
    return CheckOutcome(
        rate <= ceiling,
        {
            "fallback_rate": float(rate),
            "ceiling": float(ceiling),
            "fallbacks": int(sum(fell_back)),
            "fallback_ids": _ids(sample_ids, fell_back),
        },
    )


def backend_counts(backends: Iterable[str]) -> dict[str, int]:
    """Samples per backend that actually produced them, most frequent first."""
    return {
        str(k): int(v) for k, v in pd.Series(list(backends), dtype=object).value_counts().items()
    }


class SampleIdMismatchError(InputError):
    """Upstream tables of one partition hold different sample ids."""


def require_same_sample_ids(tables: Mapping[str, Iterable[str]], where: str) -> None:
    """Raise :class:`SampleIdMismatchError` unless every table holds the same set of sample ids.

    A join would silently drop the samples missing from one table; this names the table and them.
    """
    sets = {name: set(map(str, ids)) for name, ids in tables.items()}
    union = set().union(*sets.values())
    gaps = {name: sorted(union - ids) for name, ids in sets.items() if ids != union}
    if gaps:
        detail = "; ".join(
            f"{name} lacks {len(m)} ({', '.join(m[:5])}{', ...' if len(m) > 5 else ''})"
            for name, m in gaps.items()
        )
        raise SampleIdMismatchError(
            f"{where}: upstream tables disagree on sample ids: {detail}; "
            f"rematerialise the stage(s) named"
        )
