import os

import dagster as dg
import pytest

from genzoo_assets.defs.resources import GenZooSettings

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def settings(tmp_path) -> GenZooSettings:
    return GenZooSettings(data_dir=str(tmp_path / "data"), samples_per_shard=4, resolution=128)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session")
def all_defs() -> dg.Definitions:
    from genzoo_assets.definitions import defs

    return defs()
