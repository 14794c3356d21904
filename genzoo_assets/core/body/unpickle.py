"""Unpickling SMAL model files without chumpy, and without executing arbitrary code.

Original SMAL pickles (Python 2, latin-1) store arrays as chumpy objects. chumpy does not run on
Python 3.11 / numpy 2, so every ``chumpy.*`` class maps to :class:`ChumpyStub`, which keeps the
pickled state; :func:`to_array` then recovers the ndarray. A ``chumpy.ch.Ch`` pickles its value in
its state dict under ``'x'`` (``Ch.__getstate__`` drops only caches and parents); the reordering
ops (``chumpy.reordering.transpose/reshape``) hold their operand under ``'a'`` plus ``axes`` /
``newshape``. Only numpy, scipy.sparse, copyreg and plain builtins are resolved: a model file
cannot name any other callable.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import scipy.sparse


class UnpickleRefused(pickle.UnpicklingError):
    """The pickle names a global we do not resolve."""


class ChumpyStub:
    """Stands in for any chumpy class; keeps the pickled state for :func:`to_array`."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args, **kwargs):
        self.state: Any = None

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots dict)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state


_STUBS: dict[str, type] = {}


def _stub(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _STUBS:
        _STUBS[key] = type(name, (ChumpyStub,), {"chumpy_class": key})
    return _STUBS[key]


_NUMPY_GLOBALS = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer", "frombuffer"}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}
_BUILTINS = {"object", "set", "frozenset", "list", "dict", "tuple", "slice", "complex", "bytearray"}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        top = module.split(".")[0]
        if top == "chumpy":
            return _stub(module, name)
        if top == "numpy":
            if name in _NUMPY_GLOBALS or module.endswith("numeric") or module == "numpy":
                if module.startswith("numpy.core"):
                    module = "numpy._core" + module[len("numpy.core"):]
                return super().find_class(module, name)
        if top == "scipy" and name in _SPARSE:
            return getattr(scipy.sparse, name)
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles from Python 3 store bytes
            return super().find_class(module, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return super().find_class("copyreg", name)
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return super().find_class("builtins", name)
        raise UnpickleRefused(f"refusing to load global {module}.{name}")


def safe_load(data: bytes) -> Any:
    return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()


def to_array(value: Any, key: str) -> Any:
    """Plain ndarray / scipy sparse from whatever the pickle held under ``key``."""
    if isinstance(value, ChumpyStub):
        st = value.state if isinstance(value.state, dict) else {}
        if isinstance(st.get("x"), np.ndarray) or np.isscalar(st.get("x")):
            return np.asarray(st["x"])
        if "a" in st:
            inner = to_array(st["a"], key)
            if "axes" in st:
                return np.transpose(inner, st["axes"])
            if "newshape" in st:
                return np.reshape(inner, st["newshape"])
            return np.asarray(inner)
        raise ValueError(f"'{key}' is a {value.chumpy_class} object whose array could not be recovered "
                         f"(state keys: {sorted(st)})")
    if scipy.sparse.issparse(value):
        try:
            return value.toarray()
        except Exception:  # an old scipy pickle: rebuild from its stored parts
            d = value.__dict__
            cls = scipy.sparse.csr_matrix if d.get("format", "csc") == "csr" else scipy.sparse.csc_matrix
            return cls((d["data"], d["indices"], d["indptr"]), shape=d.get("_shape") or d.get("shape")).toarray()
    return value
