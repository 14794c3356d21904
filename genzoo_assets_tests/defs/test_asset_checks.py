"""The per-sample assets' checks and backend metadata through Dagster, on one tiny partition.

The offline backends run every check that can fail for them; the model-only checks (fallback
rate, alignment) are not executed for them. A prompter that always falls back is reported as the
fallback it was, and fails its ceiling.
"""

import dagster as dg
import pytest

from genzoo_assets.defs.images import images
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts
from genzoo_assets_tests.core.text.tiny import save_tiny_qwen2

pytestmark = pytest.mark.slow  # a whole partition through every per-sample asset (~60 s)

KEY = sample_partition_key("panthera-leo", "000")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    settings = GenZooSettings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        samples_per_shard=2,
        resolution=64,
        device="cpu",
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        result = dg.materialize(
            [shape_params, pose_params, control_renders, captions, prompts, images],
            instance=instance,
            resources={"settings": settings},
            partition_key=KEY,
        )
        assert result.success
        yield instance, settings, result


def _checks(result) -> dict:
    return {
        (c.asset_key.to_user_string(), c.check_name): c
        for c in result.get_asset_check_evaluations()
    }


def test_offline_backends_run_the_checks_that_can_fail_for_them(chain):
    checks = _checks(chain[2])
    assert set(checks) == {
        ("shape_params", "betas_within_sampler_bound"),
        ("control_renders", "keypoints_reproject"),
        ("images", "images_at_control_resolution"),
    }
    assert all(c.passed for c in checks.values())
    assert checks[("shape_params", "betas_within_sampler_bound")].metadata["bound"].value == 5.0
    assert checks[("control_renders", "keypoints_reproject")].metadata["max_error_px"].value < 0.5
    meta = chain[2].asset_materializations_for_node("images")[0].metadata
    assert meta["backend"].value == "render_composite" and meta["backends"].value == {
        "render_composite": 2
    }
    assert meta["contact_sheet"].value.startswith("![generated images](data:image/jpeg;base64,")
    assert len(meta["contact_sheet"].value) < 40_000  # a thumbnail, not the sheet


def test_a_prompter_that_always_falls_back_is_reported_and_fails_its_ceiling(chain, tmp_path):
    instance, settings, _ = chain
    folder = save_tiny_qwen2(tmp_path / "qwen-eos", only_eos=True)  # every answer empty
    config = {"ops": {"prompts": {"config": {"backend": "llm", "model_dir": str(folder)}}}}
    result = dg.materialize(
        [prompts],
        instance=instance,
        resources={"settings": settings},
        partition_key=KEY,
        run_config=config,
    )
    meta = result.asset_materializations_for_node("prompts")[0].metadata
    fallback = "template(fallback:llm:qwen-eos)"
    assert meta["backend"].value == fallback and meta["backends"].value == {fallback: 2}
    check = _checks(result)[("prompts", "fallback_rate_below_ceiling")]
    assert (
        not check.passed
        and check.metadata["fallback_rate"].value == 1.0
        and check.metadata["ceiling"].value == 0.1
    )
