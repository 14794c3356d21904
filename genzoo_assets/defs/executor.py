"""Which executor runs a run's steps: SLURM jobs, Kubernetes pods, or local processes.

``GENZOO_EXECUTOR`` picks it when the definitions are loaded (inside the ``@dg.definitions``
function, never at import):

- ``multiprocess`` (default): local processes, at most ``GENZOO_MAX_CONCURRENT`` (default: the CPU
  count) at a time; the instance's ``gpu`` pool still lets only as many GPU steps run as there are
  GPUs, and a step whose backend runs on the CPU in this run takes no ``gpu`` slot
  (``defs.gpu.step_needs_gpu``); each GPU step leases its own device (``core.lease``).
- ``in_process``: every step in the run's own process: no per-step interpreter start (~10 s each on
  a busy 2-core machine), for small partitions and debugging.
- ``k8s``: ``k8s_job_executor``, every step its own Kubernetes Job; the GPU stages'
  ``dagster-k8s/config`` op tags (``GPU_OP_TAGS``) make their pods request one ``nvidia.com/gpu``.
- ``slurm``: ``genzoo_assets.slurm.executor.slurm_executor``, every step a SLURM batch job; GPU
  steps that use a GPU in the run (pool ``gpu`` and ``defs.gpu.step_needs_gpu``) ask for
  ``--gres=gpu:1`` and the ``gpu`` pool's CPUs and memory. Its settings (per-pool partition, account, QoS,
  time, CPUs, memory; jobs in flight) come from the YAML file named by ``GENZOO_SLURM_CONFIG``
  (optional; see ``deploy/slurm/README.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.definitions.executor_definition import (
    MULTI_PROC_CONFIG,
    _core_multiprocess_executor_creation,
    multiple_process_executor_requirements,
)
from dagster._core.executor.multiprocess import MultiprocessExecutor

from genzoo_assets.core.errors import InputError
from genzoo_assets.defs.gpu import local_renders_on_gpu, without_gpu_pool_for_cpu_steps

EXECUTOR_ENV = "GENZOO_EXECUTOR"
MAX_CONCURRENT_ENV = "GENZOO_MAX_CONCURRENT"
SLURM_CONFIG_ENV = "GENZOO_SLURM_CONFIG"
EXECUTOR_KINDS = ("multiprocess", "k8s", "slurm", "in_process")


def max_concurrent(env: Mapping[str, str]) -> int:
    raw = env.get(MAX_CONCURRENT_ENV) or str(os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(
            f"{MAX_CONCURRENT_ENV}={raw!r}: expected a positive integer (steps run at once)"
        )
    return value


def slurm_config(env: Mapping[str, str]) -> dict:
    """The SLURM executor's config from ``GENZOO_SLURM_CONFIG`` (a YAML mapping; none: defaults),
    checked now so that a bad setting fails the code location's load, naming the file."""
    from genzoo_assets.slurm.executor import SLURM_EXECUTOR_CONFIG, pool_requests

    path = env.get(SLURM_CONFIG_ENV)
    if not path:
        return {}
    where = f"{SLURM_CONFIG_ENV}={path}"
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: cannot read it as YAML ({exc})") from exc
    config = config or {}
    if not isinstance(config, dict):
        raise InputError(f"{where}: expected a mapping of executor settings")
    unknown = sorted(set(config) - set(SLURM_EXECUTOR_CONFIG))
    if unknown:
        raise InputError(
            f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(SLURM_EXECUTOR_CONFIG)})"
        )
    pool_requests(config.get("pools") or {}, f"{where}: pools")
    return config


class GpuAwareMultiprocessExecutor(MultiprocessExecutor):
    """Dagster's multiprocess executor, with no ``gpu`` slot claimed for steps that run on the CPU."""

    def execute(self, plan_context, execution_plan):
        plan = without_gpu_pool_for_cpu_steps(
            execution_plan, plan_context.dagster_run.run_config, local_renders_on_gpu()
        )
        yield from super().execute(plan_context, plan)


@dg.executor(
    name="multiprocess",
    config_schema=MULTI_PROC_CONFIG,
    requirements=multiple_process_executor_requirements(),
)
def gpu_aware_multiprocess_executor(init_context) -> GpuAwareMultiprocessExecutor:
    """``multiprocess_executor`` (same config) as a :class:`GpuAwareMultiprocessExecutor`."""
    executor = _core_multiprocess_executor_creation(init_context.executor_config)
    executor.__class__ = GpuAwareMultiprocessExecutor  # a subclass that adds no state
    return executor


def select_executor(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``GENZOO_EXECUTOR`` (``multiprocess`` when unset) in ``env``
    (default: the process environment, read now)."""
    env = os.environ if env is None else env
    kind = (env.get(EXECUTOR_ENV) or "multiprocess").strip().lower()
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if kind == "slurm":
        from genzoo_assets.slurm.executor import slurm_executor

        return slurm_executor.configured(slurm_config(env), name="genzoo_slurm")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return gpu_aware_multiprocess_executor.configured(
            {"max_concurrent": max_concurrent(env)}, name="genzoo_multiprocess"
        )
    raise InputError(f"{EXECUTOR_ENV}={kind!r}: expected one of {', '.join(EXECUTOR_KINDS)}")


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=select_executor())
