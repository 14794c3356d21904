"""Fixtures shared by the whole suite."""

import pytest


@pytest.fixture(scope="session")
def body_model():
    """The embedded procedural body model (SMAL topology names, 20 betas): every stage's default."""
    from genzoo_assets.core.body import procedural_body_model

    return procedural_body_model()


# `make test` runs the suite on two pytest-xdist workers (--dist loadgroup). Tests that share one
# local SLURM cluster (a session fixture that starts munged, slurmctld and slurmd) stay on one
# worker, so the machine runs one cluster, not one per worker.
SERIAL_GROUPS = {"slurm": ("slurm/", "deploy/test_slurm.py")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::", 1)[0].removeprefix("genzoo_assets_tests/")
        for group, prefixes in SERIAL_GROUPS.items():
            if path.startswith(prefixes):
                item.add_marker(pytest.mark.xdist_group(group))
