"""Fixtures shared by the whole suite."""

import os

import pytest

# pytest-xdist workers already share the cores out: each gets cores / workers intra-op threads
# (torch's OpenMP and MKL pools; the processes a test starts inherit it), not a pool as wide as the
# machine whose threads spin waiting for cores the other workers hold. Set before any test module
# imports torch; an explicit OMP_NUM_THREADS wins.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_threads))


@pytest.fixture(scope="session")
def body_model():
    """The embedded procedural body model (SMAL topology names, 20 betas): every stage's default."""
    from genzoo_assets.core.body import procedural_body_model

    return procedural_body_model()


# Each pytest-xdist worker is its own session: a worker that runs SLURM tests starts its own local
# cluster (``slurm/conftest.py``: its own ports and state directory), so SLURM tests run on any
# worker, and their waits (a job's one-minute time limit, sleeping GPU jobs) overlap other tests.


def _expected_length(item) -> tuple[float, bool]:
    """A test that needs its own longer timeout is long, a ``slow`` one longer than the rest."""
    timeout = item.get_closest_marker("timeout")
    return (
        float(timeout.args[0]) if timeout and timeout.args else 0.0,
        bool(item.get_closest_marker("slow")),
    )


def pytest_collection_modifyitems(config, items):
    # Longest first (a stable sort, so files stay together otherwise): the workers take the long
    # tests at the start and the short ones fill in, instead of one long test starting last and
    # running alone at the end.
    items.sort(key=_expected_length, reverse=True)
