"""GenZoo's prompter: a chat LLM writes one coherent photo prompt from the sample's ingredients.

The default model is :data:`DEFAULT_LLM`, Qwen2.5-7B-Instruct, looked up offline in the local
Hugging Face cache like the VLM's default; any transformers causal chat model in a local folder
or cached repo works (``AutoModelForCausalLM`` + ``AutoTokenizer``), driven through its own chat
template. The model gets the species, the caption's orientation and a setting drawn from the item
seed exactly as :class:`TemplatePrompter` draws it, and samples with a generator seeded from the
batch's item seeds (``batch_size=1`` makes every prompt depend on its own seed alone).

The orientation must reach the image model verbatim: when the answer lacks the species name or
the orientation words, the template's required clause is put in front (backend ``...+orientation``);
an empty answer falls back to the whole template prompt (backend ``template(fallback:...)``).

The model is loaded once per process (:func:`core.residency.resident`, keyed by role, folder,
device and dtype) and reused by every partition the process prompts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from genzoo_assets.core.device import resolve_device, resolve_dtype
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.model_dirs import check_transformers_dir, model_label
from genzoo_assets.core.provenance import file_sha256
from genzoo_assets.core.residency import resident
from genzoo_assets.core.seeds import derive_seed
from genzoo_assets.core.text.budget import Clause, TokenBudget
from genzoo_assets.core.text.fallback import fallback_name
from genzoo_assets.core.text.prompters import (
    FittedPrompt,
    PromptInput,
    draw_setting,
    fit_template,
    setting_slots,
)
from genzoo_assets.core.text.vocabulary import data_sha256, load_data

# Why this default: GenZoo's released code (github.com/x-tomasz/genzoo: genzoo_pipeline.ipynb) writes
# no prompt with a model, its notebook hard-codes one; the LLM this project attributes to the paper
# is Qwen2.5-7B-Instruct, a ``qwen2`` model that transformers 5 runs natively (Qwen2ForCausalLM,
# no remote code), so it is taken as is. Its config is bench/configs/qwen2_5_7b_instruct.json.
DEFAULT_LLM = "Qwen/Qwen2.5-7B-Instruct"  # a cached Hugging Face repo id or a local folder

_LABEL = re.compile(r"^\s*(?:prompt|image prompt|answer|here is[^:]*)\s*:\s*", re.I)
_QUOTES = "\"'`“”‘’"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def clean_prompt(text: str) -> str:
    """One paragraph: labels ("Prompt:"), quotes, markdown emphasis and line breaks removed."""
    text = " ".join(str(text).replace("**", "").split())
    text = _LABEL.sub("", text).strip().strip(_QUOTES).strip()
    return text


def chat_messages(slots: dict[str, str]) -> list[dict[str, str]]:
    instructions = load_data("instructions.yaml")
    return [
        {"role": "system", "content": " ".join(instructions["llm_system"].split())},
        {"role": "user", "content": " ".join(instructions["llm_user"].format(**slots).split())},
    ]


def answer_clauses(
    answer: str, slots: dict[str, str], force_core: bool = False
) -> tuple[list[Clause], bool]:
    """Sentences as clauses, later ones dropped first; True when the core clause had to be added.

    A sentence holding the species name or the orientation words is required, unless the core
    clause (opening, subject, orientation) leads: then every sentence may go.
    """
    name = slots["subject"].split(" ", 1)[1].lower()
    orientation = slots["orientation"].lower()
    sentences = [s for s in _SENTENCE_END.split(answer) if s.strip()]
    clauses = [
        Clause(
            s,
            priority=len(sentences) - i,
            required=bool(name in s.lower() or (orientation and orientation in s.lower())),
        )
        for i, s in enumerate(sentences)
    ]
    lowered = answer.lower()
    if name in lowered and orientation in lowered and not force_core:
        return clauses, False
    core = Clause(
        f"{slots['opening']} {slots['subject']} {slots['orientation']}".strip() + ".",
        100,
        required=True,
    )
    return [core] + [Clause(c.text, c.priority) for c in clauses], True


def load_llm(folder: Path, device: str, dtype, trust_remote_code: bool = False):
    """(tokenizer, model on ``device`` in ``dtype``, folder sha256) of a checked chat-model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            f"LLM prompter: the tokenizer in {folder} has no chat template (an instruct/chat model is needed)"
        )
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
    return tokenizer, model.to(device).eval(), file_sha256(folder)


class LLMPrompter:
    """Prompts written by a local chat model; see the module docstring for fallbacks."""

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 96,
        temperature: float = 0.7,
        top_p: float = 0.9,
        budget: TokenBudget | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        role = "LLM prompter" if model_dir else "LLM prompter (model_dir empty: the default)"
        folder = check_transformers_dir(model_dir or DEFAULT_LLM, role)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.budget = budget or TokenBudget()
        key = ("llm", str(folder), self.device, str(self.dtype), bool(trust_remote_code))
        self.tokenizer, self.model, sha256 = resident(
            key, lambda: load_llm(folder, self.device, self.dtype, bool(trust_remote_code))
        )
        self.name = f"llm:{model_label(model_dir or DEFAULT_LLM, folder)}"
        self.model_files = {
            "llm": sha256,
            "instructions": data_sha256("instructions.yaml"),
            "photo_vocabulary": data_sha256("photo_vocabulary.yaml"),
        }

    def prompt_batch(self, items: list[PromptInput]) -> list[str]:
        return [p.text for p in self.fitted_batch(items)]

    def fitted_batch(
        self, items: list[PromptInput], budget: TokenBudget | None = None
    ) -> list[FittedPrompt]:
        """Prompts fitted to ``budget`` (default: this prompter's), with token counts and backend."""
        budget = budget or self.budget
        settings = [draw_setting(item) for item in items]
        slots = [setting_slots(item, s) for item, s in zip(items, settings)]
        answers: list[str] = []
        for start in range(0, len(items), self.batch_size):
            answers.extend(
                self._generate(
                    items[start : start + self.batch_size], slots[start : start + self.batch_size]
                )
            )
        out = []
        for item, setting, slot, answer in zip(items, settings, slots, answers):
            what = f"prompt for {slot['subject']}"
            text = clean_prompt(answer)
            if not text:
                fitted = fit_template(item, setting, budget)
                out.append(FittedPrompt(*fitted, fallback_name("template", self.name)))
                continue
            clauses, added_core = answer_clauses(text, slot)
            backend = self.name
            try:
                fitted = budget.fit(clauses, what=what, sep=" ")
            except ValueError:  # the model's required sentences alone are too long
                clauses, added_core = answer_clauses(text, slot, force_core=True)
                try:
                    fitted = budget.fit(clauses, what=what, sep=" ")
                except ValueError:  # even the core clause with its long opening is
                    fitted, backend = (
                        fit_template(item, setting, budget),
                        fallback_name("template", self.name),
                    )
            out.append(
                FittedPrompt(
                    *fitted,
                    backend + ("+orientation" if added_core and backend == self.name else ""),
                )
            )
        return out

    def _generate(self, items: list[PromptInput], slots: list[dict[str, str]]) -> list[str]:
        import torch

        texts = [
            self.tokenizer.apply_chat_template(
                chat_messages(s), add_generation_prompt=True, tokenize=False
            )
            for s in slots
        ]
        inputs = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(derive_seed("llm-prompt", *[int(i.seed) for i in items]))
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=True,
                temperature=self.temperature,
                top_p=self.top_p,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self.tokenizer.batch_decode(
            out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
