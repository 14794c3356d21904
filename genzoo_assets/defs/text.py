"""Orientation captions (geometric or VLM) and image prompts (template or LLM)."""

import dagster as dg

from genzoo_assets.core.text import partition as text
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.io import frame_markdown, read_merged, read_partition, write_partition
from genzoo_assets.defs.partitions import sample_partitions, species_and_shard
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GPU_STEP, CheckedFields, GenZooSettings, between, checked, fail_fast_on_input_errors


class CaptionConfig(dg.Config):
    backend: str = "geometric"  # geometric (exact, offline default) | vlm (the paper: Molmo-7B)
    model_dir: str = ""  # vlm: local transformers image-text-to-text model directory
    trust_remote_code: bool = False  # vlm: Molmo ships its own modelling code


class PromptConfig(CheckedFields, dg.Config):
    backend: str = "template"  # template (offline default) | llm (the paper: Qwen2.5-7B-Instruct)
    model_dir: str = ""  # llm: local transformers chat model directory
    max_tokens: int = 77  # FLUX's CLIP text encoder limit

    _max_tokens = checked("max_tokens", check=between(1, 512, " tokens"))


def _model_options(config: dg.Config, settings: GenZooSettings) -> dict:
    """Options for model-backed backends; the offline defaults take none."""
    if config.backend in ("geometric", "template"):
        return {}
    opts = {k: v for k, v in config.model_dump().items() if k not in ("backend", "max_tokens") and v not in ("", None)}
    return {**opts, "device": settings.torch_device()}


@dg.asset(partitions_def=sample_partitions, deps=[control_renders], group_name="text", kinds={"parquet"}, **GPU_STEP)
@fail_fast_on_input_errors
def captions(context: dg.AssetExecutionContext, config: CaptionConfig, settings: GenZooSettings):
    """How the animal is oriented in the control render, in words."""
    species_key, shard = species_and_shard(context)
    root = settings.root()
    rows = read_merged(root, ["pose_params", "control_renders"], species_key, shard)
    captioner = text.make_captioner(config.backend, **_model_options(config, settings))
    df = text.caption_partition(rows, captioner, settings.body().canonical_rotation, data_dir=root)
    path = write_partition(root, "captions", species_key, shard, df)
    return dg.MaterializeResult(
        metadata={"num_samples": len(df), "backend": config.backend, "path": dg.MetadataValue.path(str(path)),
                  "examples": frame_markdown(df[["sample_id", "caption"]], max_rows=8)}
    )


@dg.asset(partitions_def=sample_partitions, deps=[captions], group_name="text", kinds={"parquet"}, **GPU_STEP)
@fail_fast_on_input_errors
def prompts(context: dg.AssetExecutionContext, config: PromptConfig, settings: GenZooSettings):
    """The text prompt per sample: species or breed, orientation, scene, lighting, lens."""
    species_key, shard = species_and_shard(context)
    root = settings.root()
    rows = read_partition(root, "captions", species_key, shard)
    prompter = text.make_prompter(config.backend, **_model_options(config, settings))
    df = text.prompt_partition(rows, frame.species_row(root, species_key), prompter,
                               text.TokenBudget(max_tokens=config.max_tokens))
    path = write_partition(root, "prompts", species_key, shard, df)
    return dg.MaterializeResult(
        metadata={"num_samples": len(df), "backend": config.backend, "max_tokens": int(df["num_tokens"].max()),
                  "path": dg.MetadataValue.path(str(path)),
                  "examples": frame_markdown(df[["sample_id", "prompt"]], max_rows=6)}
    )
