"""The validation split the trainer holds: a bounded, deterministic choice of samples, kept as
uint8 crops, and the same model input as a streamed example."""

import pandas as pd
import pytest
import torch

from genzoo_assets.core.dataset.webdataset import INDEX, read_manifest
from genzoo_assets.core.regressor.data import load_split, materialize
from genzoo_assets.core.regressor.validation import (
    ValidationSplit,
    bytes_per_sample,
    choose_samples,
)

HW = (128, 96)


def test_the_choice_is_bounded_sorted_and_independent_of_order():
    ids = [f"s{i:03d}" for i in range(50)]
    chosen = choose_samples(ids, 7, seed=3)
    assert len(chosen) == 7 and chosen == sorted(chosen) and set(chosen) <= set(ids)
    assert choose_samples(list(reversed(ids)), 7, seed=3) == chosen
    assert choose_samples(ids, 7, seed=4) != chosen
    assert choose_samples(ids, 50) == choose_samples(ids, 500) == ids


def test_a_bound_below_one_is_refused():
    with pytest.raises(ValueError, match="max_samples = 0: must be >= 1"):
        choose_samples(["a"], 0)


def _val_ids(out_dir) -> list[str]:
    index = pd.read_parquet(read_manifest(out_dir)["export_dir"] + "/" + INDEX)
    return index.loc[index["split"] == "val", "sample_id"].tolist()


def test_kept_examples_are_the_chosen_ones_as_uint8_and_read_as_the_stream_does(catalog):
    out = catalog["out_dir"]
    ids = _val_ids(out)
    assert len(ids) > 3, "the fixture needs more than 3 val samples"
    split = ValidationSplit(out, "val", max_samples=3, input_hw=HW)
    assert len(split) == 3 and split.total == len(ids)
    assert [e["sample_id"] for e in split.examples] == choose_samples(ids, 3)
    assert all(e["img"].dtype == torch.uint8 for e in split.examples)
    streamed = {e["sample_id"]: e for e in materialize(load_split(out, "val", input_hw=HW))}
    for i in range(len(split)):
        example = split[i]
        reference = streamed[example["sample_id"]]
        assert example.keys() == reference.keys()
        for key, value in reference.items():
            if torch.is_tensor(value):
                assert torch.equal(example[key], value), key
            else:
                assert example[key] == value, key
    # a quarter of the float32 crop's bytes, plus the labels
    assert bytes_per_sample(split) < 0.3 * bytes_per_sample(list(streamed.values()))


@pytest.mark.slow  # DataLoader worker processes
def test_decoding_in_workers_keeps_the_same_examples(catalog):
    alone = ValidationSplit(catalog["out_dir"], "val", max_samples=5, input_hw=HW)
    workers = ValidationSplit(catalog["out_dir"], "val", max_samples=5, input_hw=HW, num_workers=2)
    assert [e["sample_id"] for e in alone.examples] == [e["sample_id"] for e in workers.examples]
    assert all(torch.equal(a["img"], b["img"]) for a, b in zip(alone.examples, workers.examples))
