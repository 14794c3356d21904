"""End to end through the web UI: launch one species × shard partition by clicking, as a user would."""

import shutil
from pathlib import Path

import pytest

from genzoo_assets_tests.e2e.conftest import GRACE_S, SAMPLES_PER_SHARD, SCREENSHOT_DIR
from genzoo_assets_tests.e2e.webui import CHROMIUM_ARGS, runs, wait_for_run

pytestmark = pytest.mark.slow  # a browser against `dg dev`

SPECIES = "dog-labrador-retriever"
SHARD = "000"
JOB = (
    "generate_samples"  # shape_params → pose_params → control_renders → captions → prompts → images
)
UI_TIMEOUT_MS = 60_000


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOT_DIR / path.name)
    return path


def _pick_partition(page, dialog, key: str) -> None:
    """Open the first empty partition picker in the launch dialog, filter it to `key`, tick it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    picker = page.get_by_placeholder("Filter partitions")
    for attempt in range(
        3
    ):  # the newsletter modal (and its handler's Skip click) can close the picker
        dialog.get_by_text("Select a partition or create one").first.click()
        try:
            picker.wait_for(timeout=UI_TIMEOUT_MS // 4)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    picker.fill(key)
    item = page.get_by_role("menuitem").filter(has_text=key).filter(has_not_text="Select all")
    item.first.wait_for(timeout=UI_TIMEOUT_MS)
    assert item.count() == 1, f"partition filter {key!r} matched {item.count()} items"
    item.first.click()
    dialog.get_by_text("Launch runs to materialize").click()  # closes the picker, keeps the dialog


def test_launch_a_species_partition_from_the_web_ui(web_ui, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    from genzoo_assets.core.catalog.query import query
    from genzoo_assets.core.catalog.refresh import refresh_catalog

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            # Dagster's first-visit newsletter modal covers the page whenever it shows up. It can open
            # under the launch dialog's overlay, where a pointer click on Skip never lands: dispatch it.
            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"),
                lambda: page.get_by_role("button", name="Skip").dispatch_event("click"),
            )

            page.goto(f"{web_ui.base_url}/asset-groups", wait_until="domcontentloaded")
            for group in ("taxonomy", "sampling", "images", "catalog"):
                page.get_by_text(group, exact=True).first.wait_for()
            page.get_by_role("button", name="Materialize all").wait_for()
            _screenshot(page, tmp_path, "01-asset-graph")

            page.goto(
                f"{web_ui.base_url}/locations/{web_ui.location}/jobs/{JOB}",
                wait_until="domcontentloaded",
            )
            page.get_by_role("button", name="Materialize all").click()
            dialog = page.get_by_role("dialog").filter(has_text="Partition selection")
            dialog.get_by_text("Launch runs to materialize 6 assets").wait_for()
            _pick_partition(
                page, dialog, SHARD
            )  # dimensions are listed by name: shard, then species
            _pick_partition(page, dialog, SPECIES)
            launch = dialog.get_by_role("button", name="Launch 1 run")
            launch.wait_for()
            _screenshot(page, tmp_path, "02-launch-dialog")
            launch.click()

            tags = {"dagster/partition/species": SPECIES, "dagster/partition/shard": SHARD}
            run = wait_for_run(web_ui.base_url, tags, timeout=240, on_poll=web_ui.tracker.snapshot)
            assert run["jobName"] == JOB

            page.goto(f"{web_ui.base_url}/runs/{run['runId']}", wait_until="domcontentloaded")
            page.get_by_text("Success").first.wait_for()
            page.get_by_text("Loading run logs").wait_for(state="hidden")
            _screenshot(page, tmp_path, "03-run-succeeded")
            page.goto(f"{web_ui.base_url}/assets/images", wait_until="domcontentloaded")
            page.get_by_text("Latest materialization").first.wait_for()
            page.wait_for_timeout(1500)
            _screenshot(page, tmp_path, "04-images-asset")
        finally:
            browser.close()

    launched = [r for r in runs(web_ui.base_url) if r["jobName"] == JOB]
    assert [r["runId"] for r in launched] == [run["runId"]], (
        f"only the clicked run should exist (new_species_sensor must not request partitions): {launched}"
    )

    refresh_catalog(web_ui.data_dir)
    rows = query(
        f'SELECT sample_id, species, shard, "index", image_path, caption, prompt FROM samples '
        f"WHERE species = '{SPECIES}' AND shard = '{SHARD}' ORDER BY \"index\"",
        data_dir=web_ui.data_dir,
    )
    assert rows["index"].tolist() == list(range(SAMPLES_PER_SHARD))
    assert rows["caption"].str.len().gt(0).all() and rows["prompt"].str.len().gt(0).all()
    for image in rows["image_path"]:
        assert (web_ui.data_dir / image).is_file(), image

    left = web_ui.tracker.stop(grace_s=GRACE_S)
    assert not left, f"processes left after stopping `dg dev`: {left}"
