"""The one place a device name and a dtype are chosen, for every stage that runs torch.

``auto`` (or nothing) picks CUDA, then Apple's MPS, then the CPU; an explicit name is kept as given
so a wrong one fails inside torch with its own message.
"""

from __future__ import annotations

AUTO = "auto"


def resolve_device(device: str | None = None) -> str:
    """A torch device name: ``device`` itself, or the best available one for ``None``/""/"auto"."""
    if device and device != AUTO:
        return str(device)
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype, device: str):
    """A torch dtype from a name ("bfloat16", "float16", "float32"), a dtype, or ``None``.

    ``None`` is bf16 on cuda, fp32 elsewhere.
    """
    import torch

    if dtype is None:
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown torch dtype {dtype!r} (use bfloat16, float16 or float32)")
    return value
