"""The species table: partition keys, and how many samples each species gets.

Sampling plan (GenZoo's recipe): the dataset is split ``dog_fraction`` : ``1 - dog_fraction``
between dog breeds and all other species, and split uniformly within each group. Integer counts
come from largest-remainder rounding in key order, so the plan is deterministic and
``planned_samples`` sums to ``dataset_size`` exactly.

Keys are Dagster partition keys: lowercase ``[a-z0-9_-]`` slugs of the scientific name
(``panthera-leo``) or, for dogs, ``dog-`` + the breed slug (``dog-labrador-retriever``). Names are
only ever data (pandas lookups, Parquet values), never spliced into SQL, and a key is a slug, so a
name crafted as SQL can at worst become an odd-looking key.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Mapping

import pandas as pd

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.taxonomy.bundled import bundled_species, dog_breeds
from genzoo_assets.core.text_limits import MAX_NAME_CHARS  # a species name a user types

TABLE_COLUMNS = (
    "key",
    "scientific_name",
    "common_name",
    "order",
    "family",
    "genus",
    "is_dog",
    "source",
    "share",
    "planned_samples",
    "planned_shards",
)
DOG_SCIENTIFIC_NAME = "Canis lupus familiaris"
DOG_SCIENTIFIC_SYNONYMS = ("canis lupus familiaris", "canis familiaris")
DOG_PREFIX = "dog-"
MAX_KEY_LENGTH = 80

_KEY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
# Binomial or trinomial: "Panthera leo", "Canis lupus familiaris" (hyphenated epithets allowed).
_SCI_RE = re.compile(r"^[A-Z][a-z]+(?: [a-z][a-z-]*[a-z]){1,2}$")


class UnknownSpeciesError(InputError):
    """A name matches no species in the sources given."""


class InvalidSpeciesError(InputError):
    """A species row cannot enter the table (malformed scientific name, bad key...)."""


def slugify(name: str) -> str:
    """Lowercase ``[a-z0-9-]`` slug: accents folded, every other run of characters becomes ``-``."""
    if not isinstance(name, str):
        raise InvalidSpeciesError(
            f"cannot slug {name!r}: expected a string, got {type(name).__name__}"
        )
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower().replace("'", "")).strip("-")
    if not slug:
        raise InvalidSpeciesError(f"name {name!r} has no letters or digits to build a key from")
    return slug[:MAX_KEY_LENGTH].rstrip("-")


def validate_partition_key(key: str) -> str:
    """Return ``key`` if it is a safe partition key, else raise naming what is wrong with it."""
    if not isinstance(key, str) or not key:
        raise InvalidSpeciesError(f"partition key {key!r} must be a non-empty string")
    if _KEY_RE.match(key) and len(key) <= MAX_KEY_LENGTH:
        return key
    forbidden = sorted({c for c in key if not re.match(r"[a-z0-9_-]", c)})
    problems = []
    if forbidden:
        problems.append(f"forbidden characters {forbidden} (allowed: a-z 0-9 _ -)")
    if "..." in key:
        problems.append("contains '...'")
    if len(key) > MAX_KEY_LENGTH:
        problems.append(f"longer than {MAX_KEY_LENGTH} characters")
    if not problems:
        problems.append("must start and end with a letter or digit")
    raise InvalidSpeciesError(f"partition key {key!r} is invalid: {'; '.join(problems)}")


def normalize_scientific_name(name: str) -> str:
    """``"panthera_LEO "`` -> ``"Panthera leo"``; raises unless it looks like a binomial/trinomial."""
    words = str(name).replace("_", " ").split()
    norm = " ".join([words[0].capitalize(), *(w.lower() for w in words[1:])]) if words else ""
    if not _SCI_RE.match(norm):
        raise InvalidSpeciesError(
            f"scientific name {name!r} is not 'Genus species' (letters only, 2-3 words)"
        )
    return norm


def _is_dog_species(sci: pd.Series) -> pd.Series:
    return sci.str.lower().str.replace("_", " ").isin(DOG_SCIENTIFIC_SYNONYMS)


def _dog_rows() -> pd.DataFrame:
    breeds = list(dog_breeds())
    return pd.DataFrame(
        {
            "key": [DOG_PREFIX + slugify(b) for b in breeds],
            "scientific_name": DOG_SCIENTIFIC_NAME,
            "common_name": breeds,
            "order": "Carnivora",
            "family": "Canidae",
            "genus": "Canis",
            "is_dog": True,
            "source": "dog_breeds",
        }
    )


def _species_rows(species_df: pd.DataFrame, default_source: str) -> pd.DataFrame:
    missing = [c for c in ("scientific_name",) if c not in species_df]
    if missing:
        raise InvalidSpeciesError(
            f"species table lacks columns {missing} (has {list(species_df.columns)})"
        )
    df = species_df.copy()
    df["scientific_name"] = [normalize_scientific_name(s) for s in df["scientific_name"]]
    df = df[~_is_dog_species(df["scientific_name"])].drop_duplicates(
        "scientific_name", keep="first"
    )
    for col in ("common_name", "order", "family"):
        df[col] = df[col].fillna("").astype(str) if col in df else ""
    df["genus"] = df["scientific_name"].str.split(" ").str[0]
    df["source"] = df["source"].fillna(default_source) if "source" in df else default_source
    df["key"] = [slugify(s) for s in df["scientific_name"]]
    df["is_dog"] = False
    return df.loc[
        :, ["key", "scientific_name", "common_name", "order", "family", "genus", "is_dog", "source"]
    ]


def _dedupe_keys(df: pd.DataFrame) -> pd.DataFrame:
    """Suffix ``-2``, ``-3``... onto repeated keys, in (key, scientific_name, common_name) order."""
    df = df.sort_values(["key", "scientific_name", "common_name"], kind="stable").reset_index(
        drop=True
    )
    seen: set[str] = set(df["key"])
    counts: dict[str, int] = {}
    keys = []
    for key in df["key"]:
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            keys.append(key)
            continue
        n = counts[key]
        while f"{key}-{n}" in seen:
            n += 1
        seen.add(f"{key}-{n}")
        keys.append(f"{key}-{n}")
    df["key"] = [validate_partition_key(k) for k in keys]
    return df


def _split(total: int, n: int) -> list[int]:
    base, rest = divmod(total, n)
    return [base + (1 if i < rest else 0) for i in range(n)]


def _plan(rows: pd.DataFrame, n_dog: int, n_other: int, samples_per_shard: int) -> pd.DataFrame:
    if samples_per_shard < 1:
        raise InputError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    parts = []
    for is_dog, total in ((False, n_other), (True, n_dog)):
        group = rows[rows["is_dog"] == is_dog].sort_values("key").copy()
        if group.empty:
            if total:
                kind = "dog breeds" if is_dog else "non-dog species"
                raise InputError(f"{total} samples planned for {kind} but the table has none")
            continue
        group["planned_samples"] = _split(total, len(group))
        group["share"] = total / max(n_dog + n_other, 1) / len(group)
        parts.append(group)
    out = pd.concat(parts, ignore_index=True)
    out["planned_samples"] = out["planned_samples"].astype("int64")
    out["planned_shards"] = [math.ceil(n / samples_per_shard) for n in out["planned_samples"]]
    out["planned_shards"] = out["planned_shards"].astype("int64")
    out["is_dog"] = out["is_dog"].astype(bool)
    return out.loc[:, list(TABLE_COLUMNS)].sort_values("key", ignore_index=True)


def build_species_table(
    species_df: pd.DataFrame | None = None,
    dog_fraction: float = 0.5,
    dataset_size: int = 1_000_000,
    samples_per_shard: int = 64,
) -> pd.DataFrame:
    """The species table (columns :data:`TABLE_COLUMNS`): bundled dog breeds + ``species_df``.

    ``species_df`` (default :func:`bundled_species`, or e.g. ``filter_mdd(load_mdd(path))``) needs
    ``scientific_name`` and may carry ``common_name, order, family, source``; rows for the domestic dog
    are dropped because dogs enter as breeds. ``share`` is each row's intended fraction of the
    dataset; ``planned_shards`` = ceil(planned_samples / samples_per_shard).
    """
    if not 0.0 <= dog_fraction <= 1.0:
        raise InputError(f"dog_fraction must be in [0, 1], got {dog_fraction}")
    if dataset_size < 0:
        raise InputError(f"dataset_size must be >= 0, got {dataset_size}")
    source = "bundled" if species_df is None else "custom"
    others = _species_rows(bundled_species() if species_df is None else species_df, source)
    n_dog = math.floor(dataset_size * dog_fraction + 0.5)
    dogs = _dog_rows() if dog_fraction > 0 else None
    others = others if dog_fraction < 1 else None
    rows = _dedupe_keys(pd.concat([others, dogs], ignore_index=True))
    return _plan(rows, n_dog, dataset_size - n_dog, samples_per_shard)


def _norm(text: object) -> str:
    return " ".join(str(text).replace("_", " ").casefold().split())


def resolve_species(name: str, sources_df: pd.DataFrame) -> pd.Series:
    """The row of ``sources_df`` named by a key, scientific name or common name (any case).

    Matches are tried in that order; ``Panthera_leo`` equals ``Panthera leo``. A common name shared
    by several species is refused rather than guessed.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownSpeciesError(f"species name {name!r} is empty")
    if len(name) > MAX_NAME_CHARS:
        raise UnknownSpeciesError(
            f"species name {name[:40]!r}... is {len(name)} characters long, more than the "
            f"{MAX_NAME_CHARS} a species name can be"
        )
    query = _norm(name)
    slug = _slug_or_empty(name)
    columns = [c for c in ("key", "scientific_name", "common_name") if c in sources_df]
    for col in columns:
        values = sources_df[col].map(_norm)
        match = values == query
        if col == "key" and slug:
            match |= values == slug
        hits = sources_df[match]
        if len(hits) and hits["scientific_name"].nunique() == 1:
            return hits.iloc[0]
        if len(hits):
            raise UnknownSpeciesError(
                f"species name {name!r} is ambiguous: {col} matches {sorted(hits['scientific_name'])[:8]}; "
                f"use a scientific name or key"
            )
    vocab = sorted({str(v) for c in columns for v in sources_df[c] if str(v)})
    by_norm = {_norm(v): v for v in vocab}
    close = [by_norm[m] for m in difflib.get_close_matches(query, list(by_norm), n=5, cutoff=0.6)]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownSpeciesError(
        f"unknown species {name!r} ({len(sources_df)} species searched){hint}"
    )


def _slug_or_empty(name: str) -> str:
    try:
        return slugify(name)
    except InvalidSpeciesError:
        return ""


def add_species(
    table: pd.DataFrame, row: Mapping | pd.Series, samples_per_shard: int = 64
) -> pd.DataFrame:
    """A new table with ``row`` added (idempotent: the same species twice changes nothing).

    The total planned samples and the dog/non-dog totals stay fixed; adding a species re-spreads
    its group's samples uniformly, so the plan still sums to the same dataset size. A row with
    ``is_dog`` true is a breed (``common_name`` = breed name, keyed ``dog-<breed>``).
    """
    row = dict(row)
    is_dog = bool(row.get("is_dog", False))
    if is_dog:
        breed = str(row.get("common_name", "")).strip()
        new = {
            "key": DOG_PREFIX + slugify(breed),
            "scientific_name": DOG_SCIENTIFIC_NAME,
            "common_name": breed,
            "order": "Carnivora",
            "family": "Canidae",
            "genus": "Canis",
            "is_dog": True,
            "source": row.get("source") or "user",
        }
        if new["key"] in set(table["key"]):
            return table.copy()
    else:
        if "scientific_name" not in row:
            raise InvalidSpeciesError(f"species row {row!r} has no 'scientific_name'")
        sci = normalize_scientific_name(row["scientific_name"])
        if _is_dog_species(pd.Series([sci])).iloc[0]:
            raise InvalidSpeciesError(
                f"{row['scientific_name']!r} is the domestic dog: add it as a breed (is_dog=True)"
            )
        if sci in set(table["scientific_name"]):
            return table.copy()
        new = {
            "key": slugify(sci),
            "scientific_name": sci,
            "genus": sci.split(" ")[0],
            "is_dog": False,
            "source": row.get("source") or "user",
            **{c: str(row.get(c) or "") for c in ("common_name", "order", "family")},
        }
    if "key" in row and row["key"] and not is_dog:
        new["key"] = validate_partition_key(str(row["key"]))
    existing = table.loc[:, list(TABLE_COLUMNS[:8])]
    taken = set(existing["key"])
    base, n = new["key"], 2
    while new["key"] in taken:
        new["key"], n = f"{base}-{n}", n + 1
    validate_partition_key(new["key"])
    rows = pd.concat([existing, pd.DataFrame([new])], ignore_index=True)
    n_dog = int(table.loc[table["is_dog"], "planned_samples"].sum())
    n_other = int(table.loc[~table["is_dog"], "planned_samples"].sum())
    return _plan(rows, n_dog, n_other, samples_per_shard)
