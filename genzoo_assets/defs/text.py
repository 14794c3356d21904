"""Orientation captions (geometric or VLM) and image prompts (template or LLM)."""

import dagster as dg
import pandas as pd

from genzoo_assets.core.checks import fallback_rate
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.core.text import is_fallback
from genzoo_assets.core.text import partition as text
from genzoo_assets.core.text_limits import MAX_CAPTION_CHARS, MAX_PROMPT_CHARS
from genzoo_assets.defs.gpu import on_leased_gpu
from genzoo_assets.defs.io import (
    backend_metadata,
    check_result,
    frame_markdown,
    read_merged,
    read_partition,
    write_partition,
)
from genzoo_assets.defs.partition_range import MODEL_BACKFILL, each_partition
from genzoo_assets.defs.partitions import sample_partitions
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import (
    GPU_STEP,
    CheckedFields,
    GenZooSettings,
    between,
    checked,
    fail_fast_on_input_errors,
)


class CaptionConfig(CheckedFields, dg.Config):
    backend: str = "geometric"  # geometric (exact, offline default) | vlm (Qwen2.5-VL-7B-Instruct)
    model_dir: str = (
        ""  # vlm: a local VLM folder or cached repo id; "" = Qwen/Qwen2.5-VL-7B-Instruct
    )
    trust_remote_code: bool = False  # vlm: Molmo's own code (runs on transformers 4.46-4.53 only)
    max_fallback_rate: float = (
        0.1  # vlm: share of captions the geometric fallback may write (the check's ceiling)
    )

    _fallback = checked("max_fallback_rate", check=between(0.0, 1.0))


class PromptConfig(CheckedFields, dg.Config):
    backend: str = "template"  # template (offline default) | llm (the paper: Qwen2.5-7B-Instruct)
    model_dir: str = (
        ""  # llm: a local chat model folder or cached repo id; "" = Qwen/Qwen2.5-7B-Instruct
    )
    max_tokens: int = 77  # FLUX's CLIP text encoder limit
    max_fallback_rate: float = (
        0.1  # llm: share of prompts the template fallback may write (the check's ceiling)
    )

    _max_tokens = checked("max_tokens", check=between(1, 512, " tokens"))
    _fallback = checked("max_fallback_rate", check=between(0.0, 1.0))


def _warn_truncated(context: dg.AssetExecutionContext, df, what: str, limit: int) -> None:
    cut = df.loc[df[f"{what}_truncated"], "sample_id"].tolist()
    if cut:
        context.log.warning(
            f"{len(cut)} {what}s were longer than {limit} characters and were cut at a word "
            f"boundary (first: sample {cut[0]}; `{what}_truncated` marks them)"
        )


MODEL_BACKENDS = ("vlm", "llm")  # the backends that fall back per sample


def _fallback_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "fallback_rate_below_ceiling",
        asset=asset,
        description="share of samples a model backend (vlm, llm) left to its fallback stays under "
        "max_fallback_rate; not run for the offline backends, which have no fallback",
    )


def _backends(df, backend_column: str) -> dict:
    """Which backends made the samples, and how many fell back (per partition and per step)."""
    return {
        **backend_metadata(df[backend_column]),
        "fallbacks": int(df[backend_column].map(is_fallback).sum()),
    }


def _results(asset: str, df, backend_column: str, config: dg.Config, metadata: dict):
    """The materialisation of the step's partitions, with the fallback check (over all of them)
    only for the model backends. Each partition's own metadata was added by ``each_partition``."""
    checks = []
    if config.backend in MODEL_BACKENDS:
        fell_back = df[backend_column].map(is_fallback)
        checks.append(
            check_result(
                "fallback_rate_below_ceiling",
                fallback_rate(df["sample_id"], fell_back, config.max_fallback_rate),
            )
        )
    yield dg.MaterializeResult(
        asset_key=asset,
        check_results=checks,
        metadata={**metadata, **_backends(df, backend_column)},
    )


def _model_options(config: dg.Config, settings: GenZooSettings) -> dict:
    """Options for model-backed backends; the offline defaults take none."""
    if config.backend in ("geometric", "template"):
        return {}
    skip = ("backend", "max_tokens", "max_fallback_rate")
    opts = {k: v for k, v in config.model_dump().items() if k not in skip and v not in ("", None)}
    return {**opts, "device": settings.torch_device()}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "captions",
            deps=[control_renders, "pose_params"],
            group_name="text",
            kinds={"parquet"},
            description="How the animal is oriented in the control render, in words.",
        )
    ],
    partitions_def=sample_partitions,
    check_specs=[_fallback_spec("captions")],
    can_subset=True,
    backfill_policy=MODEL_BACKFILL,
    **GPU_STEP,
)
@fail_fast_on_input_errors
@on_leased_gpu
def captions(context: dg.AssetExecutionContext, config: CaptionConfig, settings: GenZooSettings):
    root = settings.root()

    def one(species_key: str, shard: str):
        # Made per partition, as in a run of one; a model-backed captioner's model is resident.
        captioner = text.make_captioner(config.backend, **_model_options(config, settings))
        rows = read_merged(root, ["pose_params", "control_renders"], species_key, shard)
        df = text.caption_partition(
            rows, captioner, settings.body().canonical_rotation, data_dir=root
        )
        _warn_truncated(context, df, "caption", MAX_CAPTION_CHARS)
        path = write_partition(root, "captions", species_key, shard, df)
        return df, {
            "num_samples": len(df),
            "truncated": int(df["caption_truncated"].sum()),
            **_backends(df, "caption_backend"),
            "path": dg.MetadataValue.path(str(path)),
            "examples": frame_markdown(df[["sample_id", "caption"]], max_rows=8),
        }

    run = each_partition(context, "captions", one)
    df = pd.concat(run.outputs, ignore_index=True)
    yield from _results("captions", df, "caption_backend", config, run.metadata)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "prompts",
            deps=[captions, "species"],
            group_name="text",
            kinds={"parquet"},
            description="The text prompt per sample: species or breed, orientation, scene, lighting, lens.",
        )
    ],
    partitions_def=sample_partitions,
    check_specs=[_fallback_spec("prompts")],
    can_subset=True,
    backfill_policy=MODEL_BACKFILL,
    **GPU_STEP,
)
@fail_fast_on_input_errors
@on_leased_gpu
def prompts(context: dg.AssetExecutionContext, config: PromptConfig, settings: GenZooSettings):
    root = settings.root()
    budget = text.TokenBudget(max_tokens=config.max_tokens)

    def one(species_key: str, shard: str):
        prompter = text.make_prompter(config.backend, **_model_options(config, settings))
        rows = read_partition(root, "captions", species_key, shard)
        df = text.prompt_partition(rows, frame.species_row(root, species_key), prompter, budget)
        _warn_truncated(context, df, "prompt", MAX_PROMPT_CHARS)
        path = write_partition(root, "prompts", species_key, shard, df)
        return df, {
            "num_samples": len(df),
            "truncated": int(df["prompt_truncated"].sum()),
            **_backends(df, "prompt_backend"),
            "max_tokens": int(df["num_tokens"].max()),
            "path": dg.MetadataValue.path(str(path)),
            "examples": frame_markdown(df[["sample_id", "prompt"]], max_rows=6),
        }

    run = each_partition(context, "prompts", one)
    df = pd.concat(run.outputs, ignore_index=True)
    yield from _results("prompts", df, "prompt_backend", config, run.metadata)
