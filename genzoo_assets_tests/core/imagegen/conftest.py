import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest

from genzoo_assets_tests.fixtures.tiny_flux import build_tiny_flux


@pytest.fixture(scope="session")
def tiny_flux_dirs(tmp_path_factory):
    return build_tiny_flux(tmp_path_factory.mktemp("tiny_flux"))
