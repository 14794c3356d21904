"""Which steps of the ``gpu`` pool use a GPU in a given run, and the device lease around them.

The pool is a property of the asset (the graph and the UI stay one readable picture), but whether a
step touches a GPU depends on its run config's backend: the offline captioner (``geometric``) and
prompter (``template``) run on the CPU, and renders (control renders, the ``render`` image backend)
use the GPU only where EGL is a GPU's. :func:`step_needs_gpu` decides it from the op's config, and
both sides use it:

- the orchestrator (``defs.executor``'s executors): a step that needs no GPU takes no ``gpu`` slot,
  and under SLURM asks for no GPU (its job gets the ``default`` pool's request);
- the step itself (:func:`on_leased_gpu`): a step that needs one holds a device lease
  (:mod:`genzoo_assets.core.lease`) for its whole body, and names the device in its
  materialisation metadata.

Renders count as GPU work where the process sees leasable devices and NVIDIA's EGL (a host whose
EGL is software renders on the CPU and takes no slot); under SLURM only with the executor's
``gpu_renders: true``, since the submit host cannot see the compute nodes' EGL.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg

from genzoo_assets.core import lease


@dataclass(frozen=True)
class BackendRule:
    """An op's backends: its default, those that run on the CPU, those that render with EGL."""

    default: str
    cpu: frozenset[str] = frozenset()
    render: frozenset[str] = frozenset()


GPU_POOL = "gpu"
RENDER = "render"
RULES = {
    "control_renders": BackendRule(RENDER, render=frozenset({RENDER})),
    "captions": BackendRule("geometric", cpu=frozenset({"geometric"})),
    "prompts": BackendRule("template", cpu=frozenset({"template"})),
    "images": BackendRule(RENDER, render=frozenset({RENDER, "render_composite"})),
}


def step_needs_gpu(op_name: str, op_config: Mapping | None, renders_on_gpu: bool) -> bool:
    """Whether a ``gpu``-pool step uses a GPU with this config (steps without a rule always do)."""
    rule = RULES.get(op_name)
    if rule is None:
        return True
    backend = (op_config or {}).get("backend") or rule.default
    if backend in rule.render:
        return renders_on_gpu
    return backend not in rule.cpu


def op_config(run_config: Mapping, op_name: str) -> Mapping:
    """``ops.<op_name>.config`` of a run config (empty when not given: the op's defaults)."""
    ops = run_config.get("ops") or {}
    return (ops.get(op_name) or {}).get("config") or {}


def local_renders_on_gpu(egl_devices: Callable[[], list] | None = None) -> bool:
    """Renders go to a GPU where this process sees devices to lease and EGL is a GPU's: NVIDIA's
    EGL lists its devices with ``EGL_CUDA_DEVICE_NV``; Mesa's software EGL (llvmpipe) does not.
    Fake devices (``GENZOO_FAKE_GPUS``) count as GPUs, so the tests exercise the lease."""
    devices = lease.visible_devices()
    if not devices:
        return False
    if devices[0].fake:
        return True
    if egl_devices is None:
        from genzoo_assets.core.render.egl_device import query_egl_devices as egl_devices
    return any(d.cuda_device is not None for d in egl_devices())


def _device_metadata(context: dg.AssetExecutionContext, held: lease.Lease) -> None:
    meta = {"device": dg.MetadataValue.json(held.describe())}
    for key in context.selected_asset_keys:
        context.add_asset_metadata(meta, asset_key=key)


def _lease_for(context: dg.AssetExecutionContext):
    """The lease context for this step: a device when it needs one, nothing otherwise."""
    op = context.op_execution_context
    needs = step_needs_gpu(op.op_def.name, op.op_config, local_renders_on_gpu())
    if not needs:
        return lease.hold(devices=[])
    return lease.hold(
        on_wait=lambda n: context.log.info(f"all {n} GPUs are leased: waiting for one to free")
    )


def on_leased_gpu(fn):
    """Run a GPU asset's body holding one device (plain and generator bodies alike)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(context, *args, **kwargs):
            with _lease_for(context) as held:
                if held is not None:
                    _device_metadata(context, held)
                yield from fn(context, *args, **kwargs)

        return generator

    @functools.wraps(fn)
    def wrapper(context, *args, **kwargs):
        with _lease_for(context) as held:
            if held is not None:
                _device_metadata(context, held)
            return fn(context, *args, **kwargs)

    return wrapper


def without_gpu_pool_for_cpu_steps(plan, run_config: Mapping, renders_on_gpu: bool):
    """``plan`` (a Dagster ``ExecutionPlan``) with ``pool=None`` on the ``gpu`` steps that need no
    GPU in this run, so the orchestrator claims no ``gpu`` slot for them; others as they were."""
    from dagster._core.execution.plan.step import ExecutionStep

    changed = {
        handle: step._replace(pool=None)
        for handle, step in plan.step_dict.items()
        if isinstance(step, ExecutionStep)
        and step.pool == GPU_POOL
        and not step_needs_gpu(step.op_name, op_config(run_config, step.op_name), renders_on_gpu)
    }
    if not changed:
        return plan
    steps = {**plan.step_dict, **changed}
    return plan._replace(step_dict=steps, step_dict_by_key={s.key: s for s in steps.values()})
