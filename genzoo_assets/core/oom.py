"""CUDA out-of-memory inside a generating step: halve the batch and go on, never reload the model.

A whole-step retry reloads every weight (34 GB for FLUX) and regenerates the partition from the
start; an OOM usually means only that this batch of requests was too large for the free memory.
:class:`HalvingBatches` frees the allocator's cache and runs the same items again in halves, down
to one item at a time, and keeps the smaller size for the rest of the partition. An OOM with one
item is :class:`OutOfMemory`, which fails the step without a retry (a retry cannot fit it either).
It is a configuration error (the model or resolution does not fit this device), so every entry
point reports it as one line naming the step, the device and the batch sizes tried; the traceback
only with ``GENZOO_DEBUG=1``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import TypeVar

from genzoo_assets.core import lease
from genzoo_assets.core.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


class OutOfMemory(InputError, RuntimeError):
    """CUDA ran out of memory with a batch of one item: this model at this size does not fit the
    device. Made by :meth:`at_batch_of_one`, which keeps ``step``, ``device`` and ``batch_size``
    (the size the step started with) as attributes; the message names them. One message argument,
    so it pickles (a demo worker's error reaches the parent process)."""

    step: str = ""
    device: str = ""
    batch_size: int = 0

    @classmethod
    def at_batch_of_one(
        cls, step: str, device: str, batch_size: int, cause: BaseException
    ) -> OutOfMemory:
        text = str(cause).strip()
        first = text.splitlines()[0] if text else type(cause).__name__
        halved = ", halved down to 1" if batch_size > 1 else ""
        error = cls(
            f"{step}: CUDA out of memory on {device} with a batch of 1 (batch_size {batch_size} at "
            f"the start of the step{halved}; {first}): use a GPU with more memory or a smaller "
            "resolution"
        )
        error.step, error.device, error.batch_size = step, device, batch_size
        return error


def step_label(stage: str, rows) -> str:
    """``stage`` and the partition its ``rows`` (a DataFrame of one species × shard) come from,
    e.g. ``images species=zebra shard=000``, for messages."""
    keys = [
        f"{column}={rows[column].iloc[0]}"
        for column in ("species", "shard")
        if column in rows.columns and len(rows)
    ]
    return " ".join([stage, *keys])


def device_name() -> str:
    """The device this process computes on, for a message: the leased one (``cuda:0 (NVIDIA
    H100 ...)``), else torch's current CUDA device, else ``the GPU``."""
    held = lease.current()
    if held is not None:
        info = held.describe()
        return f"{info.get('torch', held.torch_device)} ({info.get('name', held.device.key)})"
    try:
        import torch

        if torch.cuda.is_available():
            index = torch.cuda.current_device()
            return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    except (ImportError, RuntimeError):
        pass
    return "the GPU"


def is_cuda_oom(exc: BaseException) -> bool:
    """torch's ``OutOfMemoryError`` or an error that says "CUDA out of memory" (wrapped ones)."""
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return "CUDA out of memory" in str(exc)


def free_cuda_cache() -> None:
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class HalvingBatches:
    """Runs a batch function over items in batches of ``batch_size``, halving it on CUDA OOM.

    ``sizes`` records every batch size tried (a failed attempt too), for logs and tests. ``step``
    names the stage and partition in an :class:`OutOfMemory` message.
    """

    def __init__(
        self,
        batch_size: int,
        on_halve: Callable[[int, int], None] | None = None,
        step: str = "a generating step",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = self.initial_batch_size = batch_size
        self.on_halve = on_halve
        self.step = step
        self.sizes: list[int] = []

    def map(self, fn: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` in order, each call with at most ``batch_size`` items."""
        out: list[R] = []
        start = 0
        while start < len(items):
            chunk = items[start : start + self.batch_size]
            self.sizes.append(len(chunk))
            try:
                out.extend(fn(chunk))
                start += len(chunk)
                continue
            except Exception as exc:
                if not is_cuda_oom(exc):
                    raise
                if len(chunk) == 1:
                    raise OutOfMemory.at_batch_of_one(
                        self.step, device_name(), self.initial_batch_size, exc
                    ) from exc
            # Outside the handler: the exception's frames (and the tensors they hold) are gone.
            free_cuda_cache()
            old, self.batch_size = self.batch_size, (len(chunk) + 1) // 2  # ceil: 7 → 4 → 2 → 1
            if self.on_halve is not None:
                self.on_halve(old, self.batch_size)
        return out
