import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from genzoo_assets_tests.e2e.webui import ProcessTracker, free_port, wait_until_up

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO / "test-output" / "e2e"
SAMPLES_PER_SHARD = 2
RESOLUTION = 128
GRACE_S = 5.0  # SIGTERM, then SIGKILL: `dg dev` children ignore SIGTERM for ~15 s


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; a missing browser skips locally but fails on CI (`make test` installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(
            "chromium is not installed but CI is set: the web UI test must run on CI "
            "(`make test-deps` installs Debian's chromium)"
        )
    pytest.skip(
        "chromium is not installed (apt-get install chromium); the web UI test needs a browser"
    )


@dataclass
class WebUI:
    base_url: str
    location: str
    home: Path
    data_dir: Path
    log_path: Path
    tracker: ProcessTracker


@pytest.fixture
def web_ui(tmp_path, monkeypatch, chromium):
    """`genzoo ui` on a free loopback port, with a fresh DAGSTER_HOME and data directory.

    The `species` asset is materialised before the server starts, so the daemon's
    `new_species_sensor` sees every species already registered on its first tick and requests
    nothing: the only runs are the ones the test launches."""
    import dagster as dg

    from genzoo_assets.app.instance import project_instance
    from genzoo_assets.app.ui import start_ui
    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.species import species

    home, data = tmp_path / "dagster_home", tmp_path / "data"
    for key, value in {
        "DAGSTER_HOME": str(home),
        "GENZOO_DATA_DIR": str(data),
        "GENZOO_SAMPLES_PER_SHARD": str(SAMPLES_PER_SHARD),
        "GENZOO_RESOLUTION": str(RESOLUTION),
        "GENZOO_EXECUTOR": "in_process",
    }.items():  # one process per run: ~10 s less per step
        monkeypatch.setenv(key, value)
    instance = project_instance()
    settings = GenZooSettings(
        data_dir=str(data), samples_per_shard=SAMPLES_PER_SHARD, resolution=RESOLUTION
    )
    assert dg.materialize([species], instance=instance, resources={"settings": settings}).success
    instance.dispose()

    port = free_port()
    log_path = tmp_path / "dg-dev.log"
    with open(log_path, "wb") as log:
        proc = start_ui("127.0.0.1", port, stdout=log, stderr=subprocess.STDOUT)
    tracker = ProcessTracker(proc)
    base_url = f"http://127.0.0.1:{port}"
    try:
        location = wait_until_up(base_url, proc, timeout=120, log_path=log_path)
        tracker.snapshot()
        yield WebUI(base_url, location, home, data, log_path, tracker)
    finally:
        left = tracker.stop(grace_s=GRACE_S)  # the test stops it itself; this is the safety net
        assert not left, f"processes left after stopping `dg dev`: {left}"
