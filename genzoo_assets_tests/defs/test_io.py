from types import SimpleNamespace

import pandas as pd
import pytest

from genzoo_assets.core.checks import SampleIdMismatchError
from genzoo_assets.defs.io import progress_log, read_merged, write_partition


def _table(ids, **cols):
    return pd.DataFrame({"sample_id": ids, "species": "lion", "shard": "000", **cols})


def test_read_merged_joins_equal_id_sets_and_names_a_mismatch(tmp_path):
    ids = [f"lion.000.{i:05d}" for i in range(3)]
    write_partition(tmp_path, "pose_params", "lion", "000", _table(ids, yaw_deg=[0.0, 1.0, 2.0]))
    write_partition(
        tmp_path, "control_renders", "lion", "000", _table(ids[::-1], mask_area=[3, 2, 1])
    )
    merged = read_merged(tmp_path, ["pose_params", "control_renders"], "lion", "000")
    assert merged["sample_id"].tolist() == ids and merged["mask_area"].tolist() == [1, 2, 3]

    write_partition(tmp_path, "control_renders", "lion", "000", _table(ids[:1], mask_area=[1]))
    with pytest.raises(
        SampleIdMismatchError,
        match=r"species=lion shard=000: .*control_renders lacks 2 \(lion.000.00001, lion.000.00002\)",
    ):
        read_merged(tmp_path, ["pose_params", "control_renders"], "lion", "000")


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)


def test_progress_log_reports_every_sixteenth_item_the_last_and_a_slow_item():

    context = SimpleNamespace(log=_Log())
    progress = progress_log(context, "generated images")
    for done in range(1, 41):
        progress(done, 40)
    assert context.log.lines == [
        "generated images 16/40",
        "generated images 32/40",
        "generated images 40/40",
    ]

    slow = SimpleNamespace(log=_Log())
    progress = progress_log(slow, "generated images", seconds=0.0)  # every item is slower than 0 s
    for done in range(1, 4):
        progress(done, 40)
    assert slow.log.lines == [f"generated images {i}/40" for i in (1, 2, 3)]
