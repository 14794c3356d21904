"""A tiny writer of Python-2-style protocol-2 pickles (py2 ``str`` = BINSTRING bytes), the format of
the original SMAL release, so the latin-1 path is tested without a Python 2 interpreter."""

from __future__ import annotations

import struct

import numpy as np
import scipy.sparse


class Ch:
    """Marks a value to be written as a ``chumpy.ch.Ch`` object (state ``{'x': array}``)."""

    def __init__(self, x):
        self.x = np.asarray(x)


def _str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<I", len(b)) + b)


def _int(i: int) -> bytes:
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _array(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    order = b"|" if dt.itemsize == 1 else b"<"
    dtype = (
        b"cnumpy\ndtype\n"
        + _tuple([_str(dt.str[1:].encode()), _int(0), _int(1)])
        + b"R"
        + _tuple([_int(3), _str(order), b"N", b"N", b"N", _int(-1), _int(-1), _int(0)])
        + b"b"
    )
    head = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + _tuple([b"cnumpy\nndarray\n", _tuple([_int(0)]), _str(b"b")])
        + b"R"
    )
    state = _tuple(
        [
            _int(1),
            _tuple([_int(int(n)) for n in a.shape]),
            dtype,
            b"\x89",
            _str(a.astype(dt).tobytes()),
        ]
    )
    return head + state + b"b"


def _value(v) -> bytes:
    if isinstance(v, Ch):
        return b"cchumpy.ch\nCh\n)\x81" + _dict({"x": v.x, "label": "v"}) + b"b"
    if scipy.sparse.issparse(v):
        m = scipy.sparse.csc_matrix(v)
        state = {
            "_shape": m.shape,
            "data": m.data,
            "indices": m.indices.astype(np.int32),
            "indptr": m.indptr.astype(np.int32),
            "maxprint": 50,
            "format": "csc",
        }
        return (
            b"ccopy_reg\n_reconstructor\n"
            + _tuple([b"cscipy.sparse.csc\ncsc_matrix\n", b"c__builtin__\nobject\n", b"N"])
            + b"R"
            + _dict(state)
            + b"b"
        )
    if isinstance(v, np.ndarray):
        return _array(v)
    if isinstance(v, str):
        return _str(v.encode("latin1"))
    if isinstance(v, tuple):
        return _tuple([_value(x) for x in v])
    if isinstance(v, int):
        return _int(v)
    raise TypeError(type(v))


def _dict(d: dict) -> bytes:
    return b"}(" + b"".join(_str(k.encode()) + _value(v) for k, v in d.items()) + b"u"


def dumps_py2(d: dict) -> bytes:
    return b"\x80\x02" + _dict(d) + b"."
