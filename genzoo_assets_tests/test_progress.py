"""`app/progress.py`: an export's per-sample callback becomes a line at most every `every_s`."""

from genzoo_assets.app.progress import ProgressLines, export_line


def test_lines_come_first_then_every_interval_then_at_the_end():
    now = {"t": 100.0}
    said = []
    lines = ProgressLines("genzoo export hf", said.append, every_s=30.0, clock=lambda: now["t"])
    for done, t in ((1, 101.0), (2, 120.0), (3, 131.5), (4, 140.0)):
        now["t"] = t
        lines(done, 5, 0, 2)
    now["t"] = 150.0
    lines(5, 5, 2, 2)
    assert said == [
        "genzoo export hf: 1/5 samples written, 0/2 shards (1 s)",
        "genzoo export hf: 3/5 samples written, 0/2 shards (32 s)",  # 30.5 s after the first
        "genzoo export hf: 5/5 samples written, 2/2 shards (50 s)",
    ]


def test_a_layout_without_shards_names_none():
    assert export_line("genzoo export animal3d", 7, 9, 0, 0, 12.4) == (
        "genzoo export animal3d: 7/9 samples written (12 s)"
    )


def test_genzoo_export_prints_its_progress_on_stderr(monkeypatch, capsys, tmp_path):
    from genzoo_assets.app import cli
    from genzoo_assets.core.dataset import hf

    def fake_export(data_dir, out, body, progress):
        for done in (1, 2):
            progress(done, 2, done, 2)
        return {"counts": {"train": 2}, "card": str(out)}

    monkeypatch.setattr(hf, "export_hf", fake_export)
    assert cli.main(["--data-dir", str(tmp_path), "export", "hf", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert [line.rsplit(" (", 1)[0] for line in err.splitlines()] == [
        "genzoo export hf: 1/2 samples written, 1/2 shards",
        "genzoo export hf: 2/2 samples written, 2/2 shards",
    ]
    assert out.startswith("train 2 -> ")
