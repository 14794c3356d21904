"""Fixtures shared by the whole suite."""

import pytest


@pytest.fixture(scope="session")
def body_model():
    """The embedded procedural body model (SMAL topology names, 20 betas): every stage's default."""
    from genzoo_assets.core.body import procedural_body_model

    return procedural_body_model()
