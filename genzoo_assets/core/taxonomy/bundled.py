"""Species sources shipped inside the package, so the demo and tests need no download.

``data/species.csv`` lists 182 living Laurasiatheria quadrupeds (Carnivora without pinnipeds,
non-cetacean Artiodactyla, Perissodactyla, Pholidota). Scientific names, orders and families follow
MDD v1.2 (e.g. ``Bos bison``, ``Mustela vison``, ``Tragelaphus oryx``) so they resolve against an
MDD release; common names are the everyday English ones a text-to-image prompt understands.
``data/dog_breeds.csv`` lists 247 breeds recognised by the FCI and/or AKC.
"""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

SPECIES_COLUMNS = ("scientific_name", "common_name", "order", "family")


def _read(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath("data", name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@functools.lru_cache(maxsize=1)
def _species() -> pd.DataFrame:
    return _read("species.csv")


def bundled_species() -> pd.DataFrame:
    """The default species list: ``scientific_name, common_name, order, family, genus, source``."""
    df = _species().loc[:, list(SPECIES_COLUMNS)].copy()
    df["genus"] = df["scientific_name"].str.split(" ").str[0]
    df["source"] = "bundled"
    return df


@functools.lru_cache(maxsize=1)
def dog_breeds() -> tuple[str, ...]:
    """The 247 bundled dog breed names, in file order."""
    return tuple(_read("dog_breeds.csv")["breed"].str.strip())
