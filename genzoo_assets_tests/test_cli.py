"""The `genzoo` command as a user runs it (a separate process, a temp data dir and DAGSTER_HOME)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test starts `genzoo` processes (10-60 s)


def genzoo(*args, data_dir, home, check=True):
    env = dict(
        os.environ, GENZOO_DATA_DIR=str(data_dir), DAGSTER_HOME=str(home), PYOPENGL_PLATFORM="egl"
    )
    out = subprocess.run(
        [sys.executable, "-m", "genzoo_assets.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture
def dirs(tmp_path):
    return {"data_dir": tmp_path / "data", "home": tmp_path / "home"}


def test_help_lists_every_command(dirs):
    out = genzoo("--help", **dirs).stdout
    for command in ("demo", "ui", "body", "species", "catalog", "export"):
        assert command in out


def test_body_info_procedural_json(dirs):
    info = json.loads(genzoo("body", "info", "procedural", "--json", **dirs).stdout)
    assert info["num_joints"] == 35 and len(info["joint_names"]) == 35
    assert info["num_vertices"] > 1000 and info["num_faces"] > 1000 and info["num_betas"] >= 10
    assert info["source"].startswith("procedural")


def test_body_info_bad_file_is_one_line_exit_2(dirs, tmp_path):
    bad = tmp_path / "smal.pkl"
    bad.write_text("not a model")
    out = genzoo("body", "info", str(bad), **dirs, check=False)
    assert out.returncode == 2
    assert (
        str(bad) in out.stderr
        and "Traceback" not in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    )


def test_species_add_resolves_any_mammal_and_registers_its_partition(dirs):
    added = json.loads(genzoo("species", "add", "Hooded Skunk", "--json", **dirs).stdout)
    assert (
        added["added"] and added["key"] == "mephitis-macroura" and added["family"] == "Mephitidae"
    )
    again = json.loads(genzoo("species", "add", "Mephitis macroura", "--json", **dirs).stdout)
    assert not again["added"]
    listed = json.loads(genzoo("species", "list", "--json", **dirs).stdout)
    assert sum(r["key"] == "mephitis-macroura" for r in listed) == 1

    import dagster as dg

    with dg.DagsterInstance.from_config(str(dirs["home"])) as instance:
        assert "mephitis-macroura" in instance.get_dynamic_partitions("species")


def _start(*args, data_dir, home):
    env = dict(
        os.environ, GENZOO_DATA_DIR=str(data_dir), DAGSTER_HOME=str(home), PYOPENGL_PLATFORM="egl"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "genzoo_assets.app.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_concurrent_species_adds_both_land_in_the_table_and_the_partitions(dirs):
    """Two `genzoo species add` at once: the lock serialises the request files and the asset runs,
    so neither species is lost (before: each rewrote species.parquet from what it had read)."""
    names = {"Hooded Skunk": "mephitis-macroura", "African Palm Civet": "nandinia-binotata"}
    procs = [_start("species", "add", name, "--json", **dirs) for name in names]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [json.loads(out)["added"] for out, _ in outs] == [True, True]
    assert {json.loads(out)["key"] for out, _ in outs} == set(names.values())
    listed = {r["key"] for r in json.loads(genzoo("species", "list", "--json", **dirs).stdout)}
    assert set(names.values()) <= listed

    import dagster as dg

    with dg.DagsterInstance.from_config(str(dirs["home"])) as instance:
        assert set(names.values()) <= set(instance.get_dynamic_partitions("species"))


def test_species_add_without_materialize_only_records(dirs):
    genzoo("species", "add", "Hooded Skunk", **dirs)
    out = genzoo("species", "add", "African Palm Civet", "--no-materialize", **dirs).stdout
    assert "materialise the `species` asset" in out
    listed = {r["key"] for r in json.loads(genzoo("species", "list", "--json", **dirs).stdout)}
    assert "mephitis-macroura" in listed and "nandinia-binotata" not in listed
    genzoo(
        "species", "add", "Mephitis macroura", **dirs
    )  # any later materialisation applies the request
    listed = {r["key"] for r in json.loads(genzoo("species", "list", "--json", **dirs).stdout)}
    assert "nandinia-binotata" in listed


def test_species_add_unknown_suggests(dirs):
    out = genzoo("species", "add", "Panthera leoo", **dirs, check=False)
    assert out.returncode == 2 and "Panthera leoo" in out.stderr and "Panthera leo" in out.stderr


def test_import_mdd_replaces_the_frame_and_counts_orders(dirs, tmp_path):
    csv = tmp_path / "mdd.csv"
    csv.write_text(
        "sciName,mainCommonName,majorSubtype,order,family,genus,extinct,domestic\n"
        "Panthera_leo,Lion,Laurasiatheria,CARNIVORA,FELIDAE,Panthera,0,0\n"
        "Equus_quagga,Plains Zebra,Laurasiatheria,PERISSODACTYLA,EQUIDAE,Equus,0,0\n"
        "Sorex_araneus,Common Shrew,Laurasiatheria,EULIPOTYPHLA,SORICIDAE,Sorex,0,0\n"
        "Homo_sapiens,Human,Euarchontoglires,PRIMATES,HOMINIDAE,Homo,0,0\n"
    )
    out = genzoo("species", "import-mdd", str(csv), "--json", **dirs, check=False)
    if (
        out.returncode == 2 and "missing" in out.stderr
    ):  # the loader names the columns a v1.x release needs
        pytest.fail(out.stderr)
    counts = json.loads(out.stdout)
    assert counts["species"] == 2 and counts["dog_breeds"] == 247
    assert counts["by_order"] == {"Carnivora": 1, "Perissodactyla": 1}


def test_catalog_sql_formats_and_read_only(dirs):
    genzoo("species", "add", "Hooded Skunk", **dirs)
    genzoo("catalog", "refresh", **dirs)
    rows = json.loads(
        genzoo(
            "catalog",
            "sql",
            "SELECT key FROM species WHERE key = 'mephitis-macroura'",
            "--format",
            "json",
            **dirs,
        ).stdout
    )
    assert rows == [{"key": "mephitis-macroura"}]
    csv = genzoo(
        "catalog", "sql", "SELECT count(*) AS n FROM species", "--format", "csv", **dirs
    ).stdout
    assert csv.splitlines()[0] == "n" and int(csv.splitlines()[1]) > 400
    out = genzoo("catalog", "sql", "DROP VIEW species", **dirs, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    genzoo("catalog", "refresh", "--full", **dirs)  # every file read again, none reused
    info = genzoo(
        "catalog",
        "sql",
        "SELECT files_reused, files_read FROM _catalog_info",
        "--format",
        "csv",
        **dirs,
    )
    assert info.stdout.splitlines()[1] == "0,1"


def test_catalog_sql_without_a_catalog_materialises_the_catalog_asset_first(dirs):
    genzoo("species", "add", "Hooded Skunk", **dirs)  # the species table, no catalog yet
    assert not (dirs["data_dir"] / "catalog.duckdb").exists()
    out = genzoo(
        "catalog",
        "sql",
        "SELECT key FROM species WHERE key = 'mephitis-macroura'",
        "--format",
        "csv",
        **dirs,
    )
    assert out.stdout.splitlines() == ["key", "mephitis-macroura"]
    assert (
        "no catalog in" in out.stderr
        and "materialising the `catalog` and `results` assets first" in out.stderr
    )
    assert (dirs["data_dir"] / "catalog.duckdb").exists()


@pytest.mark.slow  # seven commands in subprocesses (~30 s)
def test_catalog_sql_row_limit_and_streaming(dirs):
    genzoo("species", "add", "Hooded Skunk", **dirs)  # writes the species table
    genzoo("catalog", "refresh", **dirs)
    total = int(
        genzoo(
            "catalog", "sql", "SELECT count(*) AS n FROM species", "--format", "csv", **dirs
        ).stdout.split()[1]
    )
    assert total > 20
    table = genzoo("catalog", "sql", "SELECT key FROM species ORDER BY key", "--limit", "5", **dirs)
    assert len(table.stdout.splitlines()) == 1 + 5
    assert table.stderr.strip() == (
        "genzoo: showed the first 5 rows (--limit 5); the result has more: pass a larger "
        "--limit, or --limit 0 with --format csv or json to stream every row"
    )
    rows = json.loads(
        genzoo("catalog", "sql", "FROM species", "--format", "json", "--limit", "0", **dirs).stdout
    )
    csv = genzoo(
        "catalog", "sql", "SELECT key FROM species", "--format", "csv", "--limit", "0", **dirs
    )
    assert len(rows) == total and len(csv.stdout.splitlines()) == 1 + total and csv.stderr == ""
    few = genzoo(
        "catalog", "sql", "SELECT key FROM species", "--format", "json", "--limit", "3", **dirs
    )
    assert len(json.loads(few.stdout)) == 3 and "showed the first 3 rows" in few.stderr
    out = genzoo("catalog", "sql", "SELECT 1", "--limit", "0", **dirs, check=False)
    assert out.returncode == 2 and out.stdout == "" and "csv or json" in out.stderr


def test_export_animal3d_refuses_a_dataset_without_smal_betas_in_one_line(dirs, tmp_path):
    out = genzoo("export", "animal3d", str(tmp_path / "a3d"), **dirs, check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "41 betas" in out.stderr and not (tmp_path / "a3d").exists()
