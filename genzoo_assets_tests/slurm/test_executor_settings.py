"""Each step's SLURM request from its pool, op tags and per-step config (no cluster needed)."""

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from genzoo_assets.slurm.executor import (
    DEFAULT_POOLS,
    SLURM_TAG,
    pool_requests,
    run_pool,
    step_request,
    tag_request,
)
from genzoo_assets.slurm.jobs import JobRequest

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "slurm.yaml"

GPU_STEPS = ["control_renders", "captions", "prompts", "images", "regressor", "benchmark"]
CPU_STEPS = ["species", "shape_params", "pose_params", "catalog", "dataset_shards"]


@pytest.fixture(scope="module")
def all_defs() -> dg.Definitions:
    from genzoo_assets.definitions import defs

    return defs()


def _request(all_defs, asset: str, pools=None, per_step=None) -> JobRequest:
    op = all_defs.resolve_assets_def(asset).op
    return step_request(pool_requests(pools or {}), per_step or {}, op.pool, op.tags, op.name)


@pytest.mark.parametrize("asset", GPU_STEPS)
def test_gpu_steps_ask_for_one_gpu_with_cpus_and_memory_for_the_models(all_defs, asset):
    request = _request(all_defs, asset)
    assert (request.gres, request.cpus, request.mem) == ("gpu:1", 8, "64G")


@pytest.mark.parametrize("asset", CPU_STEPS)
def test_cpu_steps_ask_for_cpus_only(all_defs, asset):
    request = _request(all_defs, asset)
    assert request.gres is None and (request.cpus, request.mem) == (4, "16G")
    assert not any("gres" in o or "gpu" in o for o in request.sbatch_options())


def test_built_in_requests_match_the_example_settings():
    example = yaml.safe_load(EXAMPLE.read_text())
    for pool, request in DEFAULT_POOLS.items():
        given = example["pools"][pool]
        assert {k: given[k] for k in ("cpus", "mem")} == {k: request[k] for k in ("cpus", "mem")}
    assert example["gpu_slots"] == 200 and example["gpu_renders"] is False


def test_cpu_backends_get_the_default_request_under_slurm():
    offline = {}
    assert run_pool("gpu", "captions", offline, gpu_renders=True) is None
    assert run_pool("gpu", "prompts", offline, gpu_renders=True) is None
    assert run_pool("gpu", "images", offline, gpu_renders=False) is None
    assert run_pool("gpu", "images", offline, gpu_renders=True) == "gpu"
    assert run_pool("gpu", "control_renders", offline, gpu_renders=False) is None
    vlm = {"ops": {"captions": {"config": {"backend": "vlm"}}}}
    assert run_pool("gpu", "captions", vlm, gpu_renders=False) == "gpu"
    assert run_pool("gpu", "regressor", offline, gpu_renders=False) == "gpu"
    assert run_pool(None, "species", offline, gpu_renders=True) is None


def test_pool_settings_apply_to_their_pool_and_per_step_config_wins(all_defs):
    pools = {
        "default": {"partition": "cpu", "account": "lab", "time": "1:00:00"},
        "gpu": {"partition": "a100", "qos": "high", "cpus": 8, "mem": "64G"},
    }
    gpu = _request(all_defs, "images", pools, {"images": JobRequest(time="12:00:00")})
    assert gpu == JobRequest(
        partition="a100",
        account="lab",
        qos="high",
        time="12:00:00",
        cpus=8,
        mem="64G",
        gres="gpu:1",
    )
    cpu = _request(all_defs, "shape_params", pools)
    assert cpu == JobRequest(partition="cpu", account="lab", time="1:00:00", cpus=4, mem="16G")


def test_op_tag_overrides_the_pool_and_is_validated():
    pools = pool_requests({"gpu": {"time": "4:00:00"}})
    tags = {SLURM_TAG: json.dumps({"time": "30", "mem": "8G"})}
    assert step_request(pools, {}, "gpu", tags, "op") == JobRequest(
        cpus=8, gres="gpu:1", time="30", mem="8G"
    )
    with pytest.raises(ValueError, match="op: op tag genzoo/slurm: unknown SLURM setting"):
        tag_request({SLURM_TAG: json.dumps({"gpus": 2})}, "op")


def test_bad_pool_settings_name_the_pool():
    with pytest.raises(ValueError, match="pools.gpu: cpus='8'"):
        pool_requests({"gpu": {"cpus": "8"}})
    with pytest.raises(ValueError, match="pools.cpu: expected a mapping"):
        pool_requests({"cpu": "short"})
