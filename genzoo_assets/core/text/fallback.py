"""How a sample that the paper's model could not make, made by the offline backend instead, is
recorded: the backend name carries the model it stood in for."""

from __future__ import annotations


def fallback_name(fallback: str, primary: str) -> str:
    """The backend recorded for a sample the ``primary`` model could not make (e.g. an empty
    answer), made by ``fallback`` instead: ``geometric(fallback:vlm:Molmo-7B-D-0924)``."""
    return f"{fallback}(fallback:{primary})"


def is_fallback(backend: str) -> bool:
    """Whether a recorded ``*_backend`` value names a fallback (see :func:`fallback_name`)."""
    return "(fallback:" in str(backend)
