"""Bad inputs across the `genzoo` command, Dagster run config and files.

Every case must fail with a clear error that names the offending input (path, field or name);
the command must exit with status 2 and print one line without a traceback; and nothing already
in the data directory may change (each case compares a snapshot of every file's hash).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pytest

from genzoo_assets.app import cli
from genzoo_assets.core.body import procedural_body_model
from genzoo_assets.core.body.io import model_arrays
from genzoo_assets.core.catalog import query, refresh
from genzoo_assets.core.catalog.store import CATALOG_NAME
from genzoo_assets.core.evaluate.animal3d import load_animal3d
from genzoo_assets.core.imagegen import make_generator
from genzoo_assets.core.regressor.checkpoint import load_regressor, save_checkpoint
from genzoo_assets.core.regressor.model import RegressorConfig, build_regressor
from genzoo_assets.core.regressor.train import TrainConfig, train
from genzoo_assets.core.sampling.clip_text import ClipTextEncoder, load_animal_attributes
from genzoo_assets.core.sampling.shape_prior import load_smal_clusters
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.core.text.backends import make_captioner, make_prompter
from genzoo_assets.defs.benchmark import BenchmarkConfig
from genzoo_assets.defs.images import ImageConfig
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import RenderConfig
from genzoo_assets.defs.resources import GenZooSettings, SettingError
from genzoo_assets.defs.sampling import PoseConfig, pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import CaptionConfig, PromptConfig, captions
from genzoo_assets.defs.training import ExportConfig, RegressorTrainConfig, regressor
from genzoo_assets_tests.fixtures import malicious

pytestmark = pytest.mark.slow  # dozens of runs and CLI processes (~70 s in all)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
UNCLEAR = {
    "AttributeError",
    "IndexError",
    "ZeroDivisionError",
    "UnboundLocalError",
    "NameError",
    "AssertionError",
}
MDD_V2 = "sciName,mainCommonName,superorder,order,family,extinct,domestic\n"
PWNED = "PWNED"  # what every hostile file below tries to create in the bad-files folder


@dataclasses.dataclass
class World:
    root: Path
    data: Path  # a populated data directory: species table, one sampled partition, the catalog
    ambiguous: Path  # a data directory whose imported frame has two species with one common name
    bad: Path  # the bad files
    instance: dg.DagsterInstance
    settings: GenZooSettings

    def f(self, name: str) -> str:
        return str(self.bad / name)


def _write_bad_files(bad: Path) -> None:
    bad.mkdir()
    arrays = model_arrays(procedural_body_model())
    (bad / "truncated.pkl").write_bytes(
        pickle.dumps({k: v for k, v in arrays.items()}, protocol=2)[:200]
    )
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    (bad / "image.pkl").write_bytes(png.tobytes())
    np.savez(bad / "wrong_shapes.npz", **{**arrays, "shapedirs": np.zeros((5, 3))})
    nan = {**arrays, "v_template": arrays["v_template"].copy()}
    nan["v_template"][0, 0] = np.nan
    np.savez(bad / "nan_template.npz", **nan)
    (bad / "empty.pkl").write_bytes(b"")
    (bad / "missing_columns.csv").write_text("sciName,order\nPanthera_leo,CARNIVORA\n")
    (bad / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (bad / "empty.csv").write_bytes(b"")
    (bad / "header_only.csv").write_text(MDD_V2)
    (bad / "bad_flag.csv").write_text(
        MDD_V2 + "Panthera_leo,Lion,Laurasiatheria,CARNIVORA,FELIDAE,maybe,0\n"
    )
    (bad / "ambiguous.csv").write_text(
        MDD_V2 + "Vulpes ghosta,Ghost Fox,Laurasiatheria,CARNIVORA,CANIDAE,0,0\n"
        "Vulpes spectra,Ghost Fox,Laurasiatheria,CARNIVORA,CANIDAE,0,0\n"
    )
    np.savez(bad / "nan_bank.npz", poses=np.full((4, 34, 3), np.nan))
    np.savez(bad / "wrong_shape_bank.npz", poses=np.zeros((4, 7)))
    one_nan = np.zeros((4, 34, 3))
    one_nan[2, 5, 1] = np.nan  # one NaN among finite values (an IndexError before)
    np.savez(bad / "one_nan_bank.npz", poses=one_nan)
    lion = "Panthera_leo,{name},Laurasiatheria,CARNIVORA,FELIDAE,0,0\n"
    (bad / "huge_field.csv").write_text(MDD_V2 + lion.format(name="L" * 5000))
    (bad / "long_line.csv").write_text(MDD_V2 + lion.format(name="L" * 70_000))
    (bad / "long_name.csv").write_text(MDD_V2 + lion.format(name="L" * 300))
    np.savez(
        bad / "attributes.npz",
        animals=np.array(["Canis lupus"]),
        mean=np.zeros((1, 4)),
        cov=np.eye(4)[None],
    )
    (bad / "invalid.json").write_text('{"data": [ {"img_path": ')
    (bad / "missing_fields.json").write_text(
        json.dumps({"data": [{"img_path": "a.png", "mask_path": "a_mask.png"}]})
    )
    (bad / "not_a_dir").write_text("a regular file where a folder should be")
    for name in ("llm_incomplete", "clip_empty"):
        (bad / name).mkdir()
    (bad / "llm_incomplete" / "config.json").write_text("{}")
    _write_hostile_files(bad)


def _write_hostile_files(bad: Path) -> None:
    """Files that run code when loaded carelessly: each would create ``bad/PWNED``."""
    marker = bad / PWNED
    files = {
        "evil_stack_global.pkl": malicious.stack_global(marker),
        "evil_os_system.pkl": malicious.payloads(marker)["global-os-system"][0],
        "evil_numpy_savetxt.pkl": malicious.payloads(marker)["global-numpy-savetxt"][0],
        "evil_smal_data.pkl": malicious.in_model_dict(marker),
    }
    for name, data in files.items():
        (bad / name).write_bytes(data)
    import torch

    torch.save({"config": malicious.Exec(marker), "model": {}}, bad / "evil_checkpoint.pt")
    (bad / "resume").mkdir()
    torch.save({"config": malicious.Exec(marker), "model": {}}, bad / "resume" / "last.pt")
    np.savez(bad / "pickled_bank.npz", poses=np.array([malicious.Exec(marker)], dtype=object))
    np.savez(bad / "pickled_model.npz", v_template=np.array([malicious.Exec(marker)], dtype=object))
    (bad / "pickle_as_bank.npz").write_bytes(malicious.stack_global(marker))
    cfg = RegressorConfig.tiny(num_betas=41)
    smal = types.SimpleNamespace(sha256="0" * 64, source="/models/smal_CVPR2017.pkl", num_betas=41)
    save_checkpoint(bad / "smal_checkpoint.pt", build_regressor(cfg).state_dict(), cfg, smal)
    (bad / "corrupt_catalog").mkdir()
    (bad / "corrupt_catalog" / CATALOG_NAME).write_bytes(np.random.default_rng(0).bytes(100_000))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("bad_inputs")
    _write_bad_files(root / "bad")
    settings = GenZooSettings(data_dir=str(root / "data"), samples_per_shard=2, resolution=64)
    ambiguous = root / "ambiguous"
    frame.import_mdd(ambiguous, root / "bad" / "ambiguous.csv", samples_per_shard=2)
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        assert dg.materialize(
            [shape_params, pose_params],
            instance=instance,
            resources={"settings": settings},
            partition_key=sample_partition_key("panthera-leo", "000"),
        ).success
        instance.add_dynamic_partitions(
            "species", ["zzz-not-an-animal", "panthera_leo-", "panthera..leo"]
        )
        refresh.refresh_catalog(settings.root())
        (root / "bad" / "truncated_catalog").mkdir()
        (root / "bad" / "truncated_catalog" / CATALOG_NAME).write_bytes(
            (settings.root() / CATALOG_NAME).read_bytes()[:5000]
        )
        yield World(root, settings.root(), ambiguous, root / "bad", instance, settings)


def _snapshot(*dirs: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirs
        if d.exists()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


# --- the `genzoo` command -------------------------------------------------------------------------

CLI_CASES = {
    # id: (argv, with {bad}/{data}/{ambiguous} filled in; words the one-line message must contain)
    "body-missing-file": (
        ["body", "info", "{bad}/no_such_model.pkl"],
        ["{bad}/no_such_model.pkl", "not found"],
    ),
    "body-truncated-pickle": (
        ["body", "info", "{bad}/truncated.pkl"],
        ["{bad}/truncated.pkl", "truncated"],
    ),
    "body-png-renamed-pkl": (
        ["body", "info", "{bad}/image.pkl"],
        ["{bad}/image.pkl", "not a pickle"],
    ),
    "body-npz-wrong-shapes": (
        ["body", "info", "{bad}/wrong_shapes.npz"],
        ["{bad}/wrong_shapes.npz", "shapedirs"],
    ),
    "body-nan-template": (
        ["body", "info", "{bad}/nan_template.npz"],
        ["{bad}/nan_template.npz", "v_template"],
    ),
    "body-empty-file": (["body", "info", "{bad}/empty.pkl"], ["{bad}/empty.pkl", "empty"]),
    "body-directory": (["body", "info", "{bad}"], ["{bad}", "directory"]),
    "body-stack-global-exec": (
        ["body", "info", "{bad}/evil_stack_global.pkl"],
        [
            "{bad}/evil_stack_global.pkl",
            "refusing to load global numpy._core.numeric.builtins.exec",
        ],
    ),
    "body-os-system": (
        ["body", "info", "{bad}/evil_os_system.pkl"],
        ["{bad}/evil_os_system.pkl", "global os.system"],
    ),
    "body-npz-object-array": (
        ["body", "info", "{bad}/pickled_model.npz"],
        ["{bad}/pickled_model.npz", "pickled object arrays"],
    ),
    "body-numpy-savetxt": (
        ["body", "info", "{bad}/evil_numpy_savetxt.pkl"],
        ["{bad}/evil_numpy_savetxt.pkl", "global numpy.savetxt"],
    ),
    "species-unknown": (
        ["species", "add", "Zzyzx notananimal"],
        ["Zzyzx notananimal", "unknown species"],
    ),
    "species-ambiguous": (
        ["--data-dir", "{ambiguous}", "species", "add", "ghost fox"],
        ["ghost fox", "ambiguous"],
    ),
    "species-sql-name": (
        ["species", "add", "x'); DROP TABLE species; --"],
        ["DROP TABLE species", "unknown species"],
    ),
    "species-empty-name": (["species", "add", "  "], ["'  '", "empty"]),
    "mdd-missing-columns": (
        ["species", "import-mdd", "{bad}/missing_columns.csv"],
        ["{bad}/missing_columns.csv", "mainCommonName"],
    ),
    "mdd-binary": (["species", "import-mdd", "{bad}/binary.csv"], ["{bad}/binary.csv", "binary"]),
    "mdd-empty": (["species", "import-mdd", "{bad}/empty.csv"], ["{bad}/empty.csv", "empty"]),
    "mdd-header-only": (
        ["species", "import-mdd", "{bad}/header_only.csv"],
        ["{bad}/header_only.csv", "no species rows"],
    ),
    "mdd-bad-flag": (
        ["species", "import-mdd", "{bad}/bad_flag.csv"],
        ["{bad}/bad_flag.csv", "extinct", "maybe"],
    ),
    "mdd-missing-file": (
        ["species", "import-mdd", "{bad}/MDD_v9.csv"],
        ["{bad}/MDD_v9.csv", "does not exist"],
    ),
    "demo-zero-workers": (["demo", "--workers", "0"], ["--workers", "at least 1", "got 0"]),
    "demo-negative-workers": (["demo", "--workers", "-1"], ["--workers", "at least 1", "got -1"]),
    "demo-zero-species": (["demo", "--species", "0"], ["--species", "[3, 62]", "got 0"]),
    "demo-negative-species": (["demo", "--species", "-3"], ["--species", "[3, 62]", "got -3"]),
    "demo-two-species": (["demo", "--species", "2"], ["--species", "held-out felids", "got 2"]),
    "demo-too-many-species": (["demo", "--species", "63"], ["--species", "[3, 62]", "got 63"]),
    "demo-zero-samples": (
        ["demo", "--samples-per-shard", "0"],
        ["--samples-per-shard", "at least 1", "got 0"],
    ),
    "demo-negative-samples": (
        ["demo", "--samples-per-shard", "-4"],
        ["--samples-per-shard", "at least 1", "got -4"],
    ),
    "demo-zero-train-steps": (
        ["demo", "--train-steps", "0"],
        ["--train-steps", "at least 1", "got 0"],
    ),
    "demo-negative-train-steps": (
        ["demo", "--train-steps", "-5"],
        ["--train-steps", "at least 1", "got -5"],
    ),
    "demo-zero-resolution": (
        ["demo", "--resolution", "0"],
        ["--resolution", "[32, 4096]", "got 0"],
    ),
    "demo-tiny-resolution": (
        ["demo", "--resolution", "8"],
        ["--resolution", "[32, 4096]", "got 8"],
    ),
    "demo-huge-resolution": (
        ["demo", "--resolution", "100000"],
        ["--resolution", "[32, 4096]", "got 100000"],
    ),
    "mdd-huge-field": (
        ["species", "import-mdd", "{bad}/huge_field.csv"],
        ["{bad}/huge_field.csv", "data row 1", "'mainCommonName'", "4096"],
    ),
    "mdd-long-line": (
        ["species", "import-mdd", "{bad}/long_line.csv"],
        ["{bad}/long_line.csv", "line 2", "longer than"],
    ),
    "mdd-long-name": (
        ["species", "import-mdd", "{bad}/long_name.csv"],
        ["{bad}/long_name.csv", "data row 1", "'mainCommonName'", "300 characters", "200"],
    ),
    "species-long-name": (["species", "add", "x" * 300], ["300 characters", "200"]),
    "sql-drop": (["catalog", "sql", "DROP TABLE samples"], ["DROP TABLE samples", "read-only"]),
    "sql-insert": (
        ["catalog", "sql", "INSERT INTO _catalog_info (data_dir) VALUES ('x')"],
        ["INSERT INTO _catalog_info", "read-only"],
    ),
    "sql-copy": (
        ["catalog", "sql", "COPY samples TO '{bad}/leak.csv'"],
        ["COPY samples", "read-only"],
    ),
    "sql-attach": (
        ["catalog", "sql", "ATTACH '{bad}/evil.duckdb' AS evil"],
        ["ATTACH", "read-only"],
    ),
    "sql-create-view": (
        ["catalog", "sql", "CREATE VIEW v AS SELECT 1"],
        ["CREATE VIEW v", "read-only"],
    ),
    "sql-two-statements": (
        ["catalog", "sql", "SELECT 1; DROP TABLE samples"],
        ["DROP TABLE samples", "one statement"],
    ),
    "sql-explain-analyze-copy-partition": (
        [
            "catalog",
            "sql",
            "EXPLAIN ANALYZE COPY (SELECT * FROM shape_params WHERE false) TO "
            "'{data}/shape_params/panthera-leo/000.parquet' (FORMAT parquet)",
        ],
        ["EXPLAIN ANALYZE COPY", "read-only"],
    ),
    "sql-explain-analyze-copy-file": (
        ["catalog", "sql", "EXPLAIN ANALYZE COPY (SELECT 1) TO '{bad}/leak.csv'"],
        ["{bad}/leak.csv", "read-only"],
    ),
    "sql-read-csv-passwd": (
        ["catalog", "sql", "SELECT * FROM read_csv('/etc/passwd')"],
        ["/etc/passwd", "read-only"],
    ),
    "sql-read-text-environ": (
        ["catalog", "sql", "SELECT content FROM read_text('/proc/self/environ')"],
        ["/proc/self/environ", "read-only"],
    ),
    "sql-install-extension": (
        ["catalog", "sql", "INSTALL httpfs"],
        ["INSTALL httpfs", "read-only"],
    ),
    "sql-load-extension": (["catalog", "sql", "LOAD httpfs"], ["LOAD httpfs", "read-only"]),
    "sql-enable-external-access": (
        ["catalog", "sql", "SET enable_external_access = true"],
        ["enable_external_access", "read-only"],
    ),
    "sql-negative-limit": (["catalog", "sql", "SELECT 1", "--limit", "-1"], ["--limit", "-1"]),
    "sql-unlimited-table": (
        ["catalog", "sql", "SELECT 1", "--limit", "0"],
        ["--limit 0", "csv or json"],
    ),
    "sql-memory-cap": (
        [
            "catalog",
            "sql",
            "SELECT list(repeat('x', 1000)) FROM range(1000000)",
            "--memory-limit",
            "64MB",
        ],
        ["range(1000000)", "memory limit of 64MB"],
    ),
    "sql-bad-memory-limit": (
        ["catalog", "sql", "SELECT 1", "--memory-limit", "lots"],
        ["'lots'", "memory limit"],
    ),
    "catalog-random-bytes": (
        ["--data-dir", "{bad}/corrupt_catalog", "catalog", "sql", "SELECT 1"],
        ["{bad}/corrupt_catalog/catalog.duckdb", "`genzoo catalog refresh` rebuilds it"],
    ),
    "catalog-truncated": (
        ["--data-dir", "{bad}/truncated_catalog", "catalog", "sql", "SELECT 1", "--format", "json"],
        ["{bad}/truncated_catalog/catalog.duckdb", "`genzoo catalog refresh` rebuilds it"],
    ),
    "sql-syntax-error": (
        ["catalog", "sql", "SELEC species FROM samples"],
        ["SELEC species", "syntax"],
    ),
    "sql-unknown-table": (["catalog", "sql", "SELECT * FROM no_such_table"], ["no_such_table"]),
    "sql-species-injection": (
        ["catalog", "sql", "SELECT * FROM samples WHERE species = 'x'; DELETE FROM samples"],
        ["DELETE FROM samples", "one statement"],
    ),
    "export-animal3d-not-smal": (
        ["export", "animal3d", "{bad}/a3d_out"],
        ["procedural", "41 betas"],
    ),
    "export-hf-into-a-full-folder": (["export", "hf", "{bad}"], ["{bad}", "not empty"]),
    "export-hf-no-images": (["export", "hf", "{bad}/hf_out"], ["no samples with images"]),
    "data-dir-is-file": (
        ["--data-dir", "{bad}/not_a_dir", "catalog", "refresh"],
        ["{bad}/not_a_dir"],
    ),
    "data-dir-under-file": (
        ["--data-dir", "{bad}/not_a_dir/data", "species", "list"],
        ["{bad}/not_a_dir/data", "Not a directory"],
    ),
    # Tests run as root, where chmod 0o500 does not stop writes: /proc is unwritable even for root.
    "data-dir-unwritable": (
        ["--data-dir", "/proc/genzoo-data", "catalog", "refresh"],
        ["/proc/genzoo-data"],
    ),
}
SUBPROCESS_CASES = {
    "body-missing-file",
    "sql-drop",
    "body-stack-global-exec",
    "sql-explain-analyze-copy-partition",
}  # also run as a real command: exit status 2, one line


def _fill(value, world: World):
    """Put the module's folders into a case's strings (in nested config dicts too)."""
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, str):
        return value.format(bad=world.bad, data=world.data, ambiguous=world.ambiguous)
    return value


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input(case, world, capsys, monkeypatch):
    argv, words = CLI_CASES[case]
    argv, words = [_fill(a, world) for a in argv], [_fill(w, world) for w in words]
    monkeypatch.setenv("GENZOO_DATA_DIR", str(world.data))
    monkeypatch.delenv("GENZOO_DEBUG", raising=False)
    before = _snapshot(world.data, world.ambiguous, world.bad)
    assert cli.main(argv) == 2
    assert _snapshot(world.data, world.ambiguous, world.bad) == before
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("genzoo: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word.casefold() in lines[0].casefold(), (word, lines[0])
    if case in SUBPROCESS_CASES:
        env = {**os.environ, "GENZOO_DATA_DIR": str(world.data), "PYTHONPATH": str(REPO)}
        env.pop("GENZOO_DEBUG", None)
        run = subprocess.run(
            [sys.executable, "-m", "genzoo_assets.app.cli", *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.strip() == lines[0]
        assert _snapshot(world.data, world.ambiguous, world.bad) == before


# --- Dagster run config and resources ------------------------------------------------------------


def _key(species_key="panthera-leo"):
    return sample_partition_key(species_key, "000")


def _ops(asset: str, **config) -> dict:
    return {"ops": {asset: {"config": config}}}


CONFIG_CASES = {
    # id: (assets, run config, settings overrides, partition species, words the failure must contain)
    "shape-unknown-backend": (
        [shape_params],
        _ops("shape_params", backend="stylegan"),
        {},
        "panthera-leo",
        ["'stylegan'", "shape sampler"],
    ),
    "shape-missing-smal-data": (
        [shape_params],
        _ops("shape_params", smal_data="{bad}/smal_data.pkl"),
        {},
        "panthera-leo",
        ["{bad}/smal_data.pkl"],
    ),
    "shape-missing-flow-checkpoint": (
        [shape_params],
        _ops(
            "shape_params",
            backend="clip_flow",
            flow_checkpoint="{bad}/awol.pt",
            attributes="{bad}/attributes.npz",
        ),
        {},
        "panthera-leo",
        ["{bad}/awol.pt"],
    ),
    "pose-unknown-backend": (
        [pose_params],
        _ops("pose_params", backend="mocap"),
        {},
        "panthera-leo",
        ["'mocap'"],
    ),
    "pose-bad-camera-model": (
        [pose_params],
        _ops("pose_params", camera_model="fisheye"),
        {},
        "panthera-leo",
        ["'fisheye'", "camera model"],
    ),
    "pose-bank-missing": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/dog_poses.npz"),
        {},
        "panthera-leo",
        ["{bad}/dog_poses.npz", "does not exist"],
    ),
    "pose-bank-nan": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/nan_bank.npz"),
        {},
        "panthera-leo",
        ["{bad}/nan_bank.npz", "NaN"],
    ),
    "pose-bank-one-nan": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/one_nan_bank.npz"),
        {},
        "panthera-leo",
        ["{bad}/one_nan_bank.npz", "NaN", "pose 2"],
    ),
    "pose-bank-wrong-shape": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/wrong_shape_bank.npz"),
        {},
        "panthera-leo",
        ["{bad}/wrong_shape_bank.npz", "shape"],
    ),
    "pose-bank-is-png": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/image.pkl"),
        {},
        "panthera-leo",
        ["{bad}/image.pkl"],
    ),
    "settings-missing-body-model": (
        [shape_params],
        {},
        {"body_model": "{bad}/smal_plus.pkl"},
        "panthera-leo",
        ["{bad}/smal_plus.pkl", "not found"],
    ),
    "settings-hostile-body-model": (
        [shape_params],
        {},
        {"body_model": "{bad}/evil_stack_global.pkl"},
        "panthera-leo",
        ["{bad}/evil_stack_global.pkl", "numpy._core.numeric.builtins.exec"],
    ),
    "shape-hostile-smal-data": (
        [shape_params],
        _ops("shape_params", smal_data="{bad}/evil_smal_data.pkl"),
        {},
        "panthera-leo",
        ["{bad}/evil_smal_data.pkl", "global builtins.exec"],
    ),
    "shape-os-system-smal-data": (
        [shape_params],
        _ops("shape_params", smal_data="{bad}/evil_os_system.pkl"),
        {},
        "panthera-leo",
        ["{bad}/evil_os_system.pkl", "global os.system"],
    ),
    "pose-bank-object-array": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/pickled_bank.npz"),
        {},
        "panthera-leo",
        ["{bad}/pickled_bank.npz", "allow_pickle=False"],
    ),
    "pose-bank-is-pickle": (
        [pose_params],
        _ops("pose_params", backend="bank", pose_bank="{bad}/pickle_as_bank.npz"),
        {},
        "panthera-leo",
        ["{bad}/pickle_as_bank.npz", "pickled"],
    ),
    "settings-truncated-body-model": (
        [shape_params],
        {},
        {"body_model": "{bad}/truncated.pkl"},
        "panthera-leo",
        ["{bad}/truncated.pkl"],
    ),
    "settings-data-dir-is-file": (
        [shape_params],
        {},
        {"data_dir": "{bad}/not_a_dir"},
        "panthera-leo",
        ["{bad}/not_a_dir"],
    ),
    "partition-unknown-species": (
        [shape_params],
        {},
        {},
        "zzz-not-an-animal",
        ["'zzz-not-an-animal'"],
    ),
    "partition-key-bad-end": (
        [shape_params],
        {},
        {},
        "panthera_leo-",
        ["'panthera_leo-'", "start and end"],
    ),
    "partition-key-dots": (
        [shape_params],
        {},
        {},
        "panthera..leo",
        ["'panthera..leo'", "forbidden"],
    ),
    "captions-missing-upstream": (
        [captions],
        {},
        {},
        "panthera-leo",
        ["'control_renders'", "materialise it first"],
    ),
}


def _error_text(result) -> tuple[str, list[str]]:
    """Every message in the step (and resource set-up) failures' cause chains, and their exception classes."""
    texts, classes = [], []
    for event in result.all_events:
        if event.is_step_failure or event.event_type_value == "RESOURCE_INIT_FAILURE":
            err = event.event_specific_data.error
            while err is not None:
                texts.append(err.message)
                classes.append(err.cls_name)
                err = err.cause
    return "\n".join(texts), classes


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_bad_input(case, world):
    assets, run_config, overrides, species_key, words = CONFIG_CASES[case]
    run_config, overrides = _fill(run_config, world), _fill(overrides, world)
    fields = ("data_dir", "body_model", "samples_per_shard", "resolution")
    settings = GenZooSettings(**{**{f: getattr(world.settings, f) for f in fields}, **overrides})
    before = _snapshot(world.data, world.bad)
    result = dg.materialize(
        assets,
        instance=world.instance,
        resources={"settings": settings},
        partition_key=_key(species_key),
        run_config=run_config,
        raise_on_error=False,
    )
    assert not result.success
    assert _snapshot(world.data, world.bad) == before
    text, classes = _error_text(result)
    for word in (_fill(w, world) for w in words):
        assert word.casefold() in text.casefold(), (word, text)
    assert not UNCLEAR.intersection(classes), (classes, text)


# --- settings: every Config and resource field with a range -------------------------------------

SETTING_CASES = {
    # id: (the object built with the bad value, words its one-line SettingError must contain)
    "settings-negative-resolution": (
        lambda w: GenZooSettings(resolution=-64),
        ["GenZooSettings.resolution = -64", "[32, 4096]"],
    ),
    "settings-huge-resolution": (
        lambda w: GenZooSettings(resolution=100_000),
        ["resolution = 100000", "[32, 4096]"],
    ),
    "settings-zero-samples-per-shard": (
        lambda w: GenZooSettings(samples_per_shard=0),
        ["samples_per_shard = 0", ">= 1"],
    ),
    "settings-zero-dataset-size": (
        lambda w: GenZooSettings(dataset_size=0),
        ["dataset_size = 0", ">= 1"],
    ),
    "settings-dog-fraction": (
        lambda w: GenZooSettings(dog_fraction=1.5),
        ["dog_fraction = 1.5", "[0.0, 1.0]"],
    ),
    "settings-unknown-device": (
        lambda w: GenZooSettings(device="gpu"),
        ["device = 'gpu'", "cuda:N"],
    ),
    "settings-negative-seed": (lambda w: GenZooSettings(base_seed=-1), ["base_seed = -1", ">= 0"]),
    "settings-too-many-subdivisions": (
        lambda w: GenZooSettings(subdivisions=5),
        ["subdivisions = 5", "[0, 4]"],
    ),
    "regressor-negative-max-steps": (
        lambda w: RegressorTrainConfig(max_steps=-1),
        ["max_steps = -1", ">= 1"],
    ),
    "regressor-zero-val-every": (
        lambda w: RegressorTrainConfig(val_every=0),
        ["val_every = 0", ">= 1"],
    ),
    "regressor-zero-batch-size": (
        lambda w: RegressorTrainConfig(batch_size=0),
        ["batch_size = 0", ">= 1"],
    ),
    "regressor-unknown-size": (
        lambda w: RegressorTrainConfig(size="gigantic"),
        ["size = 'gigantic'", "'auto', 'tiny' or 'huge'"],
    ),
    "regressor-unknown-backbone": (
        lambda w: RegressorTrainConfig(backbone="vgg"),
        ["backbone = 'vgg'", "'resnet'"],
    ),
    "regressor-missing-pretrained": (
        lambda w: RegressorTrainConfig(size="huge", pretrained_backbone=w.f("vitpose-h")),
        ["pretrained_backbone = '{bad}/vitpose-h'", "no such folder"],
    ),
    "regressor-pretrained-with-tiny": (
        lambda w: RegressorTrainConfig(size="tiny", pretrained_backbone=w.f("clip_empty")),
        ["pretrained_backbone", "size: huge"],
    ),
    "regressor-grayscale-above-one": (
        lambda w: RegressorTrainConfig(grayscale=1.5),
        ["grayscale = 1.5", "[0.0, 1.0]"],
    ),
    "regressor-negative-flip": (
        lambda w: RegressorTrainConfig(flip=-0.5),
        ["flip = -0.5", "[0.0, 1.0]"],
    ),
    "regressor-negative-lr": (lambda w: RegressorTrainConfig(lr=-1e-3), ["lr = -0.001", ">= 0.0"]),
    "regressor-negative-orient-weight": (
        lambda w: RegressorTrainConfig(global_orient_weight=-1.0),
        ["global_orient_weight = -1.0", ">= 0.0"],
    ),
    "render-resolution-too-small": (
        lambda w: RenderConfig(resolution=16),
        ["resolution = 16", "[32, 4096]"],
    ),
    "export-val-fraction-one": (
        lambda w: ExportConfig(val_fraction=1.0),
        ["val_fraction = 1.0", "[0.0, 1.0)"],
    ),
    "export-unknown-camera": (
        lambda w: ExportConfig(camera_version="v3"),
        ["camera_version = 'v3'", "'v1', 'v2'"],
    ),
    "export-zero-maxcount": (lambda w: ExportConfig(maxcount=0), ["maxcount = 0", ">= 1"]),
    "images-zero-steps": (lambda w: ImageConfig(steps=0), ["steps = 0", ">= 1"]),
    "images-threshold-above-one": (
        lambda w: ImageConfig(flag_threshold=2.0),
        ["flag_threshold = 2.0", "[0.0, 1.0]"],
    ),
    "images-unknown-speed-option": (
        lambda w: ImageConfig(speed={"turbo": True}),
        ["ImageConfig.speed", "unknown speed options ['turbo']"],
    ),
    "prompts-zero-tokens": (
        lambda w: PromptConfig(max_tokens=0),
        ["max_tokens = 0", "[1, 512] tokens"],
    ),
    "benchmark-zero-batch": (lambda w: BenchmarkConfig(batch_size=0), ["batch_size = 0", ">= 1"]),
    "captions-fallback-rate": (
        lambda w: CaptionConfig(max_fallback_rate=-0.1),
        ["max_fallback_rate = -0.1", "[0.0, 1.0]"],
    ),
    "regressor-nan-orient-weight": (
        lambda w: RegressorTrainConfig(global_orient_weight=float("nan")),
        ["global_orient_weight = nan", "finite"],
    ),
    "regressor-infinite-lr": (
        lambda w: RegressorTrainConfig(lr=float("inf")),
        ["lr = inf", "finite"],
    ),
    "regressor-nan-grayscale": (
        lambda w: RegressorTrainConfig(grayscale=float("nan")),
        ["grayscale = nan", "[0.0, 1.0]"],
    ),
    "images-nan-guidance": (
        lambda w: ImageConfig(guidance=float("nan")),
        ["guidance = nan", "finite"],
    ),
    "settings-nan-dog-fraction": (
        lambda w: GenZooSettings(dog_fraction=float("nan")),
        ["dog_fraction = nan", "[0.0, 1.0]"],
    ),
    "pose-camera-margin-half": (
        lambda w: PoseConfig(camera_margin=0.5),
        ["camera_margin = 0.5", "[0.0, 0.5)"],
    ),
}


@pytest.mark.parametrize("case", list(SETTING_CASES))
def test_setting_out_of_range(case, world):
    build, words = SETTING_CASES[case]
    with pytest.raises(SettingError) as info:
        build(world)
    message = str(info.value)
    assert "\n" not in message, message
    for word in (_fill(w, world) for w in words):
        assert word in message, (word, message)


def _plant_checkpoint(world) -> Path:
    path = world.data / "regressor" / "checkpoint.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"a trained checkpoint")
    return path


RUN_CONFIG_SETTING_CASES = {
    # id: (run config, words the one-line step failure must contain): built in the step, before its body
    "run-regressor-negative-max-steps": (
        _ops("regressor", max_steps=-1),
        ["max_steps = -1", ">= 1"],
    ),
    "run-regressor-zero-val-every": (_ops("regressor", val_every=0), ["val_every = 0", ">= 1"]),
    "run-regressor-infinite-lr": (_ops("regressor", lr=float("inf")), ["lr = inf", "finite"]),
    "run-settings-tiny-resolution": (
        {"resources": {"settings": {"config": {"resolution": 8}}}},
        ["resolution = 8", "[32, 4096]"],
    ),
}


@pytest.mark.parametrize("case", list(RUN_CONFIG_SETTING_CASES))
def test_setting_in_run_config_fails_the_step_once_and_replaces_no_checkpoint(case, world):
    run_config, words = RUN_CONFIG_SETTING_CASES[case]
    checkpoint = _plant_checkpoint(world)
    before = _snapshot(world.data, world.bad)
    result = dg.materialize(
        [regressor],
        instance=world.instance,
        resources={"settings": GenZooSettings(data_dir=str(world.data))},
        run_config=run_config,
        raise_on_error=False,
    )
    assert not result.success
    assert (
        _snapshot(world.data, world.bad) == before
        and checkpoint.read_bytes() == b"a trained checkpoint"
    )
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    text, classes = _error_text(result)
    lines = [line for line in text.splitlines() if "SettingError" in line]
    assert len(lines) == 1, text
    for word in words:
        assert word in lines[0], (word, text)


def test_unknown_regressor_size_is_refused_when_the_run_is_launched(world):
    with pytest.raises(dg.DagsterInvalidConfigError) as info:
        dg.materialize(
            [regressor],
            instance=world.instance,
            resources={"settings": world.settings},
            run_config=_ops("regressor", size="gigantic"),
        )
    (line,) = [line for line in str(info.value).splitlines() if "gigantic" in line]
    assert "regressor:config:size" in line and "'tiny'" in line and "'huge'" in line, line


# --- files and model folders given to core loaders ----------------------------------------------


def _vitpose(world):
    cfg = dataclasses.replace(RegressorConfig.tiny(20), pretrained_backbone=world.f("vitpose-base"))
    return build_regressor(cfg)


def _animal3d_missing_fields(world):
    body = types.SimpleNamespace(num_betas=41, source="smal")
    return load_animal3d(world.f("missing_fields.json"), body)


FILE_CASES = {
    # id: (call, words the message must contain)
    "flux-missing-weights": (
        lambda w: make_generator(
            "flux_controlnet",
            base_model=w.f("FLUX.1-dev"),
            canny_controlnet=w.f("canny"),
            depth_controlnet=w.f("depth"),
        ),
        ["{bad}/FLUX.1-dev", "does not exist"],
    ),
    "vlm-missing-weights": (
        lambda w: make_captioner("vlm", model_dir=w.f("Molmo-7B-D")),
        ["{bad}/Molmo-7B-D"],
    ),
    "llm-incomplete-folder": (
        lambda w: make_prompter("llm", model_dir=w.f("llm_incomplete")),
        ["{bad}/llm_incomplete", "weights", "tokenizer"],
    ),
    "clip-missing-folder": (
        lambda w: ClipTextEncoder(w.f("clip-vit-b-32")),
        ["{bad}/clip-vit-b-32"],
    ),
    "clip-empty-folder": (lambda w: ClipTextEncoder(w.f("clip_empty")), ["{bad}/clip_empty"]),
    "vitpose-missing-folder": (_vitpose, ["{bad}/vitpose-base"]),
    "attributes-without-species": (
        lambda w: load_animal_attributes(w.f("attributes.npz")).gaussian("Panthera leo"),
        ["'Panthera leo'", "{bad}/attributes.npz"],
    ),
    "attributes-is-text": (
        lambda w: load_animal_attributes(w.f("missing_columns.csv")),
        ["{bad}/missing_columns.csv"],
    ),
    "animal3d-invalid-json": (
        lambda w: load_animal3d(w.f("invalid.json"), types.SimpleNamespace(num_betas=41)),
        ["{bad}/invalid.json", "not valid JSON"],
    ),
    "animal3d-missing-fields": (
        _animal3d_missing_fields,
        ["{bad}/missing_fields.json", "supercategory"],
    ),
    "species-row-sql-key": (
        lambda w: frame.species_row(w.data, "x'; DROP TABLE samples; --"),
        ["DROP TABLE samples", "forbidden"],
    ),
    "catalog-query-write": (
        lambda w: query.query("UPDATE _snap_samples SET shard = 'x'", data_dir=w.data),
        ["UPDATE _snap_samples", "read-only"],
    ),
    "catalog-query-corrupt-file": (
        lambda w: query.query("SELECT 1", data_dir=w.bad / "corrupt_catalog"),
        ["{bad}/corrupt_catalog/catalog.duckdb", "genzoo catalog refresh"],
    ),
    "smal-data-stack-global": (
        lambda w: load_smal_clusters(w.f("evil_stack_global.pkl")),
        ["{bad}/evil_stack_global.pkl", "numpy._core.numeric.builtins.exec"],
    ),
    "benchmark-hostile-checkpoint": (
        lambda w: load_regressor(w.f("evil_checkpoint.pt")),
        ["{bad}/evil_checkpoint.pt", "refusing to load global builtins.exec"],
    ),
    "benchmark-other-body-model": (
        lambda w: load_regressor(w.f("smal_checkpoint.pt"), body_model=procedural_body_model()),
        ["{bad}/smal_checkpoint.pt", "/models/smal_CVPR2017.pkl", "procedural"],
    ),
    "resume-hostile-last-pt": (
        lambda w: train(
            TrainConfig(regressor=RegressorConfig.tiny(20), max_steps=1),
            [],
            [],
            procedural_body_model(),
            w.bad / "resume",
        ),
        ["{bad}/resume/last.pt", "refusing to load global builtins.exec"],
    ),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_file_bad_input(case, world):
    call, words = FILE_CASES[case]
    before = _snapshot(world.data, world.bad)
    with pytest.raises(
        (ValueError, OSError, RuntimeError)
    ) as info:  # what the CLI and the steps report cleanly
        call(world)
    assert _snapshot(world.data, world.bad) == before
    message = str(info.value)
    for word in (_fill(w, world) for w in words):
        assert word.casefold() in message.casefold(), (word, message)


def test_at_least_thirty_distinct_bad_inputs():
    cases = (CLI_CASES, CONFIG_CASES, FILE_CASES, SETTING_CASES, RUN_CONFIG_SETTING_CASES)
    assert sum(map(len, cases)) >= 30


def test_no_hostile_file_ran(world):
    """Every hostile file above was loaded by some case; none of them created its marker."""
    assert not (world.bad / PWNED).exists()


def test_a_bug_in_our_code_is_not_reported_as_an_input_error(monkeypatch):
    """A builtin KeyError (or TypeError, RuntimeError) is our bug: its traceback, not one line."""

    def buggy(args):
        raise KeyError("num_vertices")

    monkeypatch.setitem(cli.HANDLERS, "body", buggy)
    monkeypatch.delenv("GENZOO_DEBUG", raising=False)
    with pytest.raises(KeyError, match="num_vertices"):
        cli.main(["body", "info", "procedural"])


def test_an_input_error_inside_an_asset_run_is_one_line_on_stderr(world, tmp_path):
    """The demo's first per-sample run fails on a bad body model: Dagster's step-failure log (a
    hundred lines) is not printed, only the one line, and the run's step is not retried."""
    env = {
        **os.environ,
        "GENZOO_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "GENZOO_BODY_MODEL": world.f("truncated.pkl"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("GENZOO_DEBUG", None)
    argv = ["demo", "--species", "3", "--samples-per-shard", "2", "--workers", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "genzoo_assets.app.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genzoo: error: "), run.stderr
    assert world.f("truncated.pkl") in lines[0] and "Traceback" not in run.stdout + run.stderr
