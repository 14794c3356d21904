"""bench/text_gpu.py builds the released architectures from the configs kept in the repository."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo_assets.core import residency
from genzoo_assets.core.text import make_captioner
from genzoo_assets.core.text.captioners import CaptionInput

from .tiny import QWEN3_VL_PREPROCESSOR, qwen_vl_tokenizer, save_qwen_vl, use_tokenizer

BENCH = Path(__file__).resolve().parents[3] / "bench" / "text_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("text_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configs_are_the_released_sizes(bench):
    # Qwen2.5-VL-7B-Instruct 8.29 B parameters, Qwen2.5-7B-Instruct 7.62 B, in bf16
    assert bench.full_size_bytes(bench.VLM_CONFIG) == 2 * 8_292_166_656
    assert bench.full_size_bytes(bench.LLM_CONFIG) == 2 * 7_615_616_512
    text = bench.load_config(bench.LLM_CONFIG, None)
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (3584, 28, 28)
    assert (text.num_key_value_heads, text.intermediate_size, text.vocab_size) == (4, 18944, 152064)


def test_truncation_keeps_width_and_a_full_attention_block(bench):
    config = bench.load_config(bench.VLM_CONFIG, 7)
    text = config.get_text_config()
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (7, 3584, 18944)
    assert config.vision_config.depth == 8 and config.vision_config.fullatt_block_indexes == [7]
    assert config.vision_config.hidden_size == 1280


def test_full_depth_is_refused_without_a_gpu(bench, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--random-weights", "--full", "--device", "cpu"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().out


def test_qwen3_vl_config_is_the_released_size(bench):
    # Qwen3-VL-8B-Instruct: 8.77 B parameters (36 layers of 4096; a 27-block, 1152-wide vision tower)
    assert bench.full_size_bytes(bench.QWEN3_VL_CONFIG) == 2 * 8_767_123_696
    config = bench.load_config(bench.QWEN3_VL_CONFIG, 9)
    text, vision = config.get_text_config(), config.vision_config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (9, 4096, 12288)
    assert (vision.depth, vision.hidden_size, vision.deepstack_visual_indexes) == (
        7,
        1152,
        [2, 4, 6],
    )
    assert "captioner-qwen3-vl" in bench.VISION_MODELS


@pytest.mark.slow
def test_qwen3_vl_at_real_width_captions_in_bf16_through_the_captioner(bench, tmp_path):
    """bench's Qwen3-VL-8B config at one layer (vision: one block), real width, built by the bench's
    builder, saved as a released folder (the test tokenizer's vocabulary and token ids) and run
    through the project's VLM captioner: loading, processor, chat template, bf16 generation."""
    config = bench.load_config(bench.QWEN3_VL_CONFIG, 1)
    text, vision = config.get_text_config(), config.vision_config
    assert (text.num_hidden_layers, text.hidden_size, text.num_attention_heads) == (1, 4096, 32)
    assert (vision.depth, vision.hidden_size, vision.deepstack_visual_indexes) == (1, 1152, [0])
    tok, ids = qwen_vl_tokenizer()
    torch.manual_seed(0)
    model = bench.build_model(use_tokenizer(config, tok, ids), "cpu")
    folder = save_qwen_vl(tmp_path / "Qwen3-VL-8B-1-layer", model, tok, ids, QWEN3_VL_PREPROCESSOR)
    del model
    try:
        captioner = make_captioner(
            "vlm", model_dir=folder, device="cpu", dtype="bfloat16", max_new_tokens=5
        )
        model = captioner.model
        assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
        assert model.dtype == torch.bfloat16 and model.config.get_text_config().hidden_size == 4096
        rng = np.random.default_rng(5)
        items = [
            CaptionInput(
                np.eye(3), np.eye(3), "standing", rng.integers(0, 256, (96, 128, 3), np.uint8)
            )
            for _ in range(2)
        ]
        answers = captioner.caption_batch_with_backend(items)
        assert [backend for _, backend in answers] == [captioner.name] * 2  # parsed, no fallback
        assert all(caption for caption, _ in answers)
    finally:
        residency.release_all()


def test_load_throughput_reads_every_weight_back_from_a_file(bench, tmp_path):
    """The shared read-back (also bench/fixed_cost.py's): every byte counted, the file removed."""
    model = torch.nn.Linear(64, 32).to(torch.bfloat16)
    gbps, size = bench.load_throughput(model, "cpu")
    assert size == (64 * 32 + 32) * 2 and gbps > 0
    state = {"w": torch.ones(8, 8)}
    gbps, size = bench.read_back_gbps(state, "cpu", str(tmp_path))
    assert size == 8 * 8 * 4 and gbps > 0 and state == {} and list(tmp_path.iterdir()) == []
