"""Test-only jobs for the SLURM executor (never part of the product's definitions).

``per_sample_job``: the product's per-sample assets (and ``species``) on ``slurm_executor``;
``slow_job``: one asset that sleeps, with a one-minute SLURM time limit from its op tag, for the
cancel, time-limit and node-failure tests. Both are module-level functions so that
``dg.reconstructable`` can rebuild them inside each SLURM job.
"""

import time

import dagster as dg

from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.slurm.executor import SLURM_TAG, slurm_executor

PER_SAMPLE = ["shape_params", "pose_params", "control_renders", "captions", "prompts", "images"]


class SlowConfig(dg.Config):
    seconds: float = 1.0  # first attempt; retries sleep 0 s
    marker: str = ""  # a file written once the sleep starts (the test waits for it)


@dg.asset(op_tags={SLURM_TAG: {"time": "1"}}, retry_policy=dg.RetryPolicy(max_retries=1))
def slow(context: dg.AssetExecutionContext, config: SlowConfig) -> dg.MaterializeResult:
    if config.marker:
        open(config.marker, "w").close()
    end = time.monotonic() + (config.seconds if context.retry_number == 0 else 0.0)
    while time.monotonic() < end:
        time.sleep(0.2)
    return dg.MaterializeResult(metadata={"retry_number": context.retry_number})


def per_sample_assets() -> list[dg.AssetsDefinition]:
    from genzoo_assets.defs.images import images
    from genzoo_assets.defs.render import control_renders
    from genzoo_assets.defs.sampling import pose_params, shape_params
    from genzoo_assets.defs.text import captions, prompts

    return [shape_params, pose_params, control_renders, captions, prompts, images]


def _defs() -> dg.Definitions:
    from genzoo_assets.defs.species import species

    return dg.Definitions(
        assets=[species, *per_sample_assets(), slow],
        resources={"settings": GenZooSettings()},
        executor=slurm_executor,
        jobs=[
            dg.define_asset_job("per_sample", selection=PER_SAMPLE),
            dg.define_asset_job("slow_job", selection=[slow]),
        ],
    )


def per_sample_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("per_sample")


def slow_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("slow_job")
