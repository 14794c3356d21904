"""The paper's image models at their real architecture with random weights, built on the device.

Throughput and memory depend on the architecture, not on the weights, so the bench and the GPU
check build FLUX.1-dev + two XLabs ControlNets (and Qwen-Image + ControlNet-Union) from the public
configs kept in ``configs/`` — no download, no weight files. Every module is constructed under
``torch.device(device)`` with ``dtype`` as the default dtype, so a 12 B-parameter transformer is
born on the GPU in bf16 (never materialised in float32 on the host).

``layers`` truncates depth (blocks of each transformer, ControlNet, text encoder and vision tower,
and the VAE's resnets per resolution) while keeping every width: the CPU mode of the bench and its
slow tests run the real per-block shapes at 1024² with one or two blocks each.

The tokenizers are small in-memory vocabularies (the real ones are downloads); they pad to the
same lengths as the real ones (CLIP 77, T5 ``max_sequence_length``), so the sequence lengths the
models see are the real ones. Qwen's prompt template tokenises to single characters with this
vocabulary, a few hundred text tokens next to 4096 image tokens at 1024².
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path

CONFIGS = Path(__file__).with_name("configs")


def load_config(name: str) -> dict:
    """A config of ``configs/`` by stem (``flux1_dev``, ``xlabs_canny``, ...), without ``_source``."""
    path = CONFIGS / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIGS.glob("*.json"))
        raise ValueError(f"no random-weight config {name!r} in {CONFIGS}; known: {known}")
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "_source"}


@contextlib.contextmanager
def _born_on(device: str, dtype) -> Iterator[None]:
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _cut(value: int, layers: int | None) -> int:
    return value if layers is None else min(value, layers)


def _diffusers_model(config: dict):
    import diffusers

    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    return getattr(diffusers, config["_class_name"]).from_config(cfg)


def clip_t5_tokenizers(t5_max_length: int):
    """In-memory CLIP and T5 tokenizers over a letters-only vocabulary, padding like the real ones
    (CLIP 77, T5 ``t5_max_length``); also the tiny test pipelines' (``genzoo_assets_tests/fixtures/tiny_flux.py``)."""
    from transformers import CLIPTokenizer, T5Tokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    clip_vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for tok in letters + [c + "</w>" for c in letters]:
        clip_vocab[tok] = len(clip_vocab)
    clip = CLIPTokenizer(vocab=clip_vocab, merges=[], model_max_length=77)
    t5_vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    t5_vocab += [(c, -2.0) for c in letters] + [("\u2581" + c, -1.5) for c in letters]
    return clip, T5Tokenizer(vocab=t5_vocab, extra_ids=0, model_max_length=t5_max_length)


def _qwen_tokenizer():
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_byte_level_alphabet())}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )


def _byte_level_alphabet() -> list[str]:
    """The 256 characters a byte-level BPE (GPT-2, Qwen2) maps bytes to: every text tokenises."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    shifted = [256 + i for i, b in enumerate(b for b in range(256) if b not in printable)]
    return [chr(c) for c in sorted(set(printable) | set(shifted))]


def flux_configs(layers: int | None = None) -> tuple[dict, list[dict]]:
    """(base configs, [canny, depth] ControlNet configs) of FLUX.1-dev + XLabs, depth-truncated."""
    base = copy.deepcopy(load_config("flux1_dev"))
    t = base["transformer"]
    t["num_layers"], t["num_single_layers"] = (
        _cut(t["num_layers"], layers),
        _cut(t["num_single_layers"], layers),
    )
    base["text_encoder"]["num_hidden_layers"] = _cut(
        base["text_encoder"]["num_hidden_layers"], layers
    )
    base["text_encoder_2"]["num_layers"] = _cut(base["text_encoder_2"]["num_layers"], layers)
    base["vae"]["layers_per_block"] = _cut(base["vae"]["layers_per_block"], layers)
    nets = [load_config("xlabs_canny"), load_config("xlabs_depth")]
    for net in nets:
        net["num_layers"] = _cut(net["num_layers"], layers)
    return base, nets


def qwenimage_configs(layers: int | None = None) -> tuple[dict, list[dict]]:
    """(base configs, [ControlNet-Union config]) of Qwen-Image, depth-truncated."""
    base = copy.deepcopy(load_config("qwen_image"))
    base["transformer"]["num_layers"] = _cut(base["transformer"]["num_layers"], layers)
    text, vision = base["text_encoder"]["text_config"], base["text_encoder"]["vision_config"]
    text["num_hidden_layers"] = _cut(text["num_hidden_layers"], layers)
    vision["depth"] = _cut(vision["depth"], layers)
    vision["fullatt_block_indexes"] = [
        i for i in vision["fullatt_block_indexes"] if i < vision["depth"]
    ]
    net = load_config("qwen_image_controlnet_union")
    net["num_layers"] = _cut(net["num_layers"], layers)
    return base, [net]


def build_flux(base: dict, nets: list[dict], device: str, dtype):
    """A ``FluxControlNetPipeline`` (controlnet = ``FluxMultiControlNetModel`` of ``nets``)."""
    from diffusers import FluxControlNetPipeline, FluxMultiControlNetModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    def strip(cfg):
        return {k: v for k, v in cfg.items() if not k.startswith("_")}

    tok_clip, tok_t5 = clip_t5_tokenizers(512)
    with _born_on(device, dtype):
        transformer = _diffusers_model(base["transformer"])
        controlnet = FluxMultiControlNetModel([_diffusers_model(n) for n in nets])
        vae = _diffusers_model(base["vae"])
        clip = CLIPTextModel(CLIPTextConfig(**strip(base["text_encoder"])))
        t5 = T5EncoderModel(T5Config(**strip(base["text_encoder_2"])))
    pipe = FluxControlNetPipeline(
        scheduler=_diffusers_model(base["scheduler"]),
        vae=vae,
        text_encoder=clip.eval(),
        tokenizer=tok_clip,
        text_encoder_2=t5.eval(),
        tokenizer_2=tok_t5,
        transformer=transformer,
        controlnet=controlnet,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_qwenimage(base: dict, nets: list[dict], device: str, dtype):
    """A ``QwenImageControlNetPipeline`` (controlnet = multi wrapper of the one union net)."""
    from diffusers import QwenImageControlNetPipeline, QwenImageMultiControlNetModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    enc = {k: v for k, v in base["text_encoder"].items() if not k.startswith("_")}
    with _born_on(device, dtype):
        transformer = _diffusers_model(base["transformer"])
        controlnet = QwenImageMultiControlNetModel([_diffusers_model(n) for n in nets])
        vae = _diffusers_model(base["vae"])
        text = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**enc))
    pipe = QwenImageControlNetPipeline(
        scheduler=_diffusers_model(base["scheduler"]),
        vae=vae,
        text_encoder=text.eval(),
        tokenizer=_qwen_tokenizer(),
        transformer=transformer,
        controlnet=controlnet,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_generator(family: str, *, device: str, dtype, layers: int | None = None, **options):
    """The project's own generator (:mod:`.flux`) around a random-weight real-architecture pipeline.

    ``family`` is ``flux`` or ``qwenimage``; ``options`` are the generator's (steps, batch_size,
    resolution, speed, ...). Model hashes read ``random:<config>`` with the truncation.
    """
    from genzoo_assets.core.imagegen.flux import DiffusersControlNetGenerator

    depth = "full" if layers is None else f"layers={layers}"
    if family == "flux":
        pipe = build_flux(*flux_configs(layers), device, dtype)
        hashes = {
            "base": f"random:flux1_dev/{depth}",
            "canny_controlnet": f"random:xlabs_canny/{depth}",
            "depth_controlnet": f"random:xlabs_depth/{depth}",
        }
    elif family == "qwenimage":
        pipe = build_qwenimage(*qwenimage_configs(layers), device, dtype)
        hashes = {
            "base": f"random:qwen_image/{depth}",
            "controlnet_union": f"random:qwen_image_controlnet_union/{depth}",
        }
        options.setdefault("guidance", 4.0)
    else:
        raise ValueError(f"random-weight family {family!r}: expected 'flux' or 'qwenimage'")
    return DiffusersControlNetGenerator.with_pipeline(
        family, pipe, hashes, device=device, dtype=dtype, **options
    )
