"""The one place a device name and a dtype are chosen, for every stage that runs torch.

``auto`` (or nothing) picks the GPU this process leased (``cuda:<ordinal>``, see
:mod:`genzoo_assets.core.lease`), else CUDA, then Apple's MPS, then the CPU; an explicit name is
kept as given so a wrong one fails inside torch with its own message.

Inside a GPU allocation (``SLURM_JOB_GPUS`` or ``CUDA_VISIBLE_DEVICES`` naming devices) ``auto``
never falls back to the CPU: a 12 B model quietly run in fp32 on a CPU takes days, so an unusable
CUDA there is a one-line :class:`DeviceError` naming the cause.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from genzoo_assets.core import lease
from genzoo_assets.core.errors import InputError

AUTO = "auto"


class DeviceError(InputError, RuntimeError):
    """``auto`` inside a GPU allocation where torch cannot use CUDA."""


def gpu_allocation(env: Mapping[str, str]) -> str:
    """The variable that says this process was given GPUs (``NAME=value``), or "" when none does."""
    if lease.fake_gpu_count(env) is not None:
        return ""
    slurm = env.get("SLURM_JOB_GPUS", "").strip()
    if slurm:
        return f"SLURM_JOB_GPUS={slurm}"
    visible = env.get(lease.VISIBLE_ENV)
    if visible is not None and lease.visible_entries(visible):
        return f"{lease.VISIBLE_ENV}={visible}"
    return ""


def cuda_unusable_reason(torch) -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable CUDA device "
        "(driver older than the wheel's CUDA, or the devices not in the container)"
    )


def resolve_device(device: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """A torch device name: ``device`` itself, or the best available one for ``None``/""/"auto"."""
    if device and device != AUTO:
        return str(device)
    held = lease.current()
    if held is not None:
        return held.torch_device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    given = gpu_allocation(os.environ if env is None else env)
    if given:
        raise DeviceError(
            f"device auto: {given} (a GPU allocation) but {cuda_unusable_reason(torch)}; "
            "set GENZOO_DEVICE=cpu to run on the CPU anyway"
        )
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
