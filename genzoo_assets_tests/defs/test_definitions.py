import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_k8s.job import get_user_defined_k8s_config

REPO = Path(__file__).resolve().parents[2]

EXPECTED_ASSETS = {
    "species",
    "shape_params",
    "pose_params",
    "control_renders",
    "captions",
    "prompts",
    "images",
    "catalog",
    "dataset_shards",
    "regressor",
    "benchmark",
    "results",
}
GPU_ASSETS = {"control_renders", "captions", "prompts", "images", "regressor"}


def test_definitions_load_and_list_the_asset_graph(all_defs):
    dg.Definitions.validate_loadable(all_defs)
    graph = all_defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert EXPECTED_ASSETS <= keys
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert parents["pose_params"] == {"shape_params"}
    assert "prompts" in parents["images"]
    assert "images" in parents["catalog"]
    # Forward only: nothing downstream of the catalog feeds it; results.duckdb has its own asset.
    assert parents["catalog"] == {
        "species",
        "shape_params",
        "pose_params",
        "control_renders",
        "captions",
        "prompts",
        "images",
    }
    assert parents["results"] == {"regressor", "benchmark"}
    assert parents["benchmark"] == {"regressor", "dataset_shards"}
    assert {all_defs.resolve_assets_def(k).op.pool for k in ("catalog", "results")} == {"duckdb"}


def test_gpu_stages_are_in_the_gpu_pool_and_request_a_gpu_on_kubernetes(all_defs):
    for key in GPU_ASSETS:
        node = all_defs.resolve_assets_def(key)
        spec = node.specs_by_key[dg.AssetKey(key)]
        op = node.op
        assert op.pool == "gpu", key
        k8s = get_user_defined_k8s_config(op.tags)  # what k8s_job_executor reads for the step's pod
        limits = k8s.container_config["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1", key
        assert spec.key.to_user_string() == key


@pytest.mark.slow  # a `dagster` process loads the code location
def test_dagster_definitions_validate_cli(tmp_path):
    env = dict(
        os.environ, DAGSTER_HOME=str(tmp_path)
    )  # any existing instance dir; a fresh clone has none yet
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "definitions",
            "validate",
            "-m",
            "genzoo_assets.definitions",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow  # a `dg` process loads the code location
def test_dg_check_defs_cli(tmp_path):
    out = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "check", "defs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, DAGSTER_HOME=str(tmp_path)),
    )
    assert out.returncode == 0, out.stdout + out.stderr
