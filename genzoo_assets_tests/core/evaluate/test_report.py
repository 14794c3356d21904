import re

import cv2
import numpy as np

from genzoo_assets.core.evaluate.benchmark import run_benchmark
from genzoo_assets.core.evaluate.gallery import select_gallery
from genzoo_assets.core.evaluate.report import pck_curve, write_report
from genzoo_assets_tests.core.evaluate.test_benchmark import oracle, synthetic_set


def test_report_files(tmp_path, body_model):
    ts, cam = synthetic_set(body_model)
    res = run_benchmark(
        ts, oracle(ts, cam, noise=0.1), body_model, baselines={"noisy": oracle(ts, cam, noise=0.4)}
    )
    items = select_gallery(res, ts, body_model, n_best=2, n_worst=2, size=96)
    assert [i.label for i in items] == ["best", "best", "worst", "worst"]
    paths = write_report(res, tmp_path / "report", gallery_items=items)
    for key in ("markdown", "html", "pck_curve", "family_bars", "predictions"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    assert len(paths["gallery"]) == 4
    img = cv2.imread(str(paths["gallery"][0]))
    assert img.shape[0] > 96 and img.shape[1:] == (96, 3)  # the crop under a title bar
    assert img[-96:].std() > 1.0  # the overlay drew on the flat grey crop
    page = paths["html"].read_text()
    for src in re.findall(r"src='([^']+)'", page):
        assert (paths["html"].parent / src).is_file()  # relative links resolve next to the page
    assert "PA-MPJPE" in page and "noisy" in page
    md = paths["markdown"].read_text()
    assert "| model |" in md and "(pck_curve.png)" in md
    assert not list(tmp_path.rglob(".*.tmp"))


def test_pck_curve_is_monotone():
    err = np.array([[0.05, np.nan, 0.2], [0.4, 0.01, np.nan]])
    curve = pck_curve(err, [0.02, 0.1, 0.3, 0.5])
    np.testing.assert_allclose(curve, [0.25, 0.5, 0.75, 1.0])


def test_report_marks_missing_vertex_metrics(tmp_path, body_model):
    from genzoo_assets.core.body import procedural_body_model
    from genzoo_assets_tests.core.evaluate.test_benchmark import _fixed_prediction

    ts, _ = synthetic_set(body_model)
    res = run_benchmark(
        ts, _fixed_prediction(20), procedural_body_model(), gt_body_model=body_model, v2v=False
    )
    md = write_report(res, tmp_path / "r")["markdown"].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert row.count("—") == 2 and "AUC ↑" in md
    assert "Keypoint sets: prediction derived, ground truth derived" in md
