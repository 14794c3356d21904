"""The instance's pools follow the hardware (or SLURM's gpu_slots) and never override a person."""

import dagster as dg
import pytest
import yaml

from genzoo_assets.app.instance import (
    DUCKDB_POOL,
    GPU_POOL,
    configure_pools,
    dagster_home,
    gpu_slots,
)


def _limit(instance, pool):
    return {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}.get(pool)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("GENZOO_MAX_CONCURRENT_RUNS", raising=False)
    home = dagster_home({"DAGSTER_HOME": str(tmp_path / "home")})
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def test_gpu_slots_are_the_leasable_devices_or_slurms_setting(tmp_path):
    assert gpu_slots({"GENZOO_FAKE_GPUS": "8"}) == 8
    assert gpu_slots({"GENZOO_FAKE_GPUS": "8", "CUDA_VISIBLE_DEVICES": "2,5"}) == 2
    assert gpu_slots({"GENZOO_FAKE_GPUS": "0"}, cpu_slots=3) == 3
    assert gpu_slots({"GENZOO_EXECUTOR": "slurm"}) == 200  # the built-in gpu_slots
    config = tmp_path / "slurm.yaml"
    config.write_text("gpu_slots: 64\n")
    env = {"GENZOO_EXECUTOR": "slurm", "GENZOO_SLURM_CONFIG": str(config), "GENZOO_FAKE_GPUS": "0"}
    assert gpu_slots(env) == 64


def test_opening_the_instance_sets_the_pool_and_never_lowers_a_limit_someone_set(home):
    configure_pools(home, env={"GENZOO_FAKE_GPUS": "4"})
    assert _limit(home, GPU_POOL) == 4 and _limit(home, DUCKDB_POOL) == 1
    configure_pools(home, env={"GENZOO_FAKE_GPUS": "8"})  # the hardware changed: followed
    assert _limit(home, GPU_POOL) == 8
    home.event_log_storage.set_concurrency_slots(GPU_POOL, 6)  # a person, in the UI
    configure_pools(home, env={"GENZOO_FAKE_GPUS": "0"})  # a CPU-only submit host opens it
    assert _limit(home, GPU_POOL) == 6
    configure_pools(home, env={"GENZOO_EXECUTOR": "slurm"})
    assert _limit(home, GPU_POOL) == 6


def test_a_submit_host_without_gpus_opens_a_slurm_instance_at_gpu_slots(home):
    configure_pools(home, env={"GENZOO_EXECUTOR": "slurm", "GENZOO_FAKE_GPUS": "0"})
    assert _limit(home, GPU_POOL) == 200


def test_the_run_concurrency_cap_is_configurable(tmp_path):
    root = tmp_path / "home"
    config = dagster_home({"DAGSTER_HOME": str(root)}) / "dagster.yaml"
    assert yaml.safe_load(config.read_text())["concurrency"]["runs"]["max_concurrent_runs"] == 16
    dagster_home({"DAGSTER_HOME": str(root), "GENZOO_MAX_CONCURRENT_RUNS": "64"})
    settings = yaml.safe_load(config.read_text())
    assert settings["concurrency"]["runs"]["max_concurrent_runs"] == 64
    assert settings["concurrency"]["pools"]["default_limit"] == 1  # the rest kept
    with pytest.raises(ValueError, match="GENZOO_MAX_CONCURRENT_RUNS='many'"):
        dagster_home({"DAGSTER_HOME": str(root), "GENZOO_MAX_CONCURRENT_RUNS": "many"})
