"""Test-only job: eight independent GPU steps under the product's multiprocess executor, each
recording the device it leased and when (module-level so ``dg.reconstructable`` rebuilds it)."""

import time

import dagster as dg

from genzoo_assets.core import lease
from genzoo_assets.defs.executor import gpu_aware_multiprocess_executor
from genzoo_assets.defs.gpu import on_leased_gpu

STEPS = 8


def _gpu_step(i: int) -> dg.AssetsDefinition:
    @dg.asset(name=f"gpu_step_{i}", pool="gpu")
    @on_leased_gpu
    def step(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        held = lease.current()
        time.sleep(2.0)
        return dg.MaterializeResult(
            metadata={"leased": held.device.key if held else "", "end": time.time()}
        )

    return step


def eight_gpu_steps() -> dg.JobDefinition:
    assets = [_gpu_step(i) for i in range(STEPS)]
    return dg.Definitions(
        assets=assets,
        executor=gpu_aware_multiprocess_executor,
        jobs=[dg.define_asset_job("eight_gpu_steps", selection=assets)],
    ).resolve_job_def("eight_gpu_steps")
