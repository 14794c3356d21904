import pandas as pd
import pytest

from genzoo_assets.core.text import (
    ModelDirectoryError,
    PromptInput,
    TokenBudget,
    make_prompter,
    prompt_partition,
)
from genzoo_assets.core.text.llm import LLMPrompter, chat_messages, clean_prompt

from .tiny import save_tiny_qwen2, word_tokenizer

CAPTION = "The animal is facing left, seen at eye level, standing."


@pytest.fixture(scope="module")
def qwen_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-qwen2")
    return save_tiny_qwen2(root / "qwen"), save_tiny_qwen2(root / "qwen-eos", only_eos=True)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _items(seeds):
    return [PromptInput("Snow leopard", False, None, CAPTION, s) for s in seeds]


def test_tiny_qwen2_end_to_end(qwen_dirs):
    prompter = make_prompter(
        "llm", model_dir=qwen_dirs[0], device="cpu", batch_size=1, max_new_tokens=24
    )
    assert isinstance(prompter, LLMPrompter) and len(prompter.model_files["llm"]) == 64
    first = prompter.fitted_batch(_items([1, 2, 3]))
    assert [f.text for f in first] == prompter.prompt_batch(_items([1, 2, 3]))  # seeded sampling
    assert len({f.text for f in first}) == 3
    for f in first:
        assert f.backend.startswith(prompter.name) and f.num_tokens <= 77
        # random weights never name the species: the core clause is put in front
        assert "a Snow leopard facing left, seen at eye level, standing" in f.text
        assert "\n" not in f.text and '"' not in f.text


def test_empty_answers_fall_back_to_the_template(qwen_dirs):
    prompter = LLMPrompter(qwen_dirs[1], device="cpu", max_new_tokens=8)
    out = prompter.fitted_batch(_items([5]))[0]
    assert out.backend == f"template(fallback:{prompter.name})"
    assert "Snow leopard facing left" in out.text


def test_llm_partition_with_a_tokenizer_budget(qwen_dirs):
    tok = word_tokenizer(with_vocab=False)
    budget = TokenBudget(tok, max_tokens=40)
    rows = pd.DataFrame(
        {"sample_id": [f"snow-leopard.000.{i:05d}" for i in range(3)], "caption": [CAPTION] * 3}
    )
    prompter = LLMPrompter(qwen_dirs[0], device="cpu", batch_size=2, max_new_tokens=24)
    out = prompt_partition(rows, {"common_name": "Snow leopard"}, prompter, budget)
    assert (out["num_tokens"] <= 40).all()
    assert [len(tok(t)["input_ids"]) for t in out["prompt"]] == out["num_tokens"].tolist()
    assert out["prompt"].str.contains("Snow leopard facing left").all()


def test_chat_messages_and_cleaning():
    slots = dict(
        subject="a Lion",
        orientation="facing left",
        scene="on dry grassland",
        lighting="soft light",
        time_of_day="at dusk",
        weather="clear sky",
        camera_height="shot at eye level",
        lens="85mm lens",
        opening="A photo of",
    )
    system, user = chat_messages(slots)
    assert (
        system["role"] == "system"
        and "a Lion" in user["content"]
        and "facing left" in user["content"]
    )
    assert clean_prompt('Prompt: "A lion\n\nat dusk."') == "A lion at dusk."


def test_missing_model_dir_and_missing_chat_template(tmp_path):
    with pytest.raises(ModelDirectoryError, match="LLM prompter model folder .* does not exist"):
        make_prompter("llm", model_dir=tmp_path / "qwen2.5-7b")
    folder = save_tiny_qwen2(tmp_path / "no-template")
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        LLMPrompter(folder, device="cpu")


@pytest.mark.slow
def test_two_partitions_share_one_bf16_load(qwen_dirs):
    """What a GPU step running many partitions does: one load, bf16 weights (as on CUDA)."""
    import torch

    from genzoo_assets.core import residency

    residency.release_all()
    before = residency.loads
    outs = []
    for shard in ("000", "001"):
        rows = pd.DataFrame(
            {
                "sample_id": [f"snow-leopard.{shard}.{i:05d}" for i in range(2)],
                "caption": [CAPTION] * 2,
            }
        )
        prompter = make_prompter(
            "llm", model_dir=qwen_dirs[0], device="cpu", dtype="bfloat16", max_new_tokens=12
        )
        outs.append(prompt_partition(rows, {"common_name": "Snow leopard"}, prompter))
        assert prompter.model.dtype == torch.bfloat16
    assert residency.loads == before + 1
    for out in outs:
        assert out["prompt_backend"].str.startswith(prompter.name).all()
        assert out["prompt"].str.contains("Snow leopard facing left").all()


def _hf_cache(monkeypatch, tmp_path):
    """An empty Hugging Face hub cache in ``tmp_path``, the one every offline lookup reads."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_empty_model_dir_resolves_the_default_llm_from_the_hf_cache(monkeypatch, tmp_path):
    """The cache layout ``huggingface-cli download Qwen/Qwen2.5-7B-Instruct`` leaves."""
    from genzoo_assets.core.text.llm import DEFAULT_LLM
    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.text import PromptConfig, _model_options

    assert DEFAULT_LLM == "Qwen/Qwen2.5-7B-Instruct"
    repo = _hf_cache(monkeypatch, tmp_path) / "models--Qwen--Qwen2.5-7B-Instruct"
    save_tiny_qwen2(repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")

    options = _model_options(PromptConfig(backend="llm"), GenZooSettings(device="cpu"))
    assert "model_dir" not in options
    prompter = make_prompter("llm", max_new_tokens=8, **options)
    assert prompter.name == "llm:Qwen2.5-7B-Instruct"
    assert "Snow leopard" in prompter.prompt_batch(_items([1]))[0]


def test_a_default_llm_missing_from_the_cache_is_one_clear_line(monkeypatch, tmp_path):
    _hf_cache(monkeypatch, tmp_path)
    with pytest.raises(ModelDirectoryError) as info:
        make_prompter("llm", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "LLM prompter (model_dir empty: the default) model 'Qwen/Qwen2.5-7B-Instruct' is neither "
        "a local folder nor a repo in the local Hugging Face cache"
    )
