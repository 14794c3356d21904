"""Export as a Hugging Face dataset: Parquet shards with ``Image`` columns and a dataset card.

``OUT/data/<split>-NNNNN-of-MMMMM.parquet`` per split (``train``, ``validation``, ``test`` = our
``train``, ``val``, ``heldout``) and ``OUT/README.md``, whose YAML front matter names the data files
per split (``configs``), the features, the split sizes, the body model and a ``license:`` for the
user to fill in; its body has the counts per species and split and a provenance summary.

Written with pyarrow alone (``datasets`` is not needed to export): each file's schema carries the
``huggingface`` metadata key with the features (``datasets`` ≥ 4 format), so
``datasets.load_dataset("parquet", data_dir=OUT)`` decodes the image columns as images; the card
lets ``load_dataset(OUT)`` and the Hub find the splits.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from genzoo_assets.core.dataset.common import (
    ExportProgress,
    as_body_model,
    catalog_samples,
    fresh_output,
)
from genzoo_assets.core.dataset.records import image_jpeg
from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import stored_path

HF_SPLITS = {"train": "train", "val": "validation", "heldout": "test"}
# (column, kind, shape): kind "float" lists are fixed-size float32, shape () a scalar.
GROUND_TRUTH = (
    ("betas", "float", None),
    ("global_orient", "float", (3,)),
    ("body_pose", "float", (34, 3)),
    ("transl", "float", (3,)),
    ("keypoints_2d", "float", (26, 2)),
    ("keypoints_vis", "bool", (26,)),
    ("keypoints_3d", "float", (26, 3)),
    ("joints_3d", "float", (35, 3)),
    ("bbox", "float", (4,)),
    ("mask_area", "int64", ()),
    ("camera_model", "string", ()),
    ("fov_deg", "float", ()),
    ("cam_scale", "float", ()),
    ("cam_tx", "float", ()),
    ("cam_ty", "float", ()),
    ("yaw_deg", "float", ()),
    ("pitch_deg", "float", ()),
    ("posture", "string", ()),
    ("caption", "string", ()),
    ("prompt", "string", ()),
    ("generator", "string", ()),
)
IDENTITY = (("sample_id", "string", ()), ("species", "string", ()), ("family", "string", ()))
BACKEND_COLUMNS = (
    "shape_backend",
    "pose_backend",
    "camera_model",
    "caption_backend",
    "prompt_backend",
    "generator",
)


def _value_type(kind: str) -> tuple[pa.DataType, str]:
    return {
        "float": (pa.float32(), "float32"),
        "bool": (pa.bool_(), "bool"),
        "int64": (pa.int64(), "int64"),
        "string": (pa.string(), "string"),
    }[kind]


def _feature(kind: str, shape) -> tuple[pa.DataType, dict, dict]:
    """(arrow type, ``datasets`` feature dict, card YAML entry without the name) of one column."""
    arrow, dtype = _value_type(kind)
    feat: dict = {"dtype": dtype, "_type": "Value"}
    if shape == ():
        return arrow, feat, {"dtype": dtype}
    if shape is None:  # variable length (betas: the body model's shape space)
        return pa.list_(arrow), {"feature": feat, "_type": "List"}, {"list": dtype}
    card: str | dict = dtype
    for n in reversed(shape):
        arrow = pa.list_(arrow, n)
        feat = {"feature": feat, "length": n, "_type": "List"}
        card = {"list": card, "length": n}
    return arrow, feat, card


def _columns(rows: pd.DataFrame) -> list[tuple[str, str, tuple | None]]:
    return [c for c in IDENTITY + GROUND_TRUTH if c[0] in rows.columns]


def schema(rows: pd.DataFrame) -> tuple[pa.Schema, list[dict]]:
    """The Parquet schema (with the ``huggingface`` features metadata) and the card's feature list."""
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields, features, card = [pa.field("image", image), pa.field("mask", image)], {}, []
    features["image"] = features["mask"] = {"_type": "Image"}
    card += [{"name": "image", "dtype": "image"}, {"name": "mask", "dtype": "image"}]
    for name, kind, shape in _columns(rows):
        arrow, feat, entry = _feature(kind, shape)
        fields.append(pa.field(name, arrow))
        features[name] = feat
        card.append({"name": name, **entry})
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=meta), card


def _cell(value, kind: str, shape):
    if shape == ():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        return {"float": float, "bool": bool, "int64": int, "string": str}[kind](value)
    arr = np.asarray(value, dtype=bool if kind == "bool" else np.float64)
    return arr.reshape(shape if shape is not None else (-1,)).tolist()


def _record(row, data_dir: Path, columns) -> dict:
    sid = str(row["sample_id"])
    mask = (
        stored_path(data_dir, row["mask_path"], sid, "mask_path")
        if "mask_path" in row.index and isinstance(row["mask_path"], str)
        else None
    )
    if mask is not None and not mask.is_file():
        raise MissingInputError(f"sample {sid}: mask {mask} does not exist")
    out = {
        "image": {"bytes": image_jpeg(data_dir, row)[0], "path": f"{sid}.jpg"},
        "mask": {"bytes": mask.read_bytes(), "path": f"{sid}.mask.png"}
        if mask is not None
        else None,
    }
    for name, kind, shape in columns:
        out[name] = _cell(row[name], kind, shape)
    return out


def provenance_summary(rows: pd.DataFrame) -> dict:
    """Backends per stage (sample counts) and the code versions that made the samples."""
    summary = {
        c: dict(Counter(str(v) for v in rows[c].dropna()))
        for c in BACKEND_COLUMNS
        if c in rows.columns
    }
    versions = Counter()
    for text in rows.get("provenance", pd.Series(dtype=object)).dropna():
        try:
            record = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            continue
        found = record.get("code_version") if isinstance(record, dict) else None
        if found:
            versions[str(found)] += 1
    if versions:
        summary["code_version"] = dict(versions)
    return summary


def dataset_card(
    rows: pd.DataFrame, files: dict[str, list[str]], features: list[dict], body_model
) -> str:
    """``README.md``: YAML front matter for ``datasets`` / the Hub, then counts and provenance."""
    splits = [s for s in HF_SPLITS.values() if files.get(s)]
    counts = {
        hf: int((rows["split"] == ours).sum()) for ours, hf in HF_SPLITS.items() if hf in splits
    }
    front = {
        "license": None,
        "pretty_name": "GenZoo-style synthetic animals",
        "task_categories": ["keypoint-detection"],
        "tags": ["synthetic", "3d-pose", "smal", "animals"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
        "dataset_info": {
            "features": features,
            "splits": [{"name": s, "num_examples": counts[s]} for s in splits],
        },
        "body_model": {
            "name": Path(str(body_model.source)).name,
            "sha256": body_model.sha256,
            "num_betas": int(body_model.num_betas),
            "num_vertices": int(body_model.num_vertices),
        },
    }
    table = rows.assign(split=rows["split"].map(HF_SPLITS)).pivot_table(
        index="species", columns="split", values="sample_id", aggfunc="count", fill_value=0
    )
    lines = ["| species | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    lines += [
        f"| {sp} | " + " | ".join(str(int(table.loc[sp].get(s, 0))) for s in splits) + " |"
        for sp in table.index
    ]
    prov = yaml.safe_dump(provenance_summary(rows), sort_keys=True).strip()
    return "\n".join(
        [
            "---",
            yaml.safe_dump(front, sort_keys=False).strip(),
            "---",
            "",
            "# GenZoo-style synthetic animals",
            "",
            "Synthetic images of animals with exact 3D ground truth (SMAL-family pose, shape and camera), made by "
            "genzoo-assets. Set `license:` above to the terms of your data: the body model's and the image "
            "generator's licences apply.",
            "",
            "Frames: camera frame is OpenCV (x right, y down, z forward); `keypoints_2d` in image pixels, (0, 0) the "
            "top-left corner of the top-left pixel; `global_orient` and `body_pose` axis-angle; the body model posed "
            "by `betas`, `global_orient`, `body_pose` and translated by `transl` gives `keypoints_3d` in the camera "
            "frame. Splits are by species: `test` holds the held-out families.",
            "",
            f"Body model: `{front['body_model']['name']}` (sha256 `{body_model.sha256}`, "
            f"{int(body_model.num_betas)} betas).",
            "",
            "## Counts per species and split",
            "",
            *lines,
            "",
            "## Provenance",
            "",
            "```yaml",
            prov,
            "```",
            "",
        ]
    )


def export_hf(
    data_dir,
    out_dir,
    body_model,
    samples: pd.DataFrame | None = None,
    rows_per_file: int = 500,
    progress: ExportProgress | None = None,
    **split_options,
) -> dict:
    """Write the Parquet shards and ``README.md`` of the catalog (or ``samples``) into the new folder ``out_dir``.

    ``body_model``: the model the dataset was made with (a ``BodyModel`` or a spec for
    :func:`as_body_model`), named in the card; ``progress`` is called after each sample (a Parquet
    file is a shard). Returns ``{"files": {split: [relative paths]},
    "counts": {split: n}, "card": path}``.
    """
    body_model = as_body_model(body_model)
    if rows_per_file < 1:
        raise InputError(f"rows_per_file must be >= 1, got {rows_per_file}")
    data_dir = Path(data_dir)
    files: dict[str, list[str]] = {}
    with fresh_output(out_dir) as tmp:
        rows = catalog_samples(data_dir, samples, **split_options)
        arrow_schema, features = schema(rows)
        columns = _columns(rows)
        (tmp / "data").mkdir()
        n_shards = sum(
            -(-int((rows["split"] == ours).sum()) // rows_per_file) for ours in HF_SPLITS
        )
        done = shards = 0
        for ours, hf in HF_SPLITS.items():
            part = rows[rows["split"] == ours]
            n_files = -(-len(part) // rows_per_file)
            for k in range(n_files):
                chunk = part.iloc[k * rows_per_file : (k + 1) * rows_per_file]
                records = []
                for _, r in chunk.iterrows():
                    records.append(_record(r, data_dir, columns))
                    done += 1
                    if progress is not None:
                        progress(done, len(rows), shards, n_shards)
                rel = f"data/{hf}-{k:05d}-of-{n_files:05d}.parquet"
                pq.write_table(pa.Table.from_pylist(records, schema=arrow_schema), tmp / rel)
                files.setdefault(hf, []).append(rel)
                shards += 1
                if progress is not None:
                    progress(done, len(rows), shards, n_shards)
        (tmp / "README.md").write_text(dataset_card(rows, files, features, body_model))
    counts = {hf: int((rows["split"] == ours).sum()) for ours, hf in HF_SPLITS.items()}
    return {"files": files, "counts": counts, "card": str(Path(out_dir) / "README.md")}
