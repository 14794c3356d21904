"""Models stay loaded in a process: one load per (role, location, device, dtype), reused by every
partition the process generates.

A paper-size pipeline (FLUX.1-dev + T5-XXL + two ControlNets, ~34 GB) takes tens of seconds to load
from storage; a partition of 64 images takes minutes to generate. Loading once per process instead of
once per partition is what keeps start-up and loading a small fraction of a GPU step's time. Whoever
runs many partitions in one process (a multi-partition run, a resident worker per GPU) gets the
reuse for free: every backend asks :func:`resident` for its model instead of loading it itself.

At most ``capacity`` models are held (the least recently used one is released first, and its CUDA
memory returned), so a process that switches from FLUX to Qwen-Image never holds both.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_CAPACITY = 2  # e.g. an image generator and a text model side by side on one GPU

_lock = threading.RLock()
_models: OrderedDict[Hashable, object] = OrderedDict()
_capacity = DEFAULT_CAPACITY
loads = 0  # how many times a loader ran in this process (read by tests and the bench)


def resident(key: Hashable, load: Callable[[], T]) -> T:
    """The model stored under ``key``, loaded with ``load()`` the first time it is asked for.

    ``key`` names everything the loaded object depends on, e.g.
    ``("flux", "/models/FLUX.1-dev", "cuda:1", "bfloat16")``: two keys never share an object.
    """
    global loads
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]  # type: ignore[return-value]
        while len(_models) >= _capacity:
            _release(next(iter(_models)))
        model = load()
        loads += 1
        _models[key] = model
        return model


def set_capacity(capacity: int) -> None:
    """How many models a process may hold at once (at least 1); extra ones are released now."""
    global _capacity
    if capacity < 1:
        raise ValueError(f"residency capacity must be at least 1, got {capacity}")
    with _lock:
        _capacity = capacity
        while len(_models) > _capacity:
            _release(next(iter(_models)))


def held() -> list[Hashable]:
    """The keys of the models held now, least recently used first."""
    with _lock:
        return list(_models)


def release_all() -> None:
    """Drop every model (tests; a process that is about to do something else with its GPU)."""
    with _lock:
        for key in list(_models):
            _release(key)


def _release(key: Hashable) -> None:
    del _models[key]
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
