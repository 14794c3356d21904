"""Loading and saving SMAL-family model files: SMAL (chumpy pickles), SMAL+ "nochumpy" pickles, npz.

Every failure is a :class:`BodyModelError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from ..paths import atomic_path
from .animer_keypoints import (
    KEYPOINT_SET_ANIMER,
    KEYPOINT_SET_DERIVED,
    animer_keypoint_groups,
    is_smal_topology,
)
from .model import BodyModel, BodyModelError, validate_arrays
from .smal_geometry import derive_canonical_rotation, derive_keypoint_groups
from .unpickle import UnpickleFailed, UnpickleRefused, safe_load, to_array

REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
)


def _read(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BodyModelError(f"{path}: body model file not found") from None
    except IsADirectoryError:
        raise BodyModelError(f"{path}: is a directory, not a body model file") from None
    except OSError as exc:
        raise BodyModelError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise BodyModelError(f"{path}: file is empty")
    if data[:4] == b"PK\x03\x04":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise BodyModelError(
                    f"{path}: .npz holds pickled object arrays, which are never loaded "
                    "(allow_pickle=False)"
                ) from exc
            raise BodyModelError(f"{path}: corrupt or truncated .npz ({exc})") from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BodyModelError(f"{path}: corrupt or truncated .npz ({exc})") from exc
    else:
        try:
            raw = safe_load(data)
        except UnpickleRefused as exc:
            raise BodyModelError(f"{path}: not a body model pickle: {exc}") from exc
        except UnpickleFailed as exc:
            kind = (
                "truncated or corrupt pickle"
                if data[:1] == b"\x80"
                else "not a pickle or .npz file"
            )
            raise BodyModelError(f"{path}: {kind} ({exc})") from exc
    if not isinstance(raw, dict):
        raise BodyModelError(
            f"{path}: holds a {type(raw).__name__}, expected a dict of model arrays"
        )
    out = {}
    for k, v in raw.items():
        try:
            out[str(k)] = to_array(v, str(k))
        except ValueError as exc:
            raise BodyModelError(f"{path}: {exc}") from exc
    out["_sha256"] = hashlib.sha256(data).hexdigest()
    return out


def _groups(path: Path, value) -> list[list[int]]:
    arr = value
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim == 2:
        return [[int(i) for i in row if i >= 0] for row in arr]
    try:
        return [[int(i) for i in np.asarray(g).ravel()] for g in arr]
    except (TypeError, ValueError) as exc:
        raise BodyModelError(
            f"{path}: 'keypoint_groups' must be 26 lists of vertex ids ({exc})"
        ) from exc


def load_body_model(path, canonical_rotation=None, dtype=None) -> BodyModel:
    """Load SMAL / SMAL+ (``.pkl``) or our ``.npz``; parents from ``kintree_table[0]``.

    ``canonical_rotation`` (3x3) overrides the model->canonical rotation; by default it is read from
    the file's ``canonical_rotation`` key, else derived from the template's joints (see
    :func:`smal_geometry.derive_canonical_rotation`).

    Keypoints: a file's own ``keypoint_groups`` (with its ``keypoint_set`` label; ``"file"`` when it
    has none) win; otherwise SMAL topology (every released SMAL / SMAL+ file) gets AniMer's vertex
    lists (``keypoint_set == "animer"``) and any other mesh groups derived from its geometry and
    skinning weights (``"derived"``).
    """
    path = Path(path)
    a = _read(path)
    missing = [k for k in REQUIRED_KEYS if k not in a]
    if missing:
        raise BodyModelError(
            f"{path}: missing key(s) {missing}; a SMAL-family file needs {list(REQUIRED_KEYS)}"
        )
    kt = np.asarray(a["kintree_table"])
    if kt.ndim != 2 or kt.shape[0] != 2:
        raise BodyModelError(f"{path}: 'kintree_table' must be (2, J), got shape {kt.shape}")
    parents = kt[0].astype(np.int64)
    parents[0] = -1  # SMAL stores the root's parent as 2**32-1
    if parents.shape[0] != 35:
        raise BodyModelError(
            f"{path}: the kinematic tree has {parents.shape[0]} joints, a SMAL-family model needs 35"
        )
    names = a.get("joint_names")
    names = [str(n) for n in np.asarray(names).ravel()] if names is not None else None
    arrays = validate_arrays(
        str(path),
        a["v_template"],
        a["shapedirs"],
        a["posedirs"],
        a["J_regressor"],
        a["weights"],
        parents,
        a["f"],
    )
    if canonical_rotation is None and "canonical_rotation" in a:
        canonical_rotation = np.asarray(a["canonical_rotation"], dtype=np.float64)
    if canonical_rotation is None:
        canonical_rotation = derive_canonical_rotation(arrays["J_regressor"] @ arrays["v_template"])
    if "keypoint_groups" in a:
        groups = _groups(path, a["keypoint_groups"])
        keypoint_set = str(a["keypoint_set"]) if "keypoint_set" in a else "file"
    elif is_smal_topology(arrays["v_template"].shape[0], parents):
        groups, keypoint_set = animer_keypoint_groups(), KEYPOINT_SET_ANIMER
    else:
        groups = derive_keypoint_groups(
            arrays["v_template"],
            arrays["weights"],
            arrays["J_regressor"],
            np.asarray(canonical_rotation, dtype=np.float64),
        )
        keypoint_set = KEYPOINT_SET_DERIVED
    model = BodyModel(
        arrays["v_template"],
        arrays["shapedirs"],
        a["posedirs"],
        arrays["J_regressor"],
        arrays["weights"],
        parents,
        arrays["faces"],
        keypoint_groups=groups,
        joint_names=names,
        canonical_rotation=canonical_rotation,
        source=str(path),
        sha256=a["_sha256"],
        keypoint_set=keypoint_set,
    )
    return model.to(dtype) if dtype is not None else model


def model_arrays(model: BodyModel) -> dict[str, np.ndarray]:
    """The model as the npz keys :func:`load_body_model` reads (posedirs in SMAL's (V, 3, P) layout)."""
    nv = model.num_vertices
    groups = model.keypoint_groups
    width = max(len(g) for g in groups)
    padded = np.full((len(groups), width), -1, dtype=np.int64)
    for i, g in enumerate(groups):
        padded[i, : len(g)] = g
    np_ = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    return {
        "v_template": np_(model.v_template),
        "shapedirs": np_(model.shapedirs),
        "posedirs": np_(model.posedirs).T.reshape(nv, 3, -1),
        "J_regressor": np_(model.J_regressor),
        "weights": np_(model.lbs_weights),
        "kintree_table": np.stack([model.parents, np.arange(model.num_joints)]),
        "f": model.faces,
        "joint_names": np.array(model.joint_names),
        "keypoint_groups": padded,
        "canonical_rotation": model.canonical_rotation,
        "keypoint_set": np.array(model.keypoint_set),
    }


def save_body_model(model: BodyModel, path) -> Path:
    """Write ``model`` as an ``.npz`` (atomically) that :func:`load_body_model` reads back."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **model_arrays(model))
    return path
