"""The ``images`` asset's ``speed`` run config: the generator's SpeedOptions, checked up front.

The option reaching a real generator and every image's provenance is tested with the tiny FLUX in
``test_images_flux.py``; here the config itself: its fields mirror ``SpeedOptions``, it becomes
the generator's ``speed`` option, and a bad value fails the step before it reads anything, in one
line naming the field, without a retry.
"""

import dataclasses

import dagster as dg
import pytest

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.imagegen import SpeedOptions
from genzoo_assets.defs.images import ImageConfig, SpeedConfig, _generator_options, images
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.resources import SettingError


def test_speed_config_mirrors_the_generator_options():
    fields = {f.name: f.default for f in dataclasses.fields(SpeedOptions)}
    assert {name: info.default for name, info in SpeedConfig.model_fields.items()} == fields
    assert ImageConfig().speed.options() == SpeedOptions()


def test_speed_reaches_the_generator_options(settings):
    config = ImageConfig(backend="flux_controlnet", speed={"compile": "regional"})
    assert _generator_options(config, settings)["speed"] == SpeedOptions(compile="regional")
    lossy = ImageConfig(backend="sd3_controlnet", speed={"fp8_storage": True, "vae_tiling": True})
    options = _generator_options(lossy, settings)["speed"]
    assert options.lossy and options.fp8_storage and options.vae_tiling


@pytest.mark.parametrize(
    "speed, expected",
    [
        ({"fast": True}, r"ImageConfig.speed = \{'fast': True\}: unknown speed options \['fast'\]"),
        ({"compile": "max"}, r"ImageConfig.speed = .*compile='max': expected one of"),
        (
            {"reproduce_notebook": True, "fp8_storage": True},
            r"ImageConfig.speed = .*reproduce_notebook=True .* cannot be combined",
        ),
    ],
)
def test_a_bad_speed_option_is_one_line_naming_the_field(speed, expected):
    with pytest.raises(SettingError, match=expected) as info:
        ImageConfig(backend="flux_controlnet", speed=speed)
    assert isinstance(info.value, InputError) and "\n" not in str(info.value)


def test_render_backend_refuses_speed_options(settings):
    config = ImageConfig(backend="render", speed={"vae_tiling": True})
    with pytest.raises(InputError, match="ImageConfig.speed = .* backend 'render' has no speed"):
        _generator_options(config, settings)
    assert "speed" not in _generator_options(ImageConfig(backend="render"), settings)


def test_a_bad_speed_option_fails_the_materialisation_once_in_one_line(settings, instance):
    instance.add_dynamic_partitions("species", ["panthera-leo"])
    result = dg.materialize(
        [images],
        instance=instance,
        resources={"settings": settings},
        run_config={
            "ops": {"images": {"config": {"backend": "flux_controlnet", "speed": {"fast": 1}}}}
        },
        partition_key=sample_partition_key("panthera-leo", "000"),
        raise_on_error=False,
    )
    assert not result.success
    events = result.all_events
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in events)
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert message == (
        "ImageConfig.speed = {'fast': 1}: unknown speed options ['fast']; known: "
        "['compile', 'fp8_storage', 'reproduce_notebook', 'vae_tiling']"
    )
