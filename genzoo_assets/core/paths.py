"""Where outputs live, and writing them so a reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

DATA_DIR_ENV = "GENZOO_DATA_DIR"


class DataDirError(RuntimeError):
    """The data directory cannot be used (missing permission, not a directory, ...)."""


def data_dir(create: bool = True, override: str | os.PathLike | None = None) -> Path:
    """The output root: ``override`` if given, else ``$GENZOO_DATA_DIR`` if set, else ``./data``."""
    root = Path(override or os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise DataDirError(f"data directory {root} is a file, not a folder (set {DATA_DIR_ENV} to a folder)")
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"data directory {root} cannot be created: {exc.strerror or exc}") from exc
        if not os.access(root, os.W_OK):
            raise DataDirError(f"data directory {root} is not writable (set {DATA_DIR_ENV} to a writable folder)")
    return root


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name starts with a dot and ends in ``.tmp`` so globs such as ``*.parquet`` or
    ``*.png`` never match a file that is still being written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
