"""Export the catalog's samples as WebDataset shards that GenZoo's trainer reads exactly.

Per sample: ``<key>.jpg`` (the generated image) and ``<key>.npz`` with ``poses`` (35×9 rotation
matrices, row 0 the global orientation), ``betas`` (the body model's whole shape space), the
camera in GenZoo's convention (``CAMERA_CONVENTIONS``: v1 ``scales, txs, tys``; v2
``transls, fovs``), ``keypoints_2d`` (26×3 x, y, visibility in image pixels), ``keypoints_3d``
(26×3, camera frame), ``bbox`` (x, y, w, h px), ``mask_area`` and meta (``sample_id``,
``species``, ``family``, ``image_size``). Samples GenZoo's loader would drop (``max |β| ≥ 10``,
its ``select``) are left out and counted.

Splits are by species, so no species is seen in two splits: a held-out clade (every species of
``heldout_families``, GenZoo's Felidae test), then a deterministic species-level train/val split.
A shard holds one species' samples in ``sample_id`` order (at most ``maxcount``), so a new or
regenerated species changes only its own shards.

Layout under ``out_dir`` (atomic as a whole, incremental)::

    current -> export-<id>      symlink, replaced by one rename: readers see one whole export
    export-<id>/                manifest.json, index.parquet, <split>-NNNNNN.tar, .readers
    .export-<id>/               an export being written; removed by the next run if its writer died
    .lock                       held (flock) by the running export: exports run one at a time

Each shard's fingerprint (its samples' catalog values, image file sizes and mtimes, the format and
camera version) is stored in the manifest; a shard whose fingerprint the previous export already
has is hard-linked from there instead of rewritten (copied where the filesystem has no hard
links). Retention, which a reader outside this process can count on: garbage collection (by the
next export, under its lock) keeps the export ``current`` points to (read from the link, whatever
state its manifest is in), the newest ``KEEP_LAST`` (3) exports, every export pinned with
``genzoo export keep NAME`` (a ``.pinned`` file in it, until ``--release``) and any export whose
``.readers`` lease a reader holds (:class:`ExportLease`); it never follows or removes a symlink
other than its own ``.current-*`` temporaries.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo_assets.core.dataset.common import ExportProgress
from genzoo_assets.core.dataset.records import (
    CAMERA_CONVENTIONS,
    CAMERA_VERSIONS,
    GENZOO_BETA_LIMIT,
    REQUIRED_COLUMNS,
    camera_fields,
    check_camera,
    image_jpeg,
    sample_record,
    wds_key,
)
from genzoo_assets.core.dataset.splits import (
    DEFAULT_HELDOUT_FAMILIES,
    SPLITS,
    assign_splits,
)
from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import (
    check_file_name,
    file_lock,
    hold_shared_lock,
    lock_is_held,
    raise_if_disk_full,
    stored_path,
)

FORMAT = "genzoo-assets-shards/2"
MANIFEST = "manifest.json"
INDEX = "index.parquet"  # (split, shard, sample_id): which catalog rows went into which shard
CURRENT = "current"
LOCK = ".lock"
READERS = ".readers"
PIN = ".pinned"  # in an export folder: kept until released (`genzoo export keep NAME --release`)
KEEP_LAST = 3  # the newest exports kept whatever else: `current` and the two made before it
EXPORT_PREFIX, TEMP_PREFIX, LINK_PREFIX = "export-", ".export-", ".current-"
FINGERPRINT_COLUMNS = REQUIRED_COLUMNS + (
    "family",
    "transl",
    "camera_model",
    "fov_deg",
    "cam_scale",
    "cam_tx",
    "cam_ty",
)


def _json_value(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.asarray(value).tolist()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _sample_fingerprint(row, data_dir: Path) -> str:
    """Everything a sample's record is made of: its catalog values and its image file's identity."""
    values = {c: _json_value(row[c]) for c in FINGERPRINT_COLUMNS if c in row.index}
    image = stored_path(data_dir, row["image_path"], row["sample_id"], "image_path")
    try:
        st = image.stat()
        values["_image"] = [st.st_size, st.st_mtime_ns]
    except OSError:
        raise MissingInputError(
            f"sample {row['sample_id']}: image {image} does not exist"
        ) from None
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _shard_fingerprint(sample_fingerprints: list[str], camera_version: str) -> str:
    return hashlib.sha256(
        json.dumps([FORMAT, camera_version, sample_fingerprints]).encode()
    ).hexdigest()


def plan_shards(
    rows: pd.DataFrame, split_of: pd.Series, maxcount: int
) -> list[tuple[str, str, pd.DataFrame]]:
    """``(split, shard name, rows)`` in order: per split, per species, ``maxcount`` samples at most."""
    plan = []
    for split in SPLITS:
        part = rows[split_of == split]
        k = 0
        for _, group in part.groupby("species", sort=True):
            group = group.sort_values("sample_id", kind="stable")
            for start in range(0, len(group), maxcount):
                plan.append((split, f"{split}-{k:06d}.tar", group.iloc[start : start + maxcount]))
                k += 1
    return plan


def _brace_urls(names: list[str], split: str) -> str | None:
    """GenZoo's config takes brace-expanded URLs (``train-{000000..000011}.tar``)."""
    if not names:
        return None
    return f"{split}-{{{0:06d}..{len(names) - 1:06d}}}.tar" if len(names) > 1 else names[0]


# Stages of one export, separate functions so a test can crash each one.


def _write_shard(path: Path, part: pd.DataFrame, data_dir: Path, camera_version: str) -> None:
    import webdataset as wds  # imports torch: only where shards are written

    families = part["family"] if "family" in part.columns else pd.Series("", index=part.index)
    with wds.TarWriter(str(path)) as sink:
        for idx, row in part.iterrows():
            family = families.loc[idx]
            sink.write(
                sample_record(row, data_dir, camera_version, "" if pd.isna(family) else str(family))
            )


def _link_shard(source: Path, target: Path) -> str:
    """Reuse an unchanged shard: a hard link, or a copy where the filesystem has none."""
    try:
        os.link(source, target)
        return "hardlink"
    except OSError as exc:
        if exc.errno not in (
            errno.EPERM,
            errno.EXDEV,
            errno.EMLINK,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
        ):
            raise
    shutil.copyfile(source, target)
    return "copy"


def _write_metadata(tmp: Path, index: pd.DataFrame, manifest: dict) -> None:
    index.to_parquet(tmp / INDEX, index=False)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (tmp / READERS).touch()


def _publish(tmp: Path, final: Path) -> None:
    os.rename(tmp, final)


def _swap_current(out_dir: Path, name: str) -> None:
    link = out_dir / f"{LINK_PREFIX}{secrets.token_hex(4)}"
    os.symlink(name, link)
    os.replace(link, out_dir / CURRENT)


def _current_name(out_dir: Path) -> str | None:
    """The folder name ``current`` points to (read from the link, never from a manifest), None
    without one."""
    try:
        target = os.readlink(out_dir / CURRENT)
    except OSError:
        return None
    return Path(target).name if Path(target).parent in (Path("."), out_dir) else None


def _made_ns(folder: Path) -> int:
    """When an export was made: its ``index.parquet``'s mtime (written once, with the export; a pin
    changes the folder's mtime, not this), else the folder's."""
    for path in (folder / INDEX, folder):
        with contextlib.suppress(OSError):
            return path.lstat().st_mtime_ns
    return 0


def _exports(out_dir: Path) -> list[Path]:
    """The finished export folders in ``out_dir``, oldest first (by the time in their names, then
    when they were made); symlinks are not exports and are never followed."""
    found = []
    for entry in os.scandir(out_dir):
        if entry.name.startswith(EXPORT_PREFIX) and entry.is_dir(follow_symlinks=False):
            folder = Path(entry.path)
            found.append((entry.name.split("-")[1], _made_ns(folder), entry.name))
    return [out_dir / name for _, _, name in sorted(found)]


def retained(out_dir: Path, keep: set[str] = frozenset(), keep_last: int = KEEP_LAST) -> set[str]:
    """The exports garbage collection keeps: the one ``current`` points to (whatever state its
    manifest is in), the newest ``keep_last``, every pinned one (``.pinned``) and ``keep``."""
    exports = _exports(out_dir)
    kept = set(keep) | {p.name for p in exports[max(0, len(exports) - keep_last) :]}
    kept |= {p.name for p in exports if (p / PIN).is_file()}
    if (name := _current_name(out_dir)) is not None:
        kept.add(name)
    return kept


def _collect_garbage(out_dir: Path, keep: set[str], keep_last: int = KEEP_LAST) -> list[str]:
    """Remove unfinished exports, stray pointer links, a pre-format-2 export and old exports.

    Runs under the export lock, so every ``.export-*`` folder belongs to a dead run. An old export
    is kept while :func:`retained` keeps it or a reader holds its lease. A symlink (other than our
    own ``.current-*`` pointer temporaries) is left alone: it is not ours to follow or remove.
    """
    removed = []
    kept = retained(out_dir, keep, keep_last)
    for entry in sorted(out_dir.iterdir()):
        name = entry.name
        if name.startswith(LINK_PREFIX) and entry.is_symlink():
            entry.unlink()
        elif entry.is_symlink():
            continue
        elif name.startswith(TEMP_PREFIX) and entry.is_dir():
            shutil.rmtree(entry)
        elif (
            name.startswith(EXPORT_PREFIX)
            and entry.is_dir()
            and name not in kept
            and not _leased(entry)
        ):
            shutil.rmtree(entry)
        else:
            continue
        removed.append(name)
    legacy = out_dir / MANIFEST
    if (
        legacy.is_file() and (out_dir / CURRENT).exists()
    ):  # the layout before format 2: files in out_dir
        for stale in [
            legacy,
            out_dir / INDEX,
            *(p for s in SPLITS for p in out_dir.glob(f"{s}-*.tar")),
        ]:
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
                removed.append(stale.name)
    return removed


def pin_export(out_dir, name: str, release: bool = False) -> Path:
    """Pin the export ``name`` (``current``: the one it points to now) in ``out_dir`` so garbage
    collection never removes it, or release the pin; returns the export's folder. A reader that
    reads an export for days (GenZoo's trainer) pins it first."""
    out_dir = Path(out_dir)
    if name == CURRENT:
        name = _current_name(out_dir) or ""
    folder = out_dir / name
    if (
        not name.startswith(EXPORT_PREFIX)
        or "/" in name
        or folder.is_symlink()
        or not folder.is_dir()
    ):
        have = ", ".join(p.name for p in _exports(out_dir)) if out_dir.is_dir() else "none"
        raise MissingInputError(
            f"no export {name or CURRENT!r} in {out_dir} (exports there: {have or 'none'})"
        )
    with file_lock(out_dir / LOCK):  # not while garbage collection decides
        if release:
            (folder / PIN).unlink(missing_ok=True)
        else:
            (folder / PIN).touch()
    return folder


def _leased(export_dir: Path) -> bool:
    return lock_is_held(export_dir / READERS)


class ExportLease:
    """A shared lock on one export's ``.readers`` file: the export is not deleted while held.

    Streaming readers (``data.load_split``) hold one for the dataset's life; it is released when
    the object is closed or collected, or the process exits. Pickled copies (DataLoader workers
    started with spawn) carry only the path: the parent's lease covers them.
    """

    def __init__(self, export_dir: Path):
        self._fh = None
        self.export_dir = Path(export_dir)
        self.path = self.export_dir / READERS
        self._fh = hold_shared_lock(self.path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __getstate__(self):
        return {"export_dir": self.export_dir, "path": self.path, "_fh": None}

    def __del__(self):
        self.close()


def resolve_export(out_dir) -> Path:
    """The export a reader should read: ``out_dir/current``'s target, or ``out_dir`` when it is one."""
    out_dir = Path(out_dir)
    pointer = out_dir / CURRENT
    if pointer.is_symlink():
        try:
            return pointer.resolve(strict=True)
        except OSError as exc:
            raise MissingInputError(
                f"{pointer} points to a missing export ({exc.strerror or exc})"
            ) from exc
    if (out_dir / MANIFEST).is_file():
        return out_dir
    raise MissingInputError(
        f"no export in {out_dir}: materialise `dataset_shards` (export_shards) first"
    )


def read_manifest(out_dir) -> dict:
    """The manifest of the export ``out_dir`` names (see :func:`resolve_export`), format checked."""
    export_dir = resolve_export(out_dir)
    manifest = json.loads((export_dir / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise InputError(
            f"{export_dir / MANIFEST} was written by an older genzoo-assets (format "
            f"{manifest.get('format', 1)!r}, need {FORMAT!r}): materialise `dataset_shards` again"
        )
    manifest["export_dir"] = str(export_dir)
    return manifest


def heldout_split(out_dir) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(held-out families, held-out species) of the current export: the test split as the user
    configured it (`dataset_shards`'s ``heldout_families``), which generation must never steer.

    Raises ``MissingInputError`` when there is no export yet.
    """
    manifest = read_manifest(out_dir)
    families = tuple(str(f) for f in manifest.get("heldout_families") or ())
    species = tuple(str(s) for s in (manifest.get("species") or {}).get("heldout") or ())
    return families, species


def _previous_export(out_dir: Path) -> tuple[Path | None, dict | None]:
    try:
        manifest = read_manifest(out_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
        return None, None
    export_dir = Path(manifest["export_dir"])
    return (export_dir, manifest) if export_dir.parent == out_dir.resolve() else (None, None)


def select_rows(
    samples: pd.DataFrame,
    camera_version: str,
    exclude_flagged: bool = True,
    num_betas: int | None = None,
) -> tuple[pd.DataFrame, dict, int | None]:
    """The rows to export, the excluded counts and the shape-space size; raises on any bad row.

    Drops flagged rows (``exclude_flagged``) and the rows GenZoo's ``select`` would drop; every kept
    row must have ``num_betas`` betas (default: the first row's) and a camera ``camera_version`` can
    represent exactly.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"samples are missing columns {missing}")
    if samples["sample_id"].duplicated().any():
        dup = samples.loc[samples["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise ValueError(f"samples hold sample_id {dup!r} more than once")
    rows, excluded = samples, {"flagged": 0, "betas_out_of_range": 0}
    if exclude_flagged and "flagged" in rows.columns:
        flagged = rows["flagged"].fillna(False).astype(bool)
        excluded["flagged"] = int(flagged.sum())
        rows = rows[~flagged]
    peak = []
    for _, row in rows.iterrows():
        betas = np.asarray(row["betas"], dtype=np.float64).reshape(-1)
        num_betas = betas.size if num_betas is None else num_betas
        if betas.size != num_betas:
            raise InputError(
                f"sample {row['sample_id']}: betas has {betas.size} values, the body model's shape "
                f"space has {num_betas} (GenZoo's loader needs all of them)"
            )
        check_camera(row, camera_version)
        peak.append(float(np.abs(betas).max()) if betas.size else 0.0)
    keep = np.asarray(peak, dtype=np.float64) < GENZOO_BETA_LIMIT
    excluded["betas_out_of_range"] = int((~keep).sum())
    return rows[keep], excluded, num_betas


def _body_model_record(body_model) -> dict | None:
    if body_model is None:
        return None
    return {
        "source": str(body_model.source),
        "sha256": body_model.sha256,
        "num_betas": int(body_model.num_betas),
        "num_vertices": int(body_model.num_vertices),
    }


def export_shards(
    samples: pd.DataFrame,
    data_dir,
    out_dir,
    heldout_families=DEFAULT_HELDOUT_FAMILIES,
    val_fraction: float = 0.1,
    exclude_flagged: bool = True,
    maxcount: int = 1000,
    camera_version: str = "v2",
    body_model=None,
    keep_last: int = KEEP_LAST,
    progress: ExportProgress | None = None,
) -> dict:
    """Write a complete export (shards, ``index.parquet``, ``manifest.json``) and make it current.

    ``body_model`` (optional) fixes the shape-space size every row's ``betas`` must have and is
    recorded in the manifest; without it every row must have the same length. Nothing is written
    until every row has been checked; a failed export removes its folder (a killed one's is
    removed by the next run). ``progress`` is called after each shard (written or reused).
    Returns ``{"counts", "excluded", "shards": [(path, [sample_id, ...])], "manifest",
    "export_dir", "written", "reused"}``.
    """
    if camera_version not in CAMERA_VERSIONS:
        raise InputError(f"camera_version must be one of {CAMERA_VERSIONS}, got {camera_version!r}")
    if maxcount < 1:
        raise InputError(f"maxcount must be >= 1, got {maxcount}")
    if keep_last < 1:
        raise InputError(f"keep_last must be >= 1, got {keep_last}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    rows, excluded, num_betas = select_rows(
        samples,
        camera_version,
        exclude_flagged,
        None if body_model is None else int(body_model.num_betas),
    )
    for sid, image in zip(rows["sample_id"], rows["image_path"]):  # validate, then write
        check_file_name(wds_key(str(sid)), sid, "column sample_id (as a shard member name)")
        stored_path(data_dir, image, sid, "image_path")
    split_of = assign_splits(rows, heldout_families, val_fraction)
    plan = plan_shards(rows, split_of, maxcount)
    out_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir / LOCK):
        previous, prev_manifest = _previous_export(out_dir)
        keep_names = {previous.name} if previous is not None else set()
        _collect_garbage(
            out_dir, keep_names, keep_last
        )  # leftovers of killed runs; `current`, the newest and the pinned exports stay
        reusable = {
            fp: previous / name
            for name, fp in (prev_manifest or {}).get("fingerprints", {}).items()
        }
        token = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
        tmp, final = out_dir / f"{TEMP_PREFIX}{token}", out_dir / f"{EXPORT_PREFIX}{token}"
        tmp.mkdir()
        try:
            fingerprints, methods, index_rows, shards = (
                {},
                {"written": 0, "hardlink": 0, "copy": 0},
                [],
                [],
            )
            for split, name, part in plan:
                fp = _shard_fingerprint(
                    [_sample_fingerprint(r, data_dir) for _, r in part.iterrows()], camera_version
                )
                source = reusable.get(fp)
                if source is not None and source.is_file():
                    methods[_link_shard(source, tmp / name)] += 1
                else:
                    _write_shard(tmp / name, part, data_dir, camera_version)
                    methods["written"] += 1
                fingerprints[name] = fp
                ids = [str(s) for s in part["sample_id"]]
                index_rows += [{"split": split, "shard": name, "sample_id": s} for s in ids]
                shards.append((str(final / name), ids))
                if progress is not None:
                    progress(len(index_rows), len(rows), len(shards), len(plan))
            names = {s: [n for sp, n, _ in plan if sp == s] for s in SPLITS}
            manifest = {
                "format": FORMAT,
                "export": final.name,
                "previous": previous.name if previous is not None else None,
                "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "camera_version": camera_version,
                "camera_conventions": CAMERA_CONVENTIONS,
                "num_betas": num_betas,
                "body_model": _body_model_record(body_model),
                "counts": {s: int((split_of == s).sum()) for s in SPLITS},
                "excluded": excluded,
                "heldout_families": list(heldout_families or ()),
                "val_fraction": val_fraction,
                "maxcount": maxcount,
                "species": {s: sorted(set(rows.loc[split_of == s, "species"])) for s in SPLITS},
                "shards": names,
                "genzoo_urls": {s: _brace_urls(names[s], s) for s in SPLITS if names[s]},
                "fingerprints": fingerprints,
                "shards_written": methods["written"],
                "shards_reused": {"hardlink": methods["hardlink"], "copy": methods["copy"]},
            }
            _write_metadata(
                tmp, pd.DataFrame(index_rows, columns=["split", "shard", "sample_id"]), manifest
            )
            _publish(tmp, final)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise_if_disk_full(exc, tmp)  # a full disk is an input error: one line, no retry
            raise
        _swap_current(out_dir, final.name)
        _collect_garbage(out_dir, {final.name}, keep_last)
    return {
        "counts": manifest["counts"],
        "excluded": excluded,
        "shards": shards,
        "manifest": str(final / MANIFEST),
        "export_dir": str(final),
        "written": methods["written"],
        "reused": methods["hardlink"] + methods["copy"],
    }


__all__ = [
    "CAMERA_CONVENTIONS",
    "ExportLease",
    "FORMAT",
    "KEEP_LAST",
    "SPLITS",
    "assign_splits",
    "camera_fields",
    "check_camera",
    "export_shards",
    "image_jpeg",
    "pin_export",
    "plan_shards",
    "read_manifest",
    "resolve_export",
    "retained",
    "sample_record",
    "select_rows",
    "wds_key",
]
