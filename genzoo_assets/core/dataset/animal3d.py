"""Export in the Animal3D release layout, which AniMer trains on (its CtrlAni3D synthetic set is one).

``OUT/train.json`` (top-level ``data`` list, one item per sample), ``OUT/images/<split>/<id>.jpg`` and
``OUT/masks/<split>/<id>.png``; paths in the JSON are relative to ``OUT`` (AniMer's ``ROOT_IMAGE``).
Per item: ``img_path, mask_path, supercategory, keypoint_2d`` (26×3: x, y px and visibility 0/1),
``keypoint_3d`` (26×3, camera frame, m), ``bbox`` ([x, y, w, h] px of the silhouette), ``pose``
(105: 35 axis-angle rotations, the global orientation first, camera frame), ``shape`` (betas 0–19),
``shape_extra`` (betas 20–40), ``trans`` (3, m), plus ``sample_id``, ``species`` and ``split``, which
AniMer ignores. SMAL's body model posed by ``pose``, ``shape + shape_extra`` and ``trans`` gives the
camera-frame body whose projection is ``keypoint_2d``.

``supercategory``: AniMer reads it as an int32 and uses it as the contrastive-loss label (and, for
items without ground-truth shape, which never happens here, as an index into SMAL's five shape
prior clusters). We number the families in alphabetical order; the top-level ``categories`` list
names them.

Only SMAL's own shape space fits these fields: the dataset must be made with a 41-beta SMAL model
(3889 vertices); anything else is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo_assets.core.dataset.common import (
    ExportProgress,
    as_body_model,
    catalog_samples,
    fresh_output,
)
from genzoo_assets.core.dataset.records import image_jpeg
from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import stored_path

SMAL_NUM_BETAS, SMAL_NUM_VERTICES = 41, 3889
JSON_NAME = "train.json"


def _check_body_model(body_model) -> None:
    nb, nv = int(body_model.num_betas), int(body_model.num_vertices)
    if nb != SMAL_NUM_BETAS or nv != SMAL_NUM_VERTICES:
        raise InputError(
            f"body model {body_model.source!r} has {nb} betas and {nv} vertices; the Animal3D layout "
            f"holds SMAL's {SMAL_NUM_BETAS} betas on its {SMAL_NUM_VERTICES} vertices: make the dataset "
            f"with a 41-beta SMAL model (GENZOO_BODY_MODEL)"
        )


def _floats(row, column: str, size: int) -> list[float]:
    values = np.asarray(row[column], dtype=np.float64).reshape(-1)
    if values.size != size:
        raise ValueError(
            f"sample {row['sample_id']}: column {column!r} has {values.size} values, expected {size}"
        )
    return [float(v) for v in values]


def animal3d_item(row, category: int, data_dir: Path, out: Path) -> dict:
    """One ``data`` item; writes the sample's image and mask under ``out``."""
    sid, split = str(row["sample_id"]), str(row["split"])
    betas = _floats(row, "betas", SMAL_NUM_BETAS)
    mask_src = stored_path(data_dir, row["mask_path"], sid, "mask_path")
    if not mask_src.is_file():
        raise MissingInputError(f"sample {sid}: mask {mask_src} does not exist")
    img_rel, mask_rel = f"images/{split}/{sid}.jpg", f"masks/{split}/{sid}.png"
    (out / img_rel).parent.mkdir(parents=True, exist_ok=True)
    (out / mask_rel).parent.mkdir(parents=True, exist_ok=True)
    (out / img_rel).write_bytes(image_jpeg(data_dir, row)[0])
    (out / mask_rel).write_bytes(mask_src.read_bytes())
    kp2 = np.asarray(_floats(row, "keypoints_2d", 52)).reshape(26, 2)
    vis = np.asarray(row["keypoints_vis"], dtype=np.float64).reshape(-1)
    return {
        "img_path": img_rel,
        "mask_path": mask_rel,
        "supercategory": int(category),
        "keypoint_2d": np.concatenate([kp2, vis[:, None]], 1).tolist(),
        "keypoint_3d": np.asarray(_floats(row, "keypoints_3d", 78)).reshape(26, 3).tolist(),
        "bbox": _floats(row, "bbox", 4),
        "pose": _floats(row, "global_orient", 3) + _floats(row, "body_pose", 102),
        "shape": betas[:20],
        "shape_extra": betas[20:],
        "trans": _floats(row, "transl", 3),
        "sample_id": sid,
        "species": str(row["species"]),
        "split": split,
    }


def export_animal3d(
    data_dir,
    out_dir,
    body_model,
    samples: pd.DataFrame | None = None,
    progress: ExportProgress | None = None,
    **split_options,
) -> dict:
    """Write the Animal3D-layout export of the catalog (or ``samples``) into the new folder ``out_dir``.

    ``body_model``: the model the dataset was made with (a ``BodyModel`` or a spec for
    :func:`as_body_model`); ``split_options`` go to :func:`catalog_samples`; ``progress`` is called
    after each sample's files (no shards). Returns ``{"json", "count", "categories"}``.
    """
    body_model = as_body_model(body_model)
    _check_body_model(body_model)
    data_dir = Path(data_dir)
    with fresh_output(out_dir) as tmp:
        rows = catalog_samples(data_dir, samples, **split_options)
        data, categories = _items(rows, body_model, data_dir, tmp, progress)
        doc = {
            "info": {
                "description": "GenZoo-style synthetic animals (genzoo-assets)",
                "num_betas": SMAL_NUM_BETAS,
                "body_model": {"source": str(body_model.source), "sha256": body_model.sha256},
            },
            "categories": [{"id": i, "name": n} for n, i in categories.items()],
            "data": data,
        }
        (tmp / JSON_NAME).write_text(json.dumps(doc))
    return {"json": str(Path(out_dir) / JSON_NAME), "count": len(data), "categories": categories}


def _items(
    rows: pd.DataFrame,
    body_model,
    data_dir: Path,
    out: Path,
    progress: ExportProgress | None = None,
) -> tuple[list[dict], dict[str, int]]:
    """Every row's ``data`` item (files written under ``out``) and the family → supercategory ids."""
    wrong = [
        (sid, np.size(b))
        for sid, b in zip(rows["sample_id"], rows["betas"])
        if np.size(b) != SMAL_NUM_BETAS
    ]
    if wrong:
        raise InputError(
            f"sample {wrong[0][0]} has {wrong[0][1]} betas: the dataset was not made with the 41-beta "
            f"SMAL model {body_model.source!r}"
        )
    families = (
        rows["family"].fillna("unknown").astype(str)
        if "family" in rows.columns
        else pd.Series("unknown", index=rows.index)
    )
    categories = {name: i for i, name in enumerate(sorted(set(families)))}
    items = []
    for i, row in rows.iterrows():
        items.append(animal3d_item(row, categories[families.loc[i]], data_dir, out))
        if progress is not None:
            progress(len(items), len(rows), 0, 0)
    return items, categories
