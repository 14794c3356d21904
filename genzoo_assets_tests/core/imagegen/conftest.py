import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest

from genzoo_assets_tests.fixtures.tiny_flux import (
    TINY_QWEN_DIMS,
    TINY_QWEN_TRANSFORMER,
    build_tiny_flux,
)


@pytest.fixture(scope="session")
def tiny_flux_dirs(tmp_path_factory):
    return build_tiny_flux(tmp_path_factory.mktemp("tiny_flux"))


@pytest.fixture(scope="session")
def tiny_qwenimage_dirs(tmp_path_factory):
    """A tiny Qwen-Image base pipeline folder and a ControlNet-Union folder, built from configs with
    the same builder as the real-size bench and saved in the layout the real weights ship in."""
    import torch
    from diffusers import QwenImagePipeline

    from genzoo_assets.core.imagegen.random_weights import build_qwenimage

    root = tmp_path_factory.mktemp("tiny_qwenimage")
    base = {
        "transformer": {"_class_name": "QwenImageTransformer2DModel", **TINY_QWEN_TRANSFORMER},
        "vae": {
            "_class_name": "AutoencoderKLQwenImage",
            "base_dim": 8,
            "z_dim": 16,
            "dim_mult": [1, 2, 4, 4],
            "num_res_blocks": 1,
            "attn_scales": [],
            "temperal_downsample": [False, True, True],
            "latents_mean": [0.0] * 16,
            "latents_std": [1.0] * 16,
        },
        "text_encoder": {
            "text_config": {
                "vocab_size": 300,
                "hidden_size": 32,
                "intermediate_size": 37,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
                "bos_token_id": None,
                "eos_token_id": 258,
            },
            "vision_config": {
                "depth": 1,
                "hidden_size": 32,
                "intermediate_size": 37,
                "num_heads": 2,
                "out_hidden_size": 32,
                "fullatt_block_indexes": [0],
            },
        },
        "scheduler": {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 1.0},
    }
    net = {
        "_class_name": "QwenImageControlNetModel",
        "patch_size": 2,
        "in_channels": 64,
        "out_channels": 16,
        "num_layers": 1,
        **TINY_QWEN_DIMS,
    }
    torch.manual_seed(0)
    pipe = build_qwenimage(base, [net], "cpu", torch.float32)
    union = pipe.controlnet.nets[0]
    with torch.no_grad():  # zero-initialised input/output layers would make the ControlNet inert
        union.controlnet_x_embedder.weight.normal_(std=1.0)
        for block in union.controlnet_blocks:
            block.weight.normal_(std=1.0)
    parts = {k: getattr(pipe, k) for k in ("scheduler", "vae", "text_encoder", "tokenizer")}
    QwenImagePipeline(transformer=pipe.transformer, **parts).save_pretrained(root / "qwen-image")
    union.save_pretrained(root / "controlnet-union")
    return root / "qwen-image", root / "controlnet-union"
