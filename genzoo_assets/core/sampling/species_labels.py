"""Names of a species-table row as the shape backends need them: a label for messages, the common
name a text encoder understands, and taxon slugs for per-taxon priors."""

from __future__ import annotations

import re


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().casefold()).strip("_")


def species_label(row: dict) -> str:
    """The row's slug, for error messages."""
    return str(
        row.get("species") or row.get("slug") or row.get("common_name") or row.get("name") or "?"
    )


def common_name(row: dict) -> str:
    """The human name a text encoder understands ("Border Collie", "giraffe")."""
    for key in ("common_name", "name", "breed"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    slug = row.get("species") or row.get("slug")
    if isinstance(slug, str) and slug.strip():
        return slug.replace("_", " ").replace("-", " ").strip()
    raise ValueError(f"species row has no common_name/name/species field: {sorted(row)}")


def taxon_keys(row: dict) -> dict[str, str]:
    """Lower-case slugs of the row's breed / family / order ('' when absent)."""
    out = {}
    for key in ("breed", "family", "order"):
        value = row.get(key)
        out[key] = _slug(value) if isinstance(value, str) else ""
    return out
