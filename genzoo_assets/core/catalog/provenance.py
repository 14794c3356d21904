"""Provenance of a sample: what made it, with which files, code and packages, and when."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = (
    "genzoo-assets", "torch", "numpy", "smplx", "pyrender", "diffusers", "transformers", "dagster",
)


@functools.lru_cache(maxsize=None)
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
    return f"git:{sha}" if sha else f"genzoo-assets:{package_versions().get('genzoo-assets', 'unknown')}"


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file under a directory (names included), cached by mtime."""
    p = Path(path)
    st = p.stat()
    return _sha256_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


def provenance(
    stage: str,
    backend: str,
    *,
    model_files: dict[str, str] | None = None,
    run_id: str | None = None,
    **extra,
) -> dict:
    """One stage's provenance record. ``model_files`` maps a role to a sha256 or an HF revision."""
    return {
        "stage": stage,
        "backend": backend,
        "model_files": dict(model_files or {}),
        "code_version": code_version(),
        "packages": package_versions(),
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def provenance_json(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)
