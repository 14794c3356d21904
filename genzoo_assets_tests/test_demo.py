"""`genzoo demo` end to end at a tiny size: every asset materialises and the report is written."""

import os
import subprocess
import sys

from genzoo_assets.core.catalog.duckdb_catalog import query
import pytest

pytestmark = pytest.mark.slow  # the whole demo in a subprocess (~4 min)


def test_demo_runs_every_stage_and_prints_the_benchmark(tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    env = dict(os.environ, GENZOO_DATA_DIR=str(data), DAGSTER_HOME=str(home), PYOPENGL_PLATFORM="egl")
    out = subprocess.run(
        [sys.executable, "-m", "genzoo_assets.cli", "demo", "--species", "4", "--samples-per-shard", "6",
         "--resolution", "96", "--train-steps", "4"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for step in range(1, 7):
        assert f"[{step}/6]" in out.stdout
    assert "pa_mpjpe" in out.stdout and "mean_pose" in out.stdout and "untrained" in out.stdout
    report = data / "benchmark" / "heldout"
    assert (report / "report.html").stat().st_size > 0 and (report / "pck_curve.png").exists()
    assert len(list((data / "previews" / "control_renders").glob("*.png"))) == 4
    n, species = query("SELECT count(*), count(DISTINCT species) FROM samples", data).iloc[0].tolist()
    assert (n, species) == (24, 4)
    assert query("SELECT count(*) FROM samples WHERE image_path IS NULL", data).iloc[0, 0] == 0
    assert (data / "regressor" / "checkpoint.pt").exists() and (data / "regressor" / "loss_curve.png").exists()
    lineage = query(  # training_lineage and metrics come from results.duckdb, attached beside the catalog
        "SELECT count(*), count(DISTINCT checkpoint) FROM training_lineage l JOIN samples s USING (sample_id)", data
    ).iloc[0].tolist()
    assert lineage[0] > 0 and lineage[1] == 1  # every exported catalog row, traced to one checkpoint
    methods = set(query("SELECT DISTINCT method FROM metrics", data)["method"])
    assert methods == {"genzoo", "mean_pose", "untrained"}
    assert (home / "dagster.yaml").exists()  # runs went to the project-local instance the UI reads
