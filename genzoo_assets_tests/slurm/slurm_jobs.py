"""Test-only jobs for the SLURM executor (never part of the product's definitions).

``per_sample_job``: the product's per-sample assets (and ``species``) on ``slurm_executor``;
``slow_job``: one asset that sleeps, with a one-minute SLURM time limit from its op tag, for the
cancel, time-limit and node-failure tests; ``gpu_partitions_job``: a partitioned GPU step that
sleeps (GPU jobs side by side); ``offline_*``: the offline pipeline's stages over the product's
own definitions. All are module-level functions so that ``dg.reconstructable`` can rebuild them
inside each SLURM job.
"""

import os
import time

import dagster as dg

from genzoo_assets.defs.gpu import on_leased_gpu
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


GPU_PARTITIONS = dg.StaticPartitionsDefinition(["0", "1", "2", "3"])


class GpuSleepConfig(dg.Config):
    seconds: float = 20.0


@dg.asset(partitions_def=GPU_PARTITIONS, pool="gpu", op_tags={SLURM_TAG: {"time": "5"}})
@on_leased_gpu
def gpu_sleep(context: dg.AssetExecutionContext, config: GpuSleepConfig) -> dg.MaterializeResult:
    """A GPU step that holds its job for ``seconds`` and records when, and which GPU SLURM gave it."""
    start = time.time()
    time.sleep(config.seconds)
    return dg.MaterializeResult(
        metadata={
            "start": start,
            "end": time.time(),
            "slurm_job_gpus": os.environ.get("SLURM_JOB_GPUS", ""),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }
    )


def gpu_partitions_job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=[gpu_sleep],
        executor=slurm_executor,
        jobs=[dg.define_asset_job("gpu_partitions", selection=[gpu_sleep])],
    ).resolve_job_def("gpu_partitions")


OFFLINE_STAGES = {
    "offline_species": ["species"],
    "offline_per_sample": PER_SAMPLE,
    "offline_export": ["catalog", "dataset_shards"],
}


def _product_job(name: str) -> dg.JobDefinition:
    """A job over the product's own definitions as the code location loads them (GENZOO_EXECUTOR
    picks the executor)."""
    from genzoo_assets.definitions import defs

    job = dg.define_asset_job(name, selection=OFFLINE_STAGES[name])
    return dg.Definitions.merge(defs(), dg.Definitions(jobs=[job])).resolve_job_def(name)


def offline_species() -> dg.JobDefinition:
    return _product_job("offline_species")


def offline_per_sample() -> dg.JobDefinition:
    return _product_job("offline_per_sample")


def offline_export() -> dg.JobDefinition:
    return _product_job("offline_export")
