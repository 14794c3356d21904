import pytest

from genzoo_assets_tests.core.evaluate.tiny_model import tiny_body_model


@pytest.fixture(scope="session")
def body_model():
    return tiny_body_model(41)
