"""Backend factories: the names configs and the Dagster layer use to pick a captioner or prompter."""

from __future__ import annotations

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.text.captioners import Captioner, GeometricCaptioner
from genzoo_assets.core.text.prompters import Prompter, TemplatePrompter

CAPTIONERS = ("geometric", "vlm")
PROMPTERS = ("template", "llm")


def make_captioner(name: str, **opts) -> Captioner:
    """ "geometric" (default, exact, no model) or "vlm" (``model_dir=``, ``device``, ``dtype``,
    ``batch_size``, ``max_new_tokens``, ``trust_remote_code`` — see :class:`VLMCaptioner`)."""
    key = (name or "").strip().lower()
    if key == "geometric":
        if opts:
            raise InputError(f"captioner 'geometric' takes no options, got {sorted(opts)}")
        return GeometricCaptioner()
    if key == "vlm":
        from genzoo_assets.core.text.vlm import VLMCaptioner

        return VLMCaptioner(**opts)
    raise InputError(f"unknown captioner backend {name!r}; known: {', '.join(CAPTIONERS)}")


def make_prompter(name: str, **opts) -> Prompter:
    """ "template" (default, ``budget=``) or "llm" (``model_dir=``, ``device``, ``dtype``,
    ``batch_size``, ``max_new_tokens``, ``temperature``, ``top_p``, ``budget`` — see :class:`LLMPrompter`)."""
    key = (name or "").strip().lower()
    if key == "template":
        return TemplatePrompter(**opts)
    if key == "llm":
        from genzoo_assets.core.text.llm import LLMPrompter

        return LLMPrompter(**opts)
    raise InputError(f"unknown prompter backend {name!r}; known: {', '.join(PROMPTERS)}")
