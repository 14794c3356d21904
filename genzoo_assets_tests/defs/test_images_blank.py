"""A blank generated image through the Dagster ``images`` asset: its sample is left out with a
warning and a count; a partition of blank images fails once, never retried."""

import dagster as dg
import pandas as pd
import pytest
from PIL import Image

from genzoo_assets.core import imagegen
from genzoo_assets.defs.images import images
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts

pytestmark = pytest.mark.slow  # the per-sample chain through Dagster

SPECIES = "panthera-leo"
UPSTREAM = [shape_params, pose_params, control_renders, captions, prompts]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    settings = GenZooSettings(
        data_dir=str(tmp_path_factory.mktemp("data")), samples_per_shard=3, resolution=64
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        for shard in ("000", "001"):
            assert dg.materialize(
                UPSTREAM,
                instance=instance,
                resources={"settings": settings},
                partition_key=sample_partition_key(SPECIES, shard),
            ).success
        yield instance, settings


def _blanking(monkeypatch, blank_first: int):
    """make_generator's generator, returning black images for the first ``blank_first`` requests."""
    make = imagegen.make_generator
    seen = {"n": 0}

    def patched(*args, **kwargs):
        inner = make(*args, **kwargs)
        generate = inner.generate

        def blank_some(batch):
            out = []
            for image in generate(batch):
                seen["n"] += 1
                out.append(Image.new("RGB", image.size) if seen["n"] <= blank_first else image)
            return out

        inner.generate = blank_some
        return inner

    monkeypatch.setattr(imagegen, "make_generator", patched)


def _materialize(chain, shard):
    instance, settings = chain
    return dg.materialize(
        [images],
        instance=instance,
        resources={"settings": settings},
        partition_key=sample_partition_key(SPECIES, shard),
        raise_on_error=False,
    )


def test_a_blank_image_leaves_its_sample_out_with_a_warning_and_a_count(chain, monkeypatch):
    _blanking(monkeypatch, blank_first=1)
    result = _materialize(chain, "000")
    assert result.success
    meta = result.asset_materializations_for_node("images")[0].metadata
    assert meta["num_samples"].value == 2 and meta["blank_images"].value == 1
    (blank_id,) = meta["blank_ids"].value
    df = pd.read_parquet(chain[1].root() / "images" / SPECIES / "000.parquet")
    assert blank_id not in set(df["sample_id"]) and len(df) == 2
    warnings = [
        e.user_message
        for e in chain[0].all_logs(result.run_id)
        if e.level == 30 and "blank" in e.user_message
    ]
    assert len(warnings) == 1 and blank_id in warnings[0]


def test_a_partition_of_blank_images_fails_once(chain, monkeypatch):
    _blanking(monkeypatch, blank_first=10)
    result = _materialize(chain, "001")
    assert not result.success
    events = [e.dagster_event for e in chain[0].all_logs(result.run_id) if e.dagster_event]
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in events)
    (failure,) = [e for e in events if e.event_type_value == "STEP_FAILURE"]
    assert "BlankImageError" in str(failure.event_specific_data.error)
    assert not (chain[1].root() / "images" / SPECIES / "001.parquet").exists()
