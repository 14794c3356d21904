"""Size limits, in characters, on the text that reaches the image generator and the catalog.

A model's output is the pipeline's own text: an over-long caption or prompt (a model that does not
stop, a third-party backend) is cut at the last word boundary within the limit and the row says so
(``caption_truncated`` / ``prompt_truncated``). Text a user gives (species names, typed or from an
MDD file; a prompts table the images stage reads) is refused when over its limit, in one line
naming the input, never cut silently.

The limits sit far above what each stage makes on its own: a VLM caption is at most 48 new tokens
(about 300 characters), a prompt is fitted to at most 512 estimated tokens (one per 4 letters:
about 2,600 characters), a species name is a few words.
"""

from __future__ import annotations

from genzoo_assets.core.errors import InputError

MAX_CAPTION_CHARS = 1000  # a caption (VLM or geometric)
MAX_PROMPT_CHARS = 4096  # an image prompt (LLM or template), and one the images stage reads
MAX_NAME_CHARS = 200  # a species' scientific or common name, or a dog breed


class TextTooLongError(InputError):
    """A text a user gave is longer than its limit."""


def truncate_at_word(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters at the last whitespace within them (the whole
    first ``limit`` characters when there is none), with trailing spaces and separators
    (``, ; :``) removed; and whether it was cut."""
    if len(text) <= limit:
        return text, False
    head = text[: limit + 1]
    cut = head.rstrip()
    if len(cut) > limit:  # the limit falls inside a word: go back to the space before it
        space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        cut = head[:space].rstrip() if space > 0 else text[:limit]
    return cut.rstrip(" ,;:"), True


def check_length(text: str, limit: int, what: str) -> str:
    """``text`` unchanged, or a :class:`TextTooLongError` naming ``what`` when it is longer than
    ``limit`` characters."""
    if len(text) > limit:
        raise TextTooLongError(
            f"{what} is {len(text)} characters long, more than the {limit} allowed "
            f"(starts {text[:40]!r})"
        )
    return text
