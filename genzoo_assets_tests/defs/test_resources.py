import dagster as dg
import pytest

from genzoo_assets.defs.resources import GenZooSettings, settings_from_env, settings_resource

ENV = {"GENZOO_DATA_DIR": "/srv/zoo", "GENZOO_SAMPLES_PER_SHARD": "24", "GENZOO_DEVICE": "cpu"}


def test_settings_from_env_reads_the_variables_then_the_overrides():
    s = settings_from_env(ENV, samples_per_shard=None, resolution=96)
    assert (s.data_dir, s.samples_per_shard, s.device, s.resolution) == ("/srv/zoo", 24, "cpu", 96)
    assert settings_from_env({}) == GenZooSettings()  # unset: the fields' defaults
    with pytest.raises(ValueError, match="GENZOO_SAMPLES_PER_SHARD='many' is not an integer"):
        settings_from_env({"GENZOO_SAMPLES_PER_SHARD": "many"})
    assert settings_from_env({"GENZOO_SUBDIVISIONS": "0"}).subdivisions == 0
    with pytest.raises(Exception, match=r"subdivisions = 7: must be in \[0, 4\]"):
        settings_from_env({"GENZOO_SUBDIVISIONS": "7"})


def test_code_location_binds_env_vars_that_the_run_resolves(monkeypatch):
    resource = settings_resource(ENV)
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("GENZOO_RESOLUTION", raising=False)
    seen = {}

    @dg.asset
    def probe(settings: GenZooSettings) -> None:
        seen.update(settings.model_dump())

    assert dg.materialize([probe], resources={"settings": resource}).success
    assert (seen["data_dir"], seen["samples_per_shard"], seen["device"], seen["resolution"]) == (
        "/srv/zoo",
        24,
        "cpu",
        1024,
    )


def test_each_caller_gets_its_own_body_model_so_moving_one_moves_no_other():
    import torch

    settings = GenZooSettings(body_model="procedural")
    first, second = settings.body(), settings.body()
    assert first is not second
    first.to(torch.float64)  # what training does with its device (nn.Module.to is in place)
    assert all(b.dtype == torch.float32 for b in second.buffers() if b.is_floating_point())
    assert first.num_vertices == second.num_vertices and first.sha256 == second.sha256
