"""Resources: project-wide settings (data dir, body model, sizes, device) shared by every asset.

The fields' defaults are plain values; the code location binds each field whose variable is set
to ``dg.EnvVar`` (dagster-open-platform's pattern), so the web UI shows where a value comes from
and a run resolves it in its own process: ``GENZOO_DATA_DIR``, ``GENZOO_BODY_MODEL``
(``procedural`` or a SMAL/SMAL+ file), ``GENZOO_SAMPLES_PER_SHARD``, ``GENZOO_DATASET_SIZE``,
``GENZOO_DEVICE``, ``GENZOO_RESOLUTION``, ``GENZOO_SUBDIVISIONS``. The CLI and the demo build the resource themselves
(:func:`settings_from_env` plus their own options) and pass it in; nothing writes ``os.environ``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pydantic
from dagster._config.field_utils import IntEnvVar
from dagster._core.errors import DagsterExecutionInterruptedError

from genzoo_assets.core.device import DeviceError, resolve_device
from genzoo_assets.core.errors import InputError, is_input_error, one_line
from genzoo_assets.core.lease import LeaseError, visible_devices
from genzoo_assets.core.oom import OutOfMemory
from genzoo_assets.core.paths import data_dir as default_data_dir

# GenZooSettings field -> the environment variable that sets it.
SETTINGS_ENV = {
    "data_dir": "GENZOO_DATA_DIR",
    "body_model": "GENZOO_BODY_MODEL",
    "samples_per_shard": "GENZOO_SAMPLES_PER_SHARD",
    "dataset_size": "GENZOO_DATASET_SIZE",
    "resolution": "GENZOO_RESOLUTION",
    "subdivisions": "GENZOO_SUBDIVISIONS",
    "device": "GENZOO_DEVICE",
}
_INT_FIELDS = {"samples_per_shard", "dataset_size", "resolution", "subdivisions"}
# Animal3DRelease field -> its environment variable.
ANIMAL3D_ENV = {
    "animal3d_json": "GENZOO_ANIMAL3D_JSON",
    "animal3d_smal_model": "GENZOO_ANIMAL3D_SMAL_MODEL",
}


@functools.lru_cache(maxsize=4)
def _load_body_model(spec: str):
    from genzoo_assets.core.body import resolve_body_model

    return resolve_body_model(spec)


class SettingError(dg.Failure, InputError):
    """A Config or resource field outside its range: one line naming the field and what is allowed.

    An InputError (the `genzoo` command reports it as one line) and a ``dg.Failure`` that forbids
    retries, because Dagster builds a step's config before the step body runs
    (``fail_fast_on_input_errors`` cannot see it).
    """

    def __init__(self, message: str):
        super().__init__(description=message, allow_retries=False)

    def __str__(self) -> str:
        return self.description or ""


def _describe(cls: type, exc: pydantic.ValidationError) -> str:
    """The first of pydantic's errors as one line: ``Class.field = value: what is allowed``."""
    err = exc.errors()[0]
    where = f".{'.'.join(str(p) for p in err['loc'])} = {err['input']!r}" if err["loc"] else ""
    return f"{cls.__name__}{where}: {err['msg'].removeprefix('Value error, ')}"


class CheckedFields:
    """Mixin for ``dg.Config`` / ``dg.ConfigurableResource``: a failed field check is a SettingError.

    Checks run where the object is built: in Python (the demo, tests) at once, and for run config
    from the web UI when Dagster builds the step's config, before the step body (``Literal``
    fields are checked even earlier, when the run is launched). The SettingError is raised here,
    outside pydantic, which would wrap any ValueError (an InputError is one) raised inside it.
    """

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise SettingError(_describe(type(self), exc)) from None


def _skip(value, kind=(int, float)) -> bool:
    """Leave to others: an ``EnvVar`` not resolved yet (checked once Dagster resolves it), and a
    value of the wrong type (pydantic's type check names it)."""
    return isinstance(value, (dg.EnvVar, IntEnvVar, bool)) or not isinstance(value, kind)


def at_least(low: float, what: str = ""):
    """A field check: ``value >= low`` and finite (NaN passes every ``<`` comparison)."""

    def check(cls, value):
        if not _skip(value) and not math.isfinite(value):
            raise ValueError(f"must be a finite number >= {low}{what}")
        if not _skip(value) and value < low:
            raise ValueError(f"must be >= {low}{what}")
        return value

    return check


def between(low: float, high: float, what: str = "", below_high: bool = False):
    """A field check: ``low <= value <= high`` (``< high`` with ``below_high``); NaN is refused."""

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

    data_dir: str = ""  # "": $GENZOO_DATA_DIR of the process, else ./data (core.paths.data_dir)
    body_model: str = "procedural"
    samples_per_shard: int = 64
    dataset_size: int = 1_000_000
    dog_fraction: float = 0.5
    resolution: int = 1024
    # Loop subdivisions of the body mesh before it is drawn (control renders and render-composite
    # images alike). GenZoo's 2 suit its 1024 px renders; at 128 px even the base mesh's triangles
    # are smaller than a pixel, and each subdivision quadruples the triangles llvmpipe sets up.
    subdivisions: int = 2
    base_seed: int = 0
    device: str = "auto"

    _positive = checked("samples_per_shard", "dataset_size", check=at_least(1))
    _dogs = checked("dog_fraction", check=between(0.0, 1.0))
    _resolution = checked("resolution", check=check_resolution)
    _subdivisions = checked("subdivisions", check=between(0, 4))
    _seed = checked("base_seed", check=at_least(0))
    _device = checked("device", check=check_device)

    def root(self) -> Path:
        return default_data_dir(override=self.data_dir or None)

    def body(self):
        """The body model: read from its file once per process, and a copy of its own for every
        caller, so a step that moves it to a device (training, prediction) never moves the model
        another step of the same process is using."""
        return copy.deepcopy(_load_body_model(self.body_model))

    def torch_device(self) -> str:
        return resolve_device(self.device)

    def shard_indices(self, shard: str) -> range:
        s = int(shard)
        return range(s * self.samples_per_shard, (s + 1) * self.samples_per_shard)


def gpu_count() -> int:
    """Devices a step here may lease (``GENZOO_FAKE_GPUS`` counts; see ``core.lease``)."""
    return len(visible_devices())


# GPU steps: the `gpu` pool, and on Kubernetes one pod per step requesting a GPU.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
        }
    }
}
GPU_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
# Every GPU asset: the `gpu` pool locally, a GPU pod on Kubernetes, retries for transient faults.
GPU_STEP = dict(pool="gpu", op_tags=GPU_OP_TAGS, retry_policy=GPU_RETRY)

INTERRUPTED = "interrupted by a signal (SIGTERM or SIGINT): the step is not retried"
# The hardware, not a transient fault: no usable CUDA in a GPU allocation, no lease, an OOM with a
# batch of one. Retrying cannot help, so they fail the step at once, like input errors.
NOT_RETRIED = (DeviceError, LeaseError, OutOfMemory)


def _no_retry(exc: BaseException) -> dg.Failure:
    """``exc`` as a step failure that is never retried, its message on one line."""
    return dg.Failure(description=f"{type(exc).__name__}: {one_line(exc)}", allow_retries=False)


def _classify(exc: BaseException) -> None:
    """Raise ``exc`` as a failure that is not retried when retrying cannot help; else return.

    An input or configuration error (:func:`genzoo_assets.core.errors.is_input_error`: an
    InputError, or an OSError about a path), a hardware error (``NOT_RETRIED``), and an
    interrupt: Dagster turns SIGTERM and SIGINT into an interrupt of the running step, and a retry
    policy would run the step again, so a stopped command or a run terminated in the UI would go on.
    """
    if isinstance(exc, (KeyboardInterrupt, DagsterExecutionInterruptedError)):
        raise dg.Failure(description=INTERRUPTED, allow_retries=False) from exc
    if isinstance(exc, dg.Failure) or not isinstance(exc, Exception):
        return
    if isinstance(exc, NOT_RETRIED) or is_input_error(exc):
        raise _no_retry(exc) from exc


def fail_fast_on_input_errors(fn):
    """Let GPU_RETRY retry only transient faults (CUDA out of memory, a lost EGL context, ...).

    Input errors and interrupts fail the step at once (:func:`_classify`). A builtin
    ``ValueError``, ``TypeError`` or ``KeyError`` is a bug and keeps the retry policy and its
    traceback. Works on plain asset bodies and on generator bodies (multi_assets that yield).
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except BaseException as exc:
                _classify(exc)
                raise

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            _classify(exc)
            raise

    return wrapper


class Animal3DRelease(dg.ConfigurableResource):
    """Where this deployment keeps Animal3D's release; the benchmark's run config overrides it."""

    animal3d_json: str = ""  # Animal3D's test.json
    animal3d_smal_model: str = ""  # SMAL's 41-beta model file: Animal3D's ground truth


def _env_bound(env: Mapping[str, str], fields: Mapping[str, str], ints=frozenset()) -> dict:
    return {
        field: (dg.EnvVar.int(var) if field in ints else dg.EnvVar(var))
        for field, var in fields.items()
        if env.get(var)
    }


def settings_from_env(env: Mapping[str, str] | None = None, **overrides) -> GenZooSettings:
    """Settings with the values of the ``GENZOO_*`` variables set in ``env`` (default: this process's),
    then ``overrides`` (e.g. the CLI's ``--data-dir``); for code that runs outside a Dagster run."""
    env = os.environ if env is None else env
    values = {field: env[var] for field, var in SETTINGS_ENV.items() if env.get(var)}
    for field in _INT_FIELDS & set(values):
        try:
            values[field] = int(values[field])
        except ValueError:
            raise InputError(f"{SETTINGS_ENV[field]}={values[field]!r} is not an integer") from None
    return GenZooSettings(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def settings_resource(env: Mapping[str, str] | None = None) -> GenZooSettings:
    """The code location's resource: a ``dg.EnvVar`` for each ``GENZOO_*`` variable set where the code
    location loads, the field's default otherwise; runs resolve the variables in their own process."""
    return GenZooSettings(
        **_env_bound(os.environ if env is None else env, SETTINGS_ENV, _INT_FIELDS)
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "settings": settings_resource(),
            "animal3d": Animal3DRelease(**_env_bound(os.environ, ANIMAL3D_ENV)),
        }
    )
