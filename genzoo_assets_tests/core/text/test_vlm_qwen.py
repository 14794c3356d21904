"""The paper-path VLM (Qwen2.5-VL) through the exact loading and generation code a GPU run takes:
the released folder layout, ``local_files_only``, bf16 weights, real control renders, one load for
many partitions."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from genzoo_assets.core import residency
from genzoo_assets.core.model_dirs import model_label
from genzoo_assets.core.render.partition import render_partition
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.text import GeometricCaptioner, caption_partition, make_captioner
from genzoo_assets.core.text.captioners import CaptionInput
from genzoo_assets.core.text.vlm_loading import (
    DEFAULT_VLM,
    UnsupportedVLMError,
    transformers_version,
)
from genzoo_assets_tests.core.render.conftest import make_pose_df

from .tiny import save_tiny_qwen_vl

RES = 112  # 8x8 patches of 14 px: 16 image tokens after the 2x2 merge


@pytest.fixture(scope="module")
def qwen_vl_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-qwen25-vl")
    return (
        save_tiny_qwen_vl(root / "Qwen2.5-VL-tiny"),
        save_tiny_qwen_vl(root / "Qwen2.5-VL-tiny-eos", answers=False),
    )


@pytest.fixture(scope="module")
def rendered_partitions(body_model, tmp_path_factory):
    """Two shards of real control renders: (data_dir, [pose rows merged with render rows, ...])."""
    data_dir = tmp_path_factory.mktemp("data")
    parts = []
    with ControlRenderer(RES) as renderer:
        for shard in ("000", "001"):
            pose = make_pose_df(body_model, shard=shard)
            renders = render_partition(pose, body_model, data_dir, RES, renderer=renderer)
            parts.append(pose.merge(renders[["sample_id", "rgb_path"]], on="sample_id"))
    return data_dir, parts


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _caption(folder, rows, data_dir, body_model):
    captioner = make_captioner(
        "vlm", model_dir=folder, device="cpu", dtype="bfloat16", batch_size=3, max_new_tokens=6
    )
    out = caption_partition(
        rows, captioner, body_model.canonical_rotation, data_dir=data_dir, species_name="Dog"
    )
    return captioner, out


@pytest.mark.slow
def test_real_renders_two_partitions_one_bf16_load(qwen_vl_dirs, rendered_partitions, body_model):
    data_dir, parts = rendered_partitions
    residency.release_all()
    before = residency.loads
    outputs = [_caption(qwen_vl_dirs[0], rows, data_dir, body_model) for rows in parts]
    assert residency.loads == before + 1  # the second partition reused the first one's model
    (first, out0), (second, out1) = outputs
    assert first.model is second.model and first.model.dtype == torch.bfloat16
    assert type(first.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(first.processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    for rows, out in zip(parts, (out0, out1)):
        assert out["sample_id"].tolist() == rows["sample_id"].tolist()
        assert (out["caption_backend"] == "vlm:Qwen2.5-VL-tiny").all()  # parsed, no fallback
        for text in out["caption"]:  # random weights: words, but one capitalised sentence
            assert text[0].isupper() and text.endswith(".") and ". " not in text
    assert (
        out0["caption"].tolist()
        == _caption(qwen_vl_dirs[0], parts[0], data_dir, body_model)[1]["caption"].tolist()
    )  # greedy decoding: the same renders give the same captions
    assert residency.loads == before + 1


@pytest.mark.slow
def test_empty_answers_fall_back_per_sample(qwen_vl_dirs, rendered_partitions, body_model):
    data_dir, parts = rendered_partitions
    captioner, out = _caption(qwen_vl_dirs[1], parts[0], data_dir, body_model)
    assert (out["caption_backend"] == "geometric(fallback:vlm:Qwen2.5-VL-tiny-eos)").all()
    geometric = caption_partition(parts[0], GeometricCaptioner(), body_model.canonical_rotation)
    assert out["caption"].tolist() == geometric["caption"].tolist()


def test_qwen3_vl_loads_natively_and_answers_in_bf16(tmp_path):
    folder = save_tiny_qwen_vl(tmp_path / "Qwen3-VL-tiny", family="qwen3_vl")
    captioner = make_captioner(
        "vlm", model_dir=folder, device="cpu", dtype="bfloat16", max_new_tokens=5
    )
    assert type(captioner.model).__name__ == "Qwen3VLForConditionalGeneration"
    assert captioner.model.dtype == torch.bfloat16
    rng = np.random.default_rng(4)
    items = [
        CaptionInput(np.eye(3), np.eye(3), "sitting", rng.integers(0, 256, (96, 128, 3), np.uint8))
        for _ in range(2)
    ]
    assert [b for _, b in captioner.caption_batch_with_backend(items)] == [captioner.name] * 2


def test_batched_answers_do_not_depend_on_the_batch(qwen_vl_dirs):
    """Left padding and per-image grids: a sample's answer is the same alone and in a batch."""
    rng = np.random.default_rng(3)
    items = [
        CaptionInput(np.eye(3), np.eye(3), "standing", rng.integers(0, 256, (h, w, 3), np.uint8))
        for h, w in ((112, 112), (84, 140), (140, 84))
    ]
    captioner = make_captioner(
        "vlm", model_dir=qwen_vl_dirs[0], device="cpu", dtype="float32", max_new_tokens=5
    )
    captioner.batch_size = 3
    together = captioner.caption_batch(items)
    captioner.batch_size = 1
    assert captioner.caption_batch(items) == together


def _molmo_folder(tmp_path):
    folder = tmp_path / "Molmo-7B-D-0924"
    folder.mkdir()
    config = {
        "model_type": "molmo",
        "architectures": ["MolmoForCausalLM"],
        "auto_map": {"AutoModelForCausalLM": "modeling_molmo.MolmoForCausalLM"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("model-00001-of-00007.safetensors", "tokenizer.json", "preprocessor_config.json"):
        (folder / name).write_text("{}")
    return folder


def test_molmo_is_refused_up_front_on_transformers_5(tmp_path):
    folder = _molmo_folder(tmp_path)
    before = residency.loads
    major, minor = transformers_version()
    if (4, 46) <= (major, minor) <= (4, 53):
        pytest.skip("this environment can run Molmo's remote code")
    with pytest.raises(UnsupportedVLMError) as info:
        make_captioner("vlm", model_dir=folder, device="cpu", trust_remote_code=True)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    assert f"transformers 4.46-4.53 only; this environment has transformers {major}.{minor}" in (
        message
    )
    assert DEFAULT_VLM in message and residency.loads == before


def test_molmo_on_its_transformers_needs_remote_code_allowed(tmp_path, monkeypatch):
    import genzoo_assets.core.text.vlm_loading as vlm_loading

    monkeypatch.setattr(vlm_loading, "transformers_version", lambda: (4, 50))
    with pytest.raises(UnsupportedVLMError, match="set trust_remote_code to allow it"):
        make_captioner("vlm", model_dir=_molmo_folder(tmp_path), device="cpu")


def test_model_label_names_the_repo_of_a_cached_snapshot(tmp_path):
    snapshot = tmp_path / "models--Qwen--Qwen2.5-VL-7B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert model_label("Qwen/Qwen2.5-VL-7B-Instruct", snapshot) == "Qwen2.5-VL-7B-Instruct"
    assert model_label(snapshot, snapshot) == "abc123"  # a folder given as such keeps its name
    local = tmp_path / "my-vlm"
    assert model_label(local, local) == "my-vlm"


def test_pose_rows_without_renders_are_refused(qwen_vl_dirs):
    captioner = make_captioner("vlm", model_dir=qwen_vl_dirs[0], device="cpu", dtype="bfloat16")
    rows = pd.DataFrame({"sample_id": ["dog.000.00000"], "global_orient": [[0.0, 0.0, 0.0]]})
    with pytest.raises(KeyError, match="rgb_path"):
        caption_partition(rows, captioner, np.eye(3))
