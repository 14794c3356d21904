"""The one loader for user-supplied pickles (SMAL / SMAL+ model and data files): an exact allow-list.

A pickle names every callable it calls as a ``(module, name)`` global. :class:`SafeUnpickler`
resolves a global only when that exact pair is a key of :data:`ALLOWED` (numpy's array and scalar
reconstructors, scipy's sparse classes, a few inert builtins): no dotted names, no prefix or
suffix matches, no import. Anything else, e.g. a protocol-4 ``STACK_GLOBAL`` of
``numpy._core.numeric`` + ``builtins.exec``, raises :class:`UnpickleRefused` naming the global.

Original SMAL pickles (Python 2, latin-1) store arrays as chumpy objects. chumpy does not run on
Python 3.11 / numpy 2, so every class of the ``chumpy`` package becomes a :class:`ChumpyStub`
subclass that is never imported: it only keeps the pickled state, and :func:`to_array` recovers
the ndarray. A ``chumpy.ch.Ch`` pickles its value in its state dict under ``'x'``
(``Ch.__getstate__`` drops only caches and parents); the reordering ops
(``chumpy.reordering.transpose/reshape``) hold their operand under ``'a'`` plus ``axes`` /
``newshape``.
"""

from __future__ import annotations

import builtins
import codecs
import copyreg
import io
import pickle
from typing import Any

import numpy as np
import scipy.sparse

from genzoo_assets.core.errors import InputError


class UnpickleRefused(InputError, pickle.UnpicklingError):
    """The pickle names a global that is not on the allow-list."""


class UnpickleFailed(InputError):
    """The bytes are not a (complete) pickle; the message is one line: the error's type and text."""


# What pickle raises on foreign, truncated or corrupt bytes.
_CORRUPT = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    MemoryError,
    OverflowError,
)


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


def _allowed() -> dict[tuple[str, str], Any]:
    """Every global a real SMAL / SMAL+ file (numpy 1 or 2, scipy old or new, Python 2 or 3) uses."""
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # py3 bytes, protocol 2
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
    }
    for core in (
        "numpy.core",
        "numpy._core",
    ):  # numpy 1 wrote numpy.core, numpy 2 writes numpy._core
        table[(f"{core}.multiarray", "_reconstruct")] = np._core.multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = np._core.multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = np._core.numeric._frombuffer  # protocol 5
    for fmt in ("csc", "csr", "coo"):
        for kind in ("matrix", "array"):
            cls = getattr(scipy.sparse, f"{fmt}_{kind}")
            for module in (
                "scipy.sparse",
                f"scipy.sparse.{fmt}",
                f"scipy.sparse._{fmt}",
                "scipy.sparse._arrays",
            ):
                table[(module, cls.__name__)] = cls
    for name in (
        "object",
        "set",
        "frozenset",
        "list",
        "dict",
        "tuple",
        "slice",
        "complex",
        "bytearray",
    ):
        for module in ("__builtin__", "builtins"):
            table[(module, name)] = getattr(builtins, name)
    return table


ALLOWED: dict[tuple[str, str], Any] = _allowed()


def _is_chumpy(module: str, name: str) -> bool:
    return (module == "chumpy" or module.startswith("chumpy.")) and name.isidentifier()


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if _is_chumpy(module, name):
            return _stub(module, name)
        raise UnpickleRefused(
            f"refusing to load global {module}.{name} (not on the allow-list of numpy, "
            f"scipy.sparse and chumpy stand-ins)"
        )


def safe_load(data: bytes) -> Any:
    """Unpickle ``data`` (latin-1 for Python 2 strings); raises :class:`UnpickleRefused` on a global
    outside :data:`ALLOWED` before anything is called, :class:`UnpickleFailed` on corrupt bytes."""
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnpickleRefused:
        raise
    except _CORRUPT as exc:
        detail = " ".join(str(exc).split())  # pickle's messages span lines; errors are one line
        raise UnpickleFailed(f"{type(exc).__name__}: {detail}") from exc


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
        raise InputError(
            f"'{key}' is a {value.chumpy_class} object whose array could not be recovered "
            f"(state keys: {sorted(st)})"
        )
    if scipy.sparse.issparse(value):
        try:
            return value.toarray()
        except Exception:  # an old scipy pickle: rebuild from its stored parts
            d = value.__dict__
            cls = (
                scipy.sparse.csr_matrix
                if d.get("format", "csc") == "csr"
                else scipy.sparse.csc_matrix
            )
            return cls(
                (d["data"], d["indices"], d["indptr"]), shape=d.get("_shape") or d.get("shape")
            ).toarray()
    return value
