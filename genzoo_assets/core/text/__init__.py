"""Text stage: orientation captions (geometric, VLM) and photo prompts (template, LLM).

Heavy backends (:mod:`.vlm`, :mod:`.llm`) import transformers only when constructed.
"""

from genzoo_assets.core.model_dirs import ModelDirectoryError
from genzoo_assets.core.text.backends import (
    CAPTIONERS,
    PROMPTERS,
    make_captioner,
    make_prompter,
)
from genzoo_assets.core.text.budget import CLIP_MAX_TOKENS, Clause, TokenBudget, estimate_tokens
from genzoo_assets.core.text.captioners import (
    Captioner,
    CaptionInput,
    GeometricCaptioner,
    describe_view,
)
from genzoo_assets.core.text.fallback import is_fallback
from genzoo_assets.core.text.partition import (
    CAPTION_COLUMNS,
    PROMPT_COLUMNS,
    caption_partition,
    prompt_partition,
)
from genzoo_assets.core.text.prompters import FittedPrompt, Prompter, PromptInput, TemplatePrompter

__all__ = [
    "CAPTIONERS",
    "CAPTION_COLUMNS",
    "CLIP_MAX_TOKENS",
    "CaptionInput",
    "Captioner",
    "Clause",
    "FittedPrompt",
    "GeometricCaptioner",
    "ModelDirectoryError",
    "PROMPTERS",
    "PROMPT_COLUMNS",
    "PromptInput",
    "Prompter",
    "TemplatePrompter",
    "TokenBudget",
    "caption_partition",
    "describe_view",
    "estimate_tokens",
    "is_fallback",
    "make_captioner",
    "make_prompter",
    "prompt_partition",
]
