"""CUDA out-of-memory inside a generating step: halve the batch and go on, never reload the model.

A whole-step retry reloads every weight (34 GB for FLUX) and regenerates the partition from the
start; an OOM usually means only that this batch of requests was too large for the free memory.
:class:`HalvingBatches` frees the allocator's cache and runs the same items again in halves, down
to one item at a time, and keeps the smaller size for the rest of the partition. An OOM with one
item is :class:`OutOfMemory`, which fails the step without a retry (a retry cannot fit it either).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OutOfMemory(RuntimeError):
    """CUDA ran out of memory with a batch of one item."""


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

    ``sizes`` records every batch size tried (a failed attempt too), for logs and tests.
    """

    def __init__(self, batch_size: int, on_halve: Callable[[int, int], None] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.on_halve = on_halve
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
                    raise OutOfMemory(
                        f"CUDA out of memory with a batch of 1 ({exc}); use a larger GPU or a "
                        "smaller resolution"
                    ) from exc
            # Outside the handler: the exception's frames (and the tensors they hold) are gone.
            free_cuda_cache()
            old, self.batch_size = self.batch_size, (len(chunk) + 1) // 2  # ceil: 7 → 4 → 2 → 1
            if self.on_halve is not None:
                self.on_halve(old, self.batch_size)
        return out
