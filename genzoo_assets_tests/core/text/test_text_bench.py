"""bench/text_gpu.py builds the released architectures from the configs kept in the repository."""

import importlib.util
from pathlib import Path

import pytest

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
