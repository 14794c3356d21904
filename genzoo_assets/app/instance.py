"""The project-local Dagster instance used by the CLI, the demo and the web UI.

``DAGSTER_HOME`` defaults to ``./.dagster_home`` so runs from `genzoo demo` show up in `genzoo ui`.
The instance's ``dagster.yaml`` comes from the repository root (telemetry off, pools limited to 1,
run monitoring on) and the ``gpu`` pool is raised to the number of local GPUs
(:func:`configure_pools`). Opening it frees the pool slots of dead runs
(`genzoo_assets.defs.pool_slots`), one line each on stderr.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from genzoo_assets.core.paths import file_lock

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_POOL = "gpu"
DUCKDB_POOL = "duckdb"


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` or ``./.dagster_home``, created with the repository's ``dagster.yaml``."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = REPO_ROOT / "dagster.yaml"
    if not config.exists() and template.exists():
        shutil.copyfile(template, config)
    return home


def configure_pools(instance: dg.DagsterInstance, cpu_slots: int = 1) -> None:
    """One ``gpu`` slot per local GPU, or ``cpu_slots`` where there is none; one ``duckdb`` slot.

    Without a GPU the ``gpu`` pool's steps run on the CPU, where the pool guards no device memory:
    `genzoo demo` gives it one slot per generation worker and sets it back to 1 when it is done.
    """
    from genzoo_assets.defs.resources import gpu_count

    instance.event_log_storage.set_concurrency_slots(GPU_POOL, gpu_count() or max(1, cpu_slots))
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
