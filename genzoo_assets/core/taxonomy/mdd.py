"""Mammal Diversity Database (MDD) releases as our species columns.

MDD publishes one CSV per release and its column set changed: v1.x keeps the superorder in
``majorSubtype`` and writes orders and families in upper case; v2.x adds explicit ``superorder``
(plus subclass, magnorder, ...) columns. Both store ``sciName`` as ``Genus_species``. We normalise
either into one frame so the sampling frame never depends on which release a user downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from genzoo_assets.core.errors import InputError

COLUMNS = (
    "scientific_name",
    "common_name",
    "order",
    "family",
    "genus",
    "superorder",
    "infraorder",
    "extinct",
    "domestic",
)

V1_REQUIRED = (
    "sciName",
    "mainCommonName",
    "majorSubtype",
    "order",
    "family",
    "extinct",
    "domestic",
)
V2_REQUIRED = ("sciName", "mainCommonName", "superorder", "order", "family", "extinct", "domestic")

# Body plans SMAL cannot represent: no shared quadruped skeleton, or limbs that are wings/flippers.
# Bats (Chiroptera) fly on wing membranes; whales and dolphins (infraorder Cetacea, which MDD files
# inside Artiodactyla) have no hind limbs; seals, sea lions and the walrus (Pinnipedia, families of
# Carnivora) move on flippers. MDD v1.2 gives cetaceans their own ``infraorder`` value "CETACEA";
# their families are listed too so a release without the infraorder column is filtered the same.
CETACEAN_FAMILIES = (
    "Balaenidae",
    "Balaenopteridae",
    "Cetotheriidae",
    "Eschrichtiidae",
    "Neobalaenidae",
    "Delphinidae",
    "Iniidae",
    "Kogiidae",
    "Lipotidae",
    "Monodontidae",
    "Phocoenidae",
    "Physeteridae",
    "Platanistidae",
    "Pontoporiidae",
    "Ziphiidae",
)
PINNIPED_FAMILIES = ("Phocidae", "Otariidae", "Odobenidae")
DEFAULT_DROP_TAXA = ("Chiroptera", "Cetacea", *CETACEAN_FAMILIES, *PINNIPED_FAMILIES)

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n", ""}


class MDDFormatError(InputError):
    """The file is not an MDD release we can read (wrong columns, empty, not a CSV, bad values)."""


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MDDFormatError(f"MDD file {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise MDDFormatError(f"MDD file {path} is empty")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        raise MDDFormatError(f"MDD file {path} is binary (NUL bytes), not a CSV")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MDDFormatError(f"MDD file {path} is not UTF-8 text: {exc.reason}") from exc
    except pd.errors.EmptyDataError as exc:
        raise MDDFormatError(f"MDD file {path} has no header row") from exc
    except pd.errors.ParserError as exc:
        raise MDDFormatError(f"MDD file {path} is not a readable CSV: {exc}") from exc


def _column_set(path: Path, df: pd.DataFrame) -> str:
    cols = set(df.columns)
    if set(V2_REQUIRED) <= cols:
        return "v2"
    if set(V1_REQUIRED) <= cols:
        return "v1"
    # Name the missing columns of the release the file looks closest to.
    expected = V2_REQUIRED if "superorder" in cols or "majorSubtype" not in cols else V1_REQUIRED
    missing = [c for c in expected if c not in cols]
    raise MDDFormatError(
        f"MDD file {path} has neither the v1.x nor the v2.x column set: missing {missing} "
        f"(found {sorted(cols)[:12]}{'...' if len(cols) > 12 else ''})"
    )


def _flag(path: Path, series: pd.Series, field: str) -> pd.Series:
    norm = series.astype(str).str.strip().str.lower()
    bad = ~norm.isin(_TRUE | _FALSE | {"na"})
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise MDDFormatError(
            f"MDD file {path}: column {field!r} has value {series.iloc[i]!r} on data row {i + 1} "
            f"(expected 0/1 or true/false)"
        )
    return norm.isin(_TRUE)


def _title(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.title().replace({"Na": "", "Nan": ""})


def _clean(series: pd.Series) -> pd.Series:
    s = series.astype(str).str.strip()
    return s.mask(s.str.upper().isin({"NA", "NAN"}), "")


def load_mdd(path: str | os.PathLike) -> pd.DataFrame:
    """Read an MDD release (v1.x or v2.x columns) into columns :data:`COLUMNS` plus ``source``.

    ``scientific_name`` is "Genus species"; order, family, superorder and infraorder are title-cased
    (empty when the release has none); ``extinct`` and ``domestic`` are bools.
    """
    path = Path(path)
    raw = _read_csv(path)
    if raw.empty:
        raise MDDFormatError(f"MDD file {path} has a header but no species rows")
    kind = _column_set(path, raw)
    sci = _clean(raw["sciName"]).str.replace("_", " ", regex=False).str.split().str.join(" ")
    if (sci == "").any():
        i = int((sci == "").to_numpy().nonzero()[0][0])
        raise MDDFormatError(f"MDD file {path}: empty sciName on data row {i + 1}")
    genus = _clean(raw["genus"]) if "genus" in raw else sci.str.split(" ").str[0]
    out = pd.DataFrame(
        {
            "scientific_name": sci,
            "common_name": _clean(raw["mainCommonName"]),
            "order": _title(raw["order"]),
            "family": _title(raw["family"]),
            "genus": genus.where(genus != "", sci.str.split(" ").str[0]),
            "superorder": _title(raw["superorder" if kind == "v2" else "majorSubtype"]),
            "infraorder": _title(raw["infraorder"]) if "infraorder" in raw else "",
            "extinct": _flag(path, raw["extinct"], "extinct"),
            "domestic": _flag(path, raw["domestic"], "domestic"),
        }
    )
    out["source"] = f"mdd:{path.name}"
    return out.reset_index(drop=True)


def filter_mdd(
    df: pd.DataFrame,
    superorder: str | None = "Laurasiatheria",
    exclude_orders: tuple[str, ...] = ("Eulipotyphla",),
    drop_taxa: tuple[str, ...] = DEFAULT_DROP_TAXA,
    include_extinct: bool = False,
) -> pd.DataFrame:
    """The sampling frame: one superorder, minus excluded orders and taxa SMAL cannot represent.

    ``drop_taxa`` names are matched (case-insensitively) against order, infraorder and family, so
    "Cetacea" removes whales whether a release files them by infraorder or only by family.
    Eulipotyphla (shrews, moles, hedgehogs) is excluded by default: tiny, and its body plans are
    far from the SMAL template.
    """
    keep = pd.Series(True, index=df.index)
    if superorder is not None:
        keep &= df["superorder"].str.lower() == superorder.lower()
    excluded = {o.lower() for o in exclude_orders}
    keep &= ~df["order"].str.lower().isin(excluded)
    dropped = {t.lower() for t in drop_taxa}
    for col in ("order", "infraorder", "family"):
        if col in df:
            keep &= ~df[col].astype(str).str.lower().isin(dropped)
    if not include_extinct:
        keep &= ~df["extinct"].astype(bool)
    return df[keep].reset_index(drop=True)
