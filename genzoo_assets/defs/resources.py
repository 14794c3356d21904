"""Resources: project-wide settings (data dir, body model, sizes, device) shared by every asset.

Defaults come from environment variables so the web UI, the schedule and the demo agree without
run config: ``GENZOO_DATA_DIR``, ``GENZOO_BODY_MODEL`` (``procedural`` or a SMAL/SMAL+ file),
``GENZOO_SAMPLES_PER_SHARD``, ``GENZOO_DATASET_SIZE``, ``GENZOO_DEVICE``, ``GENZOO_RESOLUTION``.
"""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path

import dagster as dg

from genzoo_assets.core.device import resolve_device
from genzoo_assets.core.paths import DataDirError, data_dir as default_data_dir


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@functools.lru_cache(maxsize=4)
def _load_body_model(spec: str):
    from genzoo_assets.core.body import resolve_body_model

    return resolve_body_model(spec)


class GenZooSettings(dg.ConfigurableResource):
    """Where outputs go and the dataset's fixed sizes; recorded in every sample's provenance."""

    data_dir: str = ""
    body_model: str = _env("GENZOO_BODY_MODEL", "procedural")
    samples_per_shard: int = int(_env("GENZOO_SAMPLES_PER_SHARD", "64"))
    dataset_size: int = int(_env("GENZOO_DATASET_SIZE", "1000000"))
    dog_fraction: float = 0.5
    resolution: int = int(_env("GENZOO_RESOLUTION", "1024"))
    base_seed: int = 0
    device: str = _env("GENZOO_DEVICE", "auto")

    def root(self) -> Path:
        return default_data_dir(override=self.data_dir or None)

    def body(self):
        """The body model, loaded once per process (steps of one run share it)."""
        return _load_body_model(self.body_model)

    def torch_device(self) -> str:
        return resolve_device(self.device)

    def shard_indices(self, shard: str) -> range:
        s = int(shard)
        return range(s * self.samples_per_shard, (s + 1) * self.samples_per_shard)


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


# GPU steps: the `gpu` pool, and on Kubernetes one pod per step requesting a GPU.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}}
    }
}
GPU_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
# Every GPU asset: the `gpu` pool locally, a GPU pod on Kubernetes, retries for transient faults.
GPU_STEP = dict(pool="gpu", op_tags=GPU_OP_TAGS, retry_policy=GPU_RETRY)

# Errors about inputs or configuration: retrying cannot help, so they fail the step at once.
INPUT_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, DataDirError)


def fail_fast_on_input_errors(fn):
    """Let GPU_RETRY retry only transient faults (CUDA out of memory, a lost EGL context, ...)."""

    if inspect.isgeneratorfunction(fn):  # multi_asset bodies that yield their results

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except INPUT_ERRORS as exc:
                raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except INPUT_ERRORS as exc:
            raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc

    return wrapper


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"settings": GenZooSettings()})
