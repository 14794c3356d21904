"""GPU steps: which need a GPU per backend, no gpu slot for CPU backends, the lease around a step."""

import dagster as dg
import pytest
import torch
from dagster._core.execution.api import create_execution_plan

from genzoo_assets.core import lease
from genzoo_assets.defs.gpu import (
    RULES,
    on_leased_gpu,
    step_needs_gpu,
    without_gpu_pool_for_cpu_steps,
)
from genzoo_assets.defs.images import ImageConfig
from genzoo_assets.defs.resources import GenZooSettings, fail_fast_on_input_errors
from genzoo_assets.defs.text import CaptionConfig, PromptConfig


def test_the_rules_defaults_are_the_configs_defaults():
    assert RULES["captions"].default == CaptionConfig().backend
    assert RULES["prompts"].default == PromptConfig().backend
    assert RULES["images"].default == ImageConfig().backend


@pytest.mark.parametrize(
    "op, config, renders_on_gpu, needs",
    [
        ("captions", {}, True, False),
        ("captions", {"backend": "vlm"}, False, True),
        ("prompts", {"backend": "template"}, True, False),
        ("prompts", {"backend": "llm"}, False, True),
        ("images", {}, False, False),
        ("images", {}, True, True),
        ("images", {"backend": "flux_controlnet"}, False, True),
        ("control_renders", {}, False, False),
        ("control_renders", {}, True, True),
        ("regressor", {}, False, True),
        ("benchmark", {"anything": 1}, False, True),
    ],
)
def test_a_step_needs_a_gpu_by_its_backend(op, config, renders_on_gpu, needs):
    assert step_needs_gpu(op, config, renders_on_gpu) is needs


def test_cpu_backed_steps_leave_the_gpu_pool_in_the_plan(all_defs):
    job = all_defs.resolve_implicit_global_asset_job_def()
    selection = ["captions", "prompts", "images", "regressor"]
    job = job.get_subset(asset_selection={dg.AssetKey(k) for k in selection})
    run_config = {"ops": {"prompts": {"config": {"backend": "llm"}}}}
    plan = create_execution_plan(job, run_config=run_config)
    pools = {s.key: s.pool for s in plan.get_all_steps_in_topo_order()}
    assert set(pools.values()) == {"gpu"}
    rewritten = without_gpu_pool_for_cpu_steps(plan, run_config, renders_on_gpu=False)
    pools = {s.key: s.pool for s in rewritten.get_all_steps_in_topo_order()}
    assert pools == {"captions": None, "prompts": "gpu", "images": None, "regressor": "gpu"}
    assert rewritten.get_step_by_key("images").pool is None


def _gpu_asset(seen: list):
    @dg.asset(pool="gpu")
    @fail_fast_on_input_errors
    @on_leased_gpu
    def on_gpu(context: dg.AssetExecutionContext, settings: GenZooSettings):
        seen.append((settings.torch_device(), lease.current()))
        return dg.MaterializeResult(metadata={"num_samples": 1})

    return on_gpu


def _materialization(result, key="on_gpu"):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [key]]
    return event.materialization.metadata


def test_a_gpu_step_holds_a_fake_device_and_records_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_FAKE_GPUS", "4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    monkeypatch.setenv("GENZOO_GPU_LOCK_DIR", str(tmp_path))
    seen = []
    result = dg.materialize([_gpu_asset(seen)], resources={"settings": GenZooSettings()})
    assert result.success
    ((device, held),) = seen
    assert device == "cpu" and held.device.key == "2"
    recorded = _materialization(result)["device"].value
    assert (
        recorded["index"] == 0
        and recorded["visible_id"] == "2"
        and "fake GPU 2" in recorded["name"]
    )
    assert _materialization(result)["num_samples"].value == 1
    assert lease.current() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without usable CUDA")
def test_a_gpu_step_in_a_gpu_allocation_without_cuda_fails_in_one_line(monkeypatch):
    monkeypatch.delenv("GENZOO_FAKE_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    result = dg.materialize(
        [_gpu_asset([])], resources={"settings": GenZooSettings()}, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    message = data.user_failure_data.description if data.user_failure_data else data.error.message
    assert "\n" not in message.strip(), message
    assert "CUDA_VISIBLE_DEVICES=0" in message and "CPU-only build" in message


@pytest.mark.slow  # eight step processes
def test_eight_concurrent_gpu_steps_over_four_devices_never_share_one(monkeypatch, tmp_path):
    from datetime import datetime

    from genzoo_assets_tests.defs import gpu_jobs

    monkeypatch.setenv("GENZOO_FAKE_GPUS", "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("GENZOO_GPU_LOCK_DIR", str(tmp_path / "locks"))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # a person allowed 8 GPU steps at once: only the lease keeps them apart on 4 devices
        instance.event_log_storage.set_concurrency_slots("gpu", 8)
        result = dg.execute_job(
            dg.reconstructable(gpu_jobs.eight_gpu_steps),
            instance=instance,
            run_config={"execution": {"config": {"max_concurrent": 8}}},
        )
        assert result.success
        spans: dict[str, list] = {}
        for event in result.get_asset_materialization_events():
            meta = event.materialization.metadata
            device = meta["device"].value
            assert device["visible_id"] == meta["leased"].value
            since = datetime.fromisoformat(device["since"]).timestamp()
            spans.setdefault(device["visible_id"], []).append((since, meta["end"].value))
    assert sum(len(v) for v in spans.values()) == 8 and set(spans) <= {"0", "1", "2", "3"}
    for device, held in spans.items():
        held.sort()
        for (_, end), (start, _) in zip(held, held[1:]):
            assert start >= end, f"device {device} held by two steps at once: {held}"


def test_renders_use_a_gpu_only_where_egl_is_a_gpus(monkeypatch):
    from genzoo_assets.core.render.egl_device import EglDevice
    from genzoo_assets.defs.gpu import local_renders_on_gpu

    monkeypatch.delenv("GENZOO_FAKE_GPUS", raising=False)
    monkeypatch.setattr(lease, "local_gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    software = [EglDevice(0)]  # Mesa's llvmpipe: no CUDA device behind it
    nvidia = [EglDevice(0, cuda_device=0), EglDevice(1, cuda_device=1), EglDevice(2)]
    assert not local_renders_on_gpu(lambda: software)
    assert local_renders_on_gpu(lambda: nvidia)
    monkeypatch.setattr(lease, "local_gpu_count", lambda: 0)
    assert not local_renders_on_gpu(lambda: nvidia)  # no device to lease
