"""Provenance of a sample: what made it, with which files, code and packages, and when."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from genzoo_assets.core import lease

TRACKED_PACKAGES = (
    "genzoo-assets",
    "torch",
    "numpy",
    "smplx",
    "pyrender",
    "diffusers",
    "transformers",
    "dagster",
)


@functools.cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git sha of the checkout the package runs from, or the package version."""
    root = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return (
        f"git:{sha}"
        if sha
        else f"genzoo-assets:{package_versions().get('genzoo-assets', 'unknown')}"
    )


def _files(p: Path) -> list[Path]:
    return sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]


def _fingerprint(p: Path) -> str:
    """Names, sizes and mtimes of everything hashed: changes whenever the content may have."""
    entries = [
        (str(f.relative_to(p)) if p.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns)
        for f in _files(p)
    ]
    return hashlib.sha1(json.dumps([str(p), entries]).encode()).hexdigest()


def hash_cache_path() -> Path:
    """Where hashes of model files persist across processes (``$GENZOO_HASH_CACHE``)."""
    default = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "genzoo-assets"
        / "sha256.json"
    )
    return Path(os.environ.get("GENZOO_HASH_CACHE") or default)


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # missing or damaged cache: hash again
        return {}


@functools.lru_cache(maxsize=256)
def _sha256(path: str, fingerprint: str) -> str:
    cache_file = hash_cache_path()
    cached = _load_cache(cache_file).get(fingerprint)
    if cached:
        return cached
    digest = hashlib.sha256()
    p = Path(path)
    for f in _files(p):
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    value = digest.hexdigest()
    try:
        from genzoo_assets.core.paths import write_bytes_atomic

        write_bytes_atomic(
            cache_file, json.dumps({**_load_cache(cache_file), fingerprint: value}).encode()
        )
    except OSError:  # a read-only home only costs the next process a re-hash
        pass
    return value


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file under a directory (names included).

    Model folders are tens of GB and every Dagster step is a new process, so hashes persist in
    :func:`hash_cache_path`, keyed by the files' names, sizes and mtimes.
    """
    p = Path(path).resolve()
    return _sha256(str(p), _fingerprint(p))


def provenance(
    stage: str,
    backend: str,
    *,
    model_files: dict[str, str] | None = None,
    run_id: str | None = None,
    **extra,
) -> dict:
    """One stage's provenance record. ``model_files`` maps a role to a sha256 or an HF revision;
    ``device`` (only where the step leased a GPU) names it: index, name, UUID."""
    held = lease.current()
    return {
        "stage": stage,
        "backend": backend,
        "model_files": dict(model_files or {}),
        "code_version": code_version(),
        "packages": package_versions(),
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"device": held.describe()} if held is not None else {}),
        **extra,
    }


def provenance_json(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)
