"""The real ``flux_controlnet`` backend through the Dagster ``images`` asset, on a tiny random FLUX.

The tiny base pipeline and ControlNets are saved to disk and loaded back with ``from_pretrained``,
the production path; a broken model folder must fail the step at once, before any image is written.
"""

import json
import shutil

import dagster as dg
import pandas as pd
import pytest
from PIL import Image

from genzoo_assets.defs.images import images
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts
from genzoo_assets_tests.fixtures.tiny_flux import build_tiny_flux

pytestmark = pytest.mark.slow  # tiny FLUX through Dagster

SPECIES = "panthera-leo"
RESOLUTION = 64
UPSTREAM = [shape_params, pose_params, control_renders, captions, prompts]


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    return build_tiny_flux(tmp_path_factory.mktemp("tiny-flux"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """species, then shards 000 to 002 of one species up to prompts, in one Dagster instance."""
    settings = GenZooSettings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        samples_per_shard=2,
        resolution=RESOLUTION,
        device="cpu",
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        for shard in ("000", "001", "002"):
            result = dg.materialize(
                UPSTREAM,
                instance=instance,
                resources={"settings": settings},
                partition_key=sample_partition_key(SPECIES, shard),
            )
            assert result.success
        yield instance, settings


def _flux_config(base, canny, depth, **extra) -> dict:
    return {
        "ops": {
            "images": {
                "config": {
                    "backend": "flux_controlnet",
                    "base_model": str(base),
                    "canny_controlnet": str(canny),
                    "depth_controlnet": str(depth),
                    "steps": 2,
                    "max_sequence_length": 64,
                    "batch_size": 2,
                    **extra,
                }
            }
        }
    }


def _materialize_images(chain, shard, run_config):
    instance, settings = chain
    return dg.materialize(
        [images],
        instance=instance,
        resources={"settings": settings},
        run_config=run_config,
        partition_key=sample_partition_key(SPECIES, shard),
        raise_on_error=False,
    )


def test_flux_controlnet_backend_through_the_images_asset(chain, tiny_flux):
    result = _materialize_images(
        chain, "000", _flux_config(tiny_flux.base, tiny_flux.canny, tiny_flux.depth)
    )
    assert result.success
    root = chain[1].root()
    df = pd.read_parquet(root / "images" / SPECIES / "000.parquet")

    assert len(df) == 2 and df["sample_id"].is_unique
    assert set(df["image_backend"]) == {"flux_controlnet"}
    for raw in df["model_hashes"]:
        hashes = json.loads(raw)
        assert set(hashes) == {"base", "canny_controlnet", "depth_controlnet"}
        assert all(v.startswith("sha256:") and len(v) > len("sha256:") for v in hashes.values())
    assert df["model_hashes"].nunique() == 1
    assert df["steps"].tolist() == [2, 2]
    assert [list(s) for s in df["cond_scales"]] == [[0.2, 0.65]] * 2
    assert df["image_seed"].nunique() == 2
    for col in ("alignment_score", "edge_f1", "mask_iou", "flagged"):
        assert col in df.columns and df[col].notna().all()
    assert df["alignment_score"].between(0.0, 1.0).all()
    prov = json.loads(df["provenance"].iloc[0])
    assert prov["backend"] == "flux_controlnet" and prov["run_id"] == result.run_id
    assert (
        prov["params"]["max_sequence_length"] == 64 and prov["params"]["resolution"] == RESOLUTION
    )
    for rel in df["image_path"]:
        with Image.open(root / rel) as im:
            assert im.size == (RESOLUTION, RESOLUTION) and im.mode == "RGB"

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"images_at_control_resolution", "alignment_above_threshold"}
    assert checks["images_at_control_resolution"].passed
    assert checks["alignment_above_threshold"].metadata["flagged"].value == int(df["flagged"].sum())
    meta = result.asset_materializations_for_node("images")[0].metadata
    assert meta["backend"].value == "flux_controlnet" and meta["num_samples"].value == 2


def test_incomplete_base_model_fails_fast_before_any_image(chain, tiny_flux, tmp_path):
    broken = tmp_path / "flux-base-no-transformer-weights"
    shutil.copytree(tiny_flux.base, broken)
    removed = [f for f in (broken / "transformer").iterdir() if f.suffix == ".safetensors"]
    assert removed
    for f in removed:
        f.unlink()

    result = _materialize_images(
        chain, "001", _flux_config(broken, tiny_flux.canny, tiny_flux.depth)
    )
    assert not result.success
    events = result.all_events
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in events)
    failures = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    message = failures[0].step_failure_data.user_failure_data.description
    assert (
        "ModelDirectoryError" in message
        and "transformer" in message
        and "no weight file" in message
    )
    assert str(broken) in message

    root = chain[1].root()
    assert not (root / "images" / SPECIES / "001.parquet").exists()
    image_dir = root / "images" / SPECIES / "001"
    assert not image_dir.exists() or not any(image_dir.iterdir())


def test_speed_options_reach_the_generator_and_every_image_provenance(chain, tiny_flux):
    """A lossy opt-in set in the run config (the other options keep their defaults)."""
    result = _materialize_images(
        chain,
        "002",
        _flux_config(tiny_flux.base, tiny_flux.canny, tiny_flux.depth, speed={"vae_tiling": True}),
    )
    assert result.success
    df = pd.read_parquet(chain[1].root() / "images" / SPECIES / "002.parquet")
    assert len(df) == 2
    for raw in df["provenance"]:
        assert json.loads(raw)["params"]["speed"] == {
            "reproduce_notebook": False,
            "compile": "off",
            "fp8_storage": False,
            "vae_tiling": True,
            "lossy": True,
        }
