"""Resources: project-wide settings (data dir, body model, sizes, device) shared by every asset.

Defaults come from environment variables so the web UI, the schedule and the demo agree without
run config: ``GENZOO_DATA_DIR``, ``GENZOO_BODY_MODEL`` (``procedural`` or a SMAL/SMAL+ file),
``GENZOO_SAMPLES_PER_SHARD``, ``GENZOO_DATASET_SIZE``, ``GENZOO_DEVICE``, ``GENZOO_RESOLUTION``.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import dagster as dg
import pydantic
from dagster._config.field_utils import IntEnvVar

from genzoo_assets.core.paths import DataDirError, data_dir as default_data_dir


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@functools.lru_cache(maxsize=4)
def _load_body_model(spec: str):
    from genzoo_assets.core.body import load_body_model, procedural_body_model

    return procedural_body_model() if spec == "procedural" else load_body_model(spec)


class SettingError(dg.Failure, RuntimeError):
    """A Config or resource field outside its range: one line naming the field and what is allowed.

    A ``dg.Failure`` that forbids retries, because Dagster builds a step's config before the step
    body runs (``fail_fast_on_input_errors`` cannot see it), and a RuntimeError, which pydantic
    passes through unwrapped and the `genzoo` command reports as one line.
    """

    def __init__(self, message: str):
        super().__init__(description=message, allow_retries=False)


class CheckedFields:
    """Mixin for ``dg.Config`` / ``dg.ConfigurableResource``: a failed field check is a SettingError.

    Checks run where the object is built: in Python (the demo, tests) at once, and for run config
    from the web UI when Dagster builds the step's config, before the step body (``Literal``
    fields are checked even earlier, when the run is launched).
    """

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, data, handler):
        try:
            return handler(data)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            where = f".{'.'.join(str(p) for p in err['loc'])} = {err['input']!r}" if err["loc"] else ""
            raise SettingError(f"{cls.__name__}{where}: {err['msg'].removeprefix('Value error, ')}") from None


def _skip(value, kind=(int, float)) -> bool:
    """Leave to others: an ``EnvVar`` not resolved yet (checked once Dagster resolves it), and a
    value of the wrong type (pydantic's type check names it)."""
    return isinstance(value, (dg.EnvVar, IntEnvVar, bool)) or not isinstance(value, kind)


def at_least(low: float, what: str = ""):
    """A field check: ``value >= low``."""

    def check(cls, value):
        if not _skip(value) and value < low:
            raise ValueError(f"must be >= {low}{what}")
        return value

    return check


def between(low: float, high: float, what: str = "", below_high: bool = False):
    """A field check: ``low <= value <= high`` (``< high`` with ``below_high``)."""

    def check(cls, value):
        if not _skip(value) and not (low <= value < high if below_high else low <= value <= high):
            raise ValueError(f"must be in [{low}, {high}{')' if below_high else ']'}{what}")
        return value

    return check


def one_of(*choices: str):
    """A field check: ``value in choices``."""

    def check(cls, value):
        if not _skip(value, str) and value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
        return value

    return check


def existing_dir(cls, value):
    """A field check: empty, or a folder that exists."""
    if not _skip(value, str) and value and not Path(value).expanduser().is_dir():
        raise ValueError("no such folder")
    return value


def checked(*fields: str, check) -> classmethod:
    """``check`` as a pydantic validator of ``fields`` (a class attribute of a CheckedFields class).

    It runs before pydantic's own conversion, which would turn an unresolved ``EnvVar`` into 0 or "".
    """
    return pydantic.field_validator(*fields, mode="before")(classmethod(check))


RESOLUTION_RANGE = (32, 4096)  # pixels: below 32 the 64×48 regressor crop and Canny edges are empty
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(cls, value):
    if not _skip(value, str) and not DEVICE.fullmatch(value):
        raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
    return value


def check_resolution(cls, value):
    if not _skip(value) and not RESOLUTION_RANGE[0] <= value <= RESOLUTION_RANGE[1]:
        raise ValueError(f"must be in [{RESOLUTION_RANGE[0]}, {RESOLUTION_RANGE[1]}] pixels")
    return value


class GenZooSettings(CheckedFields, dg.ConfigurableResource):
    """Where outputs go and the dataset's fixed sizes; recorded in every sample's provenance."""

    data_dir: str = ""
    body_model: str = _env("GENZOO_BODY_MODEL", "procedural")
    samples_per_shard: int = int(_env("GENZOO_SAMPLES_PER_SHARD", "64"))
    dataset_size: int = int(_env("GENZOO_DATASET_SIZE", "1000000"))
    dog_fraction: float = 0.5
    resolution: int = int(_env("GENZOO_RESOLUTION", "1024"))
    base_seed: int = 0
    device: str = _env("GENZOO_DEVICE", "auto")

    _positive = checked("samples_per_shard", "dataset_size", check=at_least(1))
    _dogs = checked("dog_fraction", check=between(0.0, 1.0))
    _resolution = checked("resolution", check=check_resolution)
    _seed = checked("base_seed", check=at_least(0))
    _device = checked("device", check=check_device)

    def root(self) -> Path:
        return default_data_dir(override=self.data_dir or None)

    def body(self):
        """The body model, loaded once per process (steps of one run share it)."""
        return _load_body_model(self.body_model)

    def torch_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"

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
INPUT_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, DataDirError,
                SettingError)


def fail_fast_on_input_errors(fn):
    """Let GPU_RETRY retry only transient faults (CUDA out of memory, a lost EGL context, ...)."""

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
