"""`genzoo demo` end to end at a tiny size: every asset materialises and the report is written."""

import os
import subprocess
import sys

import pytest

from genzoo_assets.core.catalog.query import query
from genzoo_assets.core.errors import InputError

pytestmark = pytest.mark.slow  # the whole demo in a subprocess (~4 min)


def test_demo_runs_every_stage_and_prints_the_benchmark(tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    env = dict(
        os.environ, GENZOO_DATA_DIR=str(data), DAGSTER_HOME=str(home), PYOPENGL_PLATFORM="egl"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "genzoo_assets.app.cli",
            "demo",
            "--species",
            "4",
            "--samples-per-shard",
            "6",
            "--resolution",
            "96",
            "--train-steps",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for step in range(1, 7):
        assert f"[{step}/6]" in out.stdout
    assert "[5/6] regressor: training step 4/4, " in out.stdout  # the progress line, forwarded
    assert "STEP_FAILURE" not in out.stdout + out.stderr and "dagster - " not in out.stderr
    assert "pa_mpjpe" in out.stdout and "mean_pose" in out.stdout and "untrained" in out.stdout
    report = data / "benchmark" / "heldout"
    assert (report / "report.html").stat().st_size > 0 and (report / "pck_curve.png").exists()
    assert len(list((data / "previews" / "control_renders").glob("*.png"))) == 4
    n, species = (
        query("SELECT count(*), count(DISTINCT species) FROM samples", data).iloc[0].tolist()
    )
    assert (n, species) == (24, 4)
    assert query("SELECT count(*) FROM samples WHERE image_path IS NULL", data).iloc[0, 0] == 0
    assert (data / "regressor" / "checkpoint.pt").exists() and (
        data / "regressor" / "loss_curve.png"
    ).exists()
    lineage = (
        query(  # training_lineage and metrics come from results.duckdb, attached beside the catalog
            "SELECT count(*), count(DISTINCT checkpoint) FROM training_lineage l JOIN samples s USING (sample_id)",
            data,
        )
        .iloc[0]
        .tolist()
    )
    assert (
        lineage[0] > 0 and lineage[1] == 1
    )  # every exported catalog row, traced to one checkpoint
    methods = set(query("SELECT DISTINCT method FROM metrics", data)["method"])
    assert methods == {"genzoo", "mean_pose", "untrained"}
    assert (home / "dagster.yaml").exists()  # runs went to the project-local instance the UI reads


def _project_instance(home, monkeypatch):
    from genzoo_assets.app.instance import project_instance

    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the spawned workers open the same home
    return project_instance()


def _gpu_slots(instance) -> int:
    return instance.event_log_storage.get_concurrency_info("gpu").slot_count


def test_partitions_generated_side_by_side_match_those_generated_one_by_one(tmp_path, monkeypatch):
    import dagster as dg
    import pandas as pd

    from genzoo_assets.app import demo
    from genzoo_assets.defs.pool_slots import PID_TAG
    from genzoo_assets.defs.resources import settings_from_env

    shards = {"sus-scrofa": 1, "vulpes-vulpes": 1}
    written = {}
    for workers in (1, 2):
        home = tmp_path / f"workers{workers}"
        instance = _project_instance(home, monkeypatch)
        settings = settings_from_env(
            data_dir=str(home / "data"), samples_per_shard=4, resolution=64, subdivisions=0
        )
        demo.run_assets([demo.species], instance, settings)
        lines = []
        assert (
            demo.materialize_samples(instance, settings, shards, say=lines.append, workers=workers)
            == 2
        )
        done = [line for line in lines if "still generating" not in line]  # heartbeats aside
        assert len(done) == 2 and all("4 samples rendered" in line for line in done)
        assert instance.get_materialized_partitions(dg.AssetKey("images")) == {
            "000|sus-scrofa",
            "000|vulpes-vulpes",
        }
        assert _gpu_slots(instance) == 1  # set back after the workers' share
        pids = {
            r.dagster_run.tags.get(PID_TAG)
            for r in instance.get_run_records()
            if r.dagster_run.tags.get("dagster/partition")
        }
        assert (pids == {str(os.getpid())}) == (
            workers == 1
        )  # side by side: runs in worker processes
        root = home / "data"
        files = {
            p.relative_to(root): p
            for p in root.rglob("*")
            if p.is_file() and "duckdb" not in p.name
        }
        written[workers] = {
            rel: (
                pd.read_parquet(p).drop(columns="provenance", errors="ignore")
                if p.suffix == ".parquet"
                else p.read_bytes()
            )
            for rel, p in files.items()
        }
    assert written[1].keys() == written[2].keys() and any(
        rel.suffix == ".jpg" for rel in written[1]
    )
    for rel, one in written[1].items():
        two = written[2][rel]
        assert one.equals(two) if isinstance(one, pd.DataFrame) else one == two, rel


def test_a_failing_partition_in_a_worker_is_named_and_the_gpu_pool_is_set_back(
    tmp_path, monkeypatch
):
    from genzoo_assets.app import demo
    from genzoo_assets.defs.resources import settings_from_env

    instance = _project_instance(tmp_path / "home", monkeypatch)
    settings = settings_from_env(
        data_dir=str(tmp_path / "data"), samples_per_shard=2, resolution=64, subdivisions=0
    )
    demo.run_assets([demo.species], instance, settings)
    with pytest.raises(InputError, match=r"partition 000\|no-such-species: "):
        demo.materialize_samples(
            instance, settings, {"no-such-species": 1, "sus-scrofa": 1}, say=print, workers=2
        )
    assert _gpu_slots(instance) == 1
