"""The Kubernetes profile: the pod spec k8s_job_executor builds for each step, and executor selection."""

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from genzoo_assets.defs.executor import gpu_aware_multiprocess_executor, select_executor

REPO = Path(__file__).resolve().parents[2]
GPU_STEPS = ["control_renders", "captions", "prompts", "images", "regressor", "benchmark"]
CPU_STEPS = ["species", "shape_params", "pose_params", "catalog", "dataset_shards"]


@pytest.fixture(scope="module")
def all_defs() -> dg.Definitions:
    from genzoo_assets.definitions import defs

    return defs()


def step_container(all_defs: dg.Definitions, asset: str):
    """The step pod's container, built the way dagster-k8s' K8sStepHandler builds it: the run
    launcher's job config, then the op's `dagster-k8s/config` tags merged on top."""
    op = all_defs.resolve_assets_def(asset).op
    context = K8sContainerContext().merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op.tags))
    )
    job_config = DagsterK8sJobConfig(
        job_image="genzoo-assets:test",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql-secret",
    )
    job = construct_dagster_k8s_job(
        job_config,
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{asset.replace('_', '-')}",
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": asset},
    )
    containers = job.spec.template.spec.containers
    assert len(containers) == 1 and containers[0].image == "genzoo-assets:test"
    return containers[0]


@pytest.mark.parametrize("asset", GPU_STEPS)
def test_gpu_step_pod_requests_one_gpu(all_defs, asset):
    resources = step_container(all_defs, asset).resources
    assert resources is not None, f"{asset}: no resources on the step container"
    assert resources.limits["nvidia.com/gpu"] == "1", asset
    assert resources.requests["nvidia.com/gpu"] == "1", asset


@pytest.mark.parametrize("asset", CPU_STEPS)
def test_cpu_step_pod_requests_no_gpu(all_defs, asset):
    resources = step_container(all_defs, asset).resources
    asked = {**(resources.limits or {}), **(resources.requests or {})} if resources else {}
    assert "nvidia.com/gpu" not in asked, asset


def test_genzoo_executor_k8s_selects_the_k8s_job_executor(monkeypatch):
    monkeypatch.setenv("GENZOO_EXECUTOR", "k8s")
    from genzoo_assets.definitions import defs

    loaded = defs()
    assert select_executor() is k8s_job_executor
    for job in ("generate_samples", "__ASSET_JOB"):
        assert loaded.resolve_job_def(job).executor_def.name == "k8s", job


def test_local_executor_is_multiprocess_with_max_concurrent_from_env():
    chosen = select_executor({"GENZOO_MAX_CONCURRENT": "3"})
    assert chosen.name == "genzoo_multiprocess"
    # Dagster's multiprocess executor, claiming no `gpu` slot for steps that run on the CPU
    assert chosen.executor_creation_fn is gpu_aware_multiprocess_executor.executor_creation_fn
    default = select_executor({})
    assert default.name == "genzoo_multiprocess"
    assert select_executor({"GENZOO_EXECUTOR": "in_process"}) is dg.in_process_executor


@pytest.mark.parametrize(
    "env, word",
    [
        ({"GENZOO_EXECUTOR": "yarn"}, "GENZOO_EXECUTOR"),
        ({"GENZOO_MAX_CONCURRENT": "0"}, "GENZOO_MAX_CONCURRENT"),
        ({"GENZOO_MAX_CONCURRENT": "many"}, "GENZOO_MAX_CONCURRENT"),
    ],
)
def test_bad_executor_settings_name_the_variable(env, word):
    with pytest.raises(ValueError, match=word):
        select_executor(env)


def test_deploy_instance_is_valid_with_postgres_and_the_k8s_run_launcher():
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_k8s import K8sRunLauncher

    instance = yaml.safe_load((REPO / "deploy" / "dagster-instance.yaml").read_text())
    checked = process_config(dagster_instance_config_schema(), instance)
    assert checked.success, checked.errors
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        assert instance[storage]["module"].startswith("dagster_postgres."), storage
        assert instance[storage]["config"]["postgres_db"]["password"] == {
            "env": "DAGSTER_PG_PASSWORD"
        }
    launcher = instance["run_launcher"]
    assert launcher["class"] == "K8sRunLauncher"
    checked = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    assert "GENZOO_EXECUTOR=k8s" in launcher["config"]["env_vars"]
    assert instance["concurrency"]["pools"]["default_limit"] == 1


def test_helm_values_run_the_code_location_with_the_k8s_executor_and_shared_data():
    values = yaml.safe_load((REPO / "deploy" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    env = {e["name"]: e.get("value") for e in deployment["env"]}
    assert env["GENZOO_EXECUTOR"] == "k8s"
    assert env["GENZOO_DATA_DIR"] == deployment["volumeMounts"][0]["mountPath"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    instance = yaml.safe_load((REPO / "deploy" / "dagster-instance.yaml").read_text())
    assert (
        f"GENZOO_DATA_DIR={env['GENZOO_DATA_DIR']}"
        in instance["run_launcher"]["config"]["env_vars"]
    )
