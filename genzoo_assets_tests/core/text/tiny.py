"""Tiny randomly initialised transformers models and in-memory tokenizers, saved to a folder."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from genzoo_assets.core.text.vocabulary import load_data

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} "
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|> {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)


def _words() -> list[str]:
    text = " ".join(str(v) for v in load_data("instructions.yaml").values())
    text += " " + str(load_data("photo_vocabulary.yaml"))
    return sorted({w.lower() for w in re.findall(r"[A-Za-z]+", text)})


def word_tokenizer(with_vocab: bool = True, bos_eos: bool = True, roles: bool = False):
    """A whitespace/punctuation word-level fast tokenizer; without vocab every word is <unk>.
    ``roles`` adds the chat roles' names (system, user, assistant)."""
    from transformers import PreTrainedTokenizerFast

    words = (_words() if with_vocab else []) + (["system", "user", "assistant"] if roles else [])
    vocab = {t: i for i, t in enumerate(SPECIAL + sorted(set(words)))}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.normalizer = None
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tk.add_special_tokens(SPECIAL)
    if bos_eos:
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=4096,
    )


def save_tiny_llava(folder: Path) -> Path:
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = word_tokenizer(bos_eos=False)
    tok.chat_template = CHAT_TEMPLATE
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=SPECIAL.index("<image>"),
        vision_feature_layer=-1,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=8,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_tiny_qwen2(folder: Path, only_eos: bool = False) -> Path:
    """A tiny Qwen2 chat model; ``only_eos`` suppresses every other token so answers are empty."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = word_tokenizer(bos_eos=False)
    tok.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        suppress_tokens=[i for i in range(len(tok)) if i != 2] if only_eos else None,
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# Qwen2-VL's chat template, images and text only (the released one also handles videos and tools).
QWEN_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_VL_SPECIAL = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# Qwen/Qwen2.5-VL-7B-Instruct's preprocessor_config.json, except max_pixels (the release's is
# 12845056, which keeps a 1024^2 render at 1369 image tokens).
QWEN_VL_PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 56 * 56 * 4,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}


# Qwen/Qwen3-VL-8B-Instruct's preprocessor_config.json, except the pixel bounds (shortest_edge and
# longest_edge count pixels).
QWEN3_VL_PREPROCESSOR = {
    "size": {"shortest_edge": 64 * 64, "longest_edge": 128 * 128},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
}


def _qwen_vl_config(family: str, vocab_size: int, ids: dict[str, int]):
    """Tiny widths and depths of the real architecture: text 64 wide (2 heads of 32, mrope), vision
    32 wide, 2 blocks each."""
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    text = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
        pad_token_id=0,
        eos_token_id=ids["<|im_end|>"],
        tie_word_embeddings=True,
    )
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64)
    tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    if family == "qwen2_5_vl":
        vision.update(patch_size=14, window_size=56, fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(
            text_config=text, vision_config=vision, **tokens
        ), QWEN_VL_PREPROCESSOR
    if family == "qwen3_vl":
        text.update(head_dim=32)
        text["rope_parameters"]["mrope_interleaved"] = True
        vision.update(patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[0])
        return Qwen3VLConfig(
            text_config=text, vision_config=vision, **tokens
        ), QWEN3_VL_PREPROCESSOR
    raise ValueError(f"unknown Qwen VL family {family!r}")


def qwen_vl_tokenizer():
    """A word tokenizer with Qwen-VL's role and vision tokens, and their ids."""
    tok = word_tokenizer(bos_eos=False, roles=True)
    tok.add_special_tokens({"additional_special_tokens": QWEN_VL_SPECIAL})
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_VL_SPECIAL + ["<|im_end|>"]}
    return tok, ids


def use_tokenizer(config, tok, ids: dict[str, int]):
    """``config`` (e.g. a released one) with the vocabulary and special token ids of ``tok``."""
    text = config.get_text_config()
    text.vocab_size = len(tok)
    text.pad_token_id, text.eos_token_id, text.bos_token_id = 0, ids["<|im_end|>"], None
    config.image_token_id = ids["<|image_pad|>"]
    config.video_token_id = ids["<|video_pad|>"]
    config.vision_start_token_id = ids["<|vision_start|>"]
    config.vision_end_token_id = ids["<|vision_end|>"]
    return config


def save_tiny_qwen_vl(folder: Path, family: str = "qwen2_5_vl", answers: bool = True) -> Path:
    """Qwen2.5-VL's (or Qwen3-VL's) real architecture class at tiny width and depth, saved file for
    file as the released folder is laid out (config, safetensors, tokenizer,
    preprocessor_config.json naming the release's torchvision image processor, chat_template.json).

    ``answers``: special tokens are suppressed, so the random model always answers in words;
    otherwise everything but end-of-turn is, so every answer is empty.
    """
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    tok, ids = qwen_vl_tokenizer()
    config, preprocessor = _qwen_vl_config(family, len(tok), ids)
    torch.manual_seed(0)
    model_class = {
        "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
        "qwen3_vl": Qwen3VLForConditionalGeneration,
    }[family]
    return save_qwen_vl(folder, model_class(config), tok, ids, preprocessor, answers)


def save_qwen_vl(folder: Path, model, tok, ids, preprocessor: dict, answers: bool = True) -> Path:
    """``model`` (built with ``tok``'s ids) saved as a released Qwen-VL folder; see
    :func:`save_tiny_qwen_vl` for ``answers``."""
    import json

    from transformers import GenerationConfig

    special = [tok.convert_tokens_to_ids(t) for t in SPECIAL + QWEN_VL_SPECIAL]
    eos = ids["<|im_end|>"]
    model.generation_config = GenerationConfig(
        pad_token_id=0,
        eos_token_id=eos,
        suppress_tokens=special if answers else [i for i in range(len(tok)) if i != eos],
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": QWEN_VL_CHAT_TEMPLATE}))
    return folder
