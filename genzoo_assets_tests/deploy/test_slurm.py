"""The SLURM profile: executor selection and its settings file."""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config

from genzoo_assets.defs.executor import select_executor, slurm_config
from genzoo_assets.slurm.executor import pool_requests, slurm_executor

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "slurm" / "slurm.yaml"


def test_genzoo_executor_slurm_selects_the_slurm_executor_when_definitions_load(monkeypatch):
    monkeypatch.setenv("GENZOO_EXECUTOR", "slurm")
    monkeypatch.setenv("GENZOO_SLURM_CONFIG", str(EXAMPLE))
    from genzoo_assets.definitions import defs

    loaded = defs()
    for job in ("generate_samples", "__ASSET_JOB"):
        chosen = loaded.resolve_job_def(job).executor_def
        assert (
            chosen.name == "genzoo_slurm"
            and chosen.executor_creation_fn is slurm_executor.executor_creation_fn
        )


def test_example_settings_are_valid_executor_config():
    config = slurm_config({"GENZOO_SLURM_CONFIG": str(EXAMPLE)})
    assert config == yaml.safe_load(EXAMPLE.read_text())
    checked = process_config(slurm_executor.config_schema.config_type, config)
    assert checked.success, checked.errors
    pools = pool_requests(config["pools"])
    assert (
        pools["gpu"].gres == "gpu:1"
        and pools["gpu"].partition == "gpu"
        and pools["default"].account == "my-lab"
    )


def test_no_settings_file_means_defaults():
    assert slurm_config({}) == {}
    assert select_executor({"GENZOO_EXECUTOR": "slurm"}).name == "genzoo_slurm"


@pytest.mark.parametrize(
    "text, word",
    [
        ("pools: {gpu: {cpus: many}}", "cpus='many'"),
        ("max_jobs: 3", "unknown setting"),
        ("[1, 2]", "expected a mapping"),
        ("pools: {gpu: [", "cannot read it as YAML"),
    ],
)
def test_bad_settings_file_fails_the_load_naming_the_file(tmp_path, text, word):
    path = tmp_path / "slurm.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"GENZOO_SLURM_CONFIG={path}") as err:
        select_executor({"GENZOO_EXECUTOR": "slurm", "GENZOO_SLURM_CONFIG": str(path)})
    assert word in str(err.value)


def test_missing_settings_file_names_it(tmp_path):
    with pytest.raises(ValueError, match="GENZOO_SLURM_CONFIG=.*nope.yaml: cannot read"):
        slurm_config({"GENZOO_SLURM_CONFIG": str(tmp_path / "nope.yaml")})
