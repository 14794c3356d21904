"""The project-local Dagster instance used by the CLI, the demo and the web UI.

``DAGSTER_HOME`` defaults to ``./.dagster_home`` so runs from `genzoo demo` show up in `genzoo ui`.
The instance's ``dagster.yaml`` comes from the repository root (telemetry off, pools limited to 1,
run monitoring on) and the ``gpu`` pool is set to what the hardware offers (:func:`configure_pools`):
the number of leasable GPUs for local runs, SLURM's ``gpu_slots`` with ``GENZOO_EXECUTOR=slurm``.
Opening it frees the pool slots of dead runs (`genzoo_assets.defs.pool_slots`), one line each on
stderr.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import yaml

from genzoo_assets.core.paths import file_lock, write_bytes_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_POOL = "gpu"
DUCKDB_POOL = "duckdb"
MAX_RUNS_ENV = "GENZOO_MAX_CONCURRENT_RUNS"
AUTO_MARKER = ".gpu_pool_auto"  # the gpu limit configure_pools set last


def dagster_home(env: Mapping[str, str] | None = None) -> Path:
    """``$DAGSTER_HOME`` or ``./.dagster_home``, created with the repository's ``dagster.yaml``;
    ``GENZOO_MAX_CONCURRENT_RUNS`` (when set) becomes its run-concurrency cap."""
    env = os.environ if env is None else env
    home = Path(env.get("DAGSTER_HOME") or ".dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = REPO_ROOT / "dagster.yaml"
    if not config.exists() and template.exists():
        shutil.copyfile(template, config)
    if env.get(MAX_RUNS_ENV):
        set_max_concurrent_runs(config, env[MAX_RUNS_ENV])
    return home


def set_max_concurrent_runs(config: Path, raw: str) -> None:
    """``concurrency.runs.max_concurrent_runs`` in the instance's ``dagster.yaml`` (-1: no cap)."""
    try:
        value = int(raw)
    except ValueError:
        value = -2
    if value < -1:
        raise ValueError(f"{MAX_RUNS_ENV}={raw!r}: expected a run count (-1: no limit)")
    settings = (yaml.safe_load(config.read_text()) if config.exists() else None) or {}
    runs = settings.setdefault("concurrency", {}).setdefault("runs", {})
    if runs.get("max_concurrent_runs") != value:
        runs["max_concurrent_runs"] = value
        write_bytes_atomic(config, yaml.safe_dump(settings, sort_keys=False).encode())


def gpu_slots(env: Mapping[str, str] | None = None, cpu_slots: int = 1) -> int:
    """The ``gpu`` pool's limit this host and executor call for.

    SLURM (``GENZOO_EXECUTOR=slurm``): the executor settings' ``gpu_slots`` (GPU jobs in flight
    across runs; SLURM itself places them on free GPUs). Locally: one slot per leasable device
    (:func:`genzoo_assets.core.lease.visible_devices`), or ``cpu_slots`` without any: there the
    pool's steps run on the CPU, where it guards no device memory.
    """
    from genzoo_assets.core.lease import visible_devices
    from genzoo_assets.defs.executor import EXECUTOR_ENV, slurm_config
    from genzoo_assets.slurm.executor import DEFAULT_GPU_SLOTS

    env = os.environ if env is None else env
    if (env.get(EXECUTOR_ENV) or "").strip().lower() == "slurm":
        return int(slurm_config(env).get("gpu_slots", DEFAULT_GPU_SLOTS))
    return len(visible_devices(env)) or max(1, cpu_slots)


def _pool_limit(instance: dg.DagsterInstance, pool: str) -> int | None:
    """The limit someone set on ``pool`` (``None``: unset, or only the instance's default)."""
    for limit in instance.event_log_storage.get_pool_limits():
        if limit.name == pool and not limit.from_default:
            return limit.limit
    return None


def configure_pools(
    instance: dg.DagsterInstance, cpu_slots: int = 1, env: Mapping[str, str] | None = None
) -> None:
    """The ``gpu`` pool at :func:`gpu_slots` and one ``duckdb`` slot, never overriding a person.

    The limit this function last set is kept in ``$DAGSTER_HOME/.gpu_pool_auto``; a ``gpu`` limit
    that differs from it was set by someone (the UI, ``dagster instance concurrency set``) and is
    left as it is, so a command that merely opens the instance never lowers it.
    """
    wanted = gpu_slots(env, cpu_slots)
    current = _pool_limit(instance, GPU_POOL)
    marker = Path(instance.root_directory) / AUTO_MARKER if instance.root_directory else None
    ours = None
    if marker is not None and marker.exists():
        text = marker.read_text().strip()
        ours = int(text) if text.isdigit() else None
    if current is None or current == ours:
        if current != wanted:
            instance.event_log_storage.set_concurrency_slots(GPU_POOL, wanted)
        if marker is not None and ours != wanted:
            marker.write_text(f"{wanted}\n")
    if _pool_limit(instance, DUCKDB_POOL) is None:
        instance.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 1)


def project_instance() -> dg.DagsterInstance:
    """The instance in :func:`dagster_home`, opened from its folder (this process's environment is left as is)."""
    from genzoo_assets.defs.pool_slots import free_dead_slots

    home = dagster_home()
    # Two commands opening a fresh home at once would both create (migrate) its sqlite storage and
    # fail with alembic's "more than one head": the first one creates it under this lock.
    with file_lock(home / ".instance.lock"):
        instance = dg.DagsterInstance.from_config(str(home))
    configure_pools(instance)
    free_dead_slots(instance)
    return instance
