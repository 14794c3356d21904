"""Mammal Diversity Database (MDD) releases as our species columns.

MDD publishes one CSV per release and its column set changed: v1.x keeps the superorder in
``majorSubtype`` and writes orders and families in upper case; v2.x adds explicit ``superorder``
(plus subclass, magnorder, ...) columns. Both store ``sciName`` as ``Genus_species``. We normalise
either into one frame so the sampling frame never depends on which release a user downloaded.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.text_limits import MAX_NAME_CHARS

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


MAX_FILE_BYTES = 256 << 20  # MDD v2.0's CSV is about 6 MB
MAX_LINE_CHARS = 64 << 10  # one row of the CSV (MDD's longest is under 4,000 characters)
MAX_FIELD_CHARS = 4096  # one field: a name, a taxon, a citation


def _bounded_lines(path: Path, fh) -> Iterator[str]:
    """The file's lines, refusing one longer than MAX_LINE_CHARS before it is read whole."""
    for number in itertools.count(1):
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise MDDFormatError(
                f"MDD file {path}: line {number} is longer than {MAX_LINE_CHARS} characters "
                "(an MDD row is a few hundred)"
            )
        yield line


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, data rows) of the CSV, streamed with every line and field bounded; a field over
    MAX_FIELD_CHARS is an MDDFormatError naming its data row and column."""
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_LINE_CHARS)  # a quoted field that spans lines is bounded too
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(_bounded_lines(path, fh))
            header = next(reader, None)
            if not header:
                raise MDDFormatError(f"MDD file {path} has no header row")
            rows = []
            for number, row in enumerate(reader, 1):
                if not row:
                    continue
                if len(row) > len(header):
                    raise MDDFormatError(
                        f"MDD file {path}: data row {number} has {len(row)} fields, the header "
                        f"{len(header)}"
                    )
                for column, value in zip(header, row):
                    if len(value) > MAX_FIELD_CHARS:
                        raise MDDFormatError(
                            f"MDD file {path}: data row {number}, column {column!r} holds "
                            f"{len(value)} characters, more than the {MAX_FIELD_CHARS} allowed"
                        )
                rows.append(row + [""] * (len(header) - len(row)))
    except UnicodeDecodeError as exc:
        raise MDDFormatError(f"MDD file {path} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise MDDFormatError(f"MDD file {path} is not a readable CSV: {exc}") from exc
    finally:
        csv.field_size_limit(limit)
    return header, rows


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings. Sizes are bounded (MAX_FILE_BYTES, MAX_LINE_CHARS, MAX_FIELD_CHARS):
    a file with a gigabyte in one field is refused at its first oversized line, not read whole."""
    if not path.is_file():
        raise MDDFormatError(f"MDD file {path} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise MDDFormatError(f"MDD file {path} is empty")
    if size > MAX_FILE_BYTES:
        raise MDDFormatError(
            f"MDD file {path} is {size / 2**20:.0f} MiB, more than the {MAX_FILE_BYTES >> 20} MiB "
            "an MDD release could be"
        )
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        raise MDDFormatError(f"MDD file {path} is binary (NUL bytes), not a CSV")
    header, rows = _rows(path)
    if len(set(header)) != len(header):
        duplicated = sorted({c for c in header if header.count(c) > 1})
        raise MDDFormatError(f"MDD file {path}: column(s) {duplicated} appear more than once")
    return pd.DataFrame(rows, columns=header, dtype=str)


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
    common = _clean(raw["mainCommonName"])
    for column, names in (("sciName", sci), ("mainCommonName", common)):
        long = names.str.len() > MAX_NAME_CHARS
        if long.any():
            i = int(long.to_numpy().nonzero()[0][0])
            raise MDDFormatError(
                f"MDD file {path}: data row {i + 1}, column {column!r} holds a name of "
                f"{len(names.iloc[i])} characters, more than the {MAX_NAME_CHARS} a species name "
                "can be (names go into every prompt)"
            )
    genus = _clean(raw["genus"]) if "genus" in raw else sci.str.split(" ").str[0]
    out = pd.DataFrame(
        {
            "scientific_name": sci,
            "common_name": common,
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
