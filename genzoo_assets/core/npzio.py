"""Reading user-supplied ``.npz`` files (pose banks, attribute files) with errors that name them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def read_npz(path: str | os.PathLike, what: str, error: type[Exception]) -> dict[str, np.ndarray]:
    """Every array of ``path`` (no pickles); ``error`` names ``what`` and the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise error(f"{what} {path} cannot be read as .npz: {exc}") from exc
