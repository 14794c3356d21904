"""Dataset splits by species: a held-out clade (GenZoo's Felidae test), then train/val by species.

Shared by every export (WebDataset, Animal3D, Hugging Face) so that a species is in the same split in
each of them.
"""

from __future__ import annotations

import pandas as pd

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.seeds import derive_seed

SPLITS = ("train", "val", "heldout")
# GenZoo-Felidae: every cat held out of training. The default of the export (`dataset_shards`'s
# `heldout_families`); the export's manifest records what a run really held out.
DEFAULT_HELDOUT_FAMILIES = ("Felidae",)


def assign_splits(
    samples: pd.DataFrame, heldout_families=DEFAULT_HELDOUT_FAMILIES, val_fraction: float = 0.1
) -> pd.Series:
    """The split of each row: ``heldout`` by family, then ``val``/``train`` by species.

    The val species are the ``round(val_fraction · n)`` (at least one when there are two or more
    species) with the smallest hash of their name, so adding a species never moves another. With
    one training species (`genzoo demo --species 3`) a species split would leave val empty, so val
    takes ``round(val_fraction · n)`` (at least one) of its samples, smallest hash of their id
    first: validation then measures new samples of a seen species, not new species.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    heldout_families = tuple(heldout_families or ())
    if heldout_families and "family" not in samples.columns:
        raise InputError(f"samples need a 'family' column to hold out {heldout_families}")
    split = pd.Series("train", index=samples.index, dtype=object)
    if heldout_families:
        split[samples["family"].isin(heldout_families)] = "heldout"
    rest = sorted(
        set(samples.loc[split == "train", "species"]), key=lambda s: (derive_seed("split", s), s)
    )
    n_val = int(round(val_fraction * len(rest)))
    if val_fraction > 0 and len(rest) >= 2:
        n_val = min(max(n_val, 1), len(rest) - 1)
    split[samples["species"].isin(rest[:n_val]) & (split == "train")] = "val"
    if val_fraction > 0 and len(rest) == 1:
        ids = sorted(
            samples.loc[split == "train", "sample_id"], key=lambda s: (derive_seed("split", s), s)
        )
        n_val = min(max(int(round(val_fraction * len(ids))), 1), len(ids) - 1)
        split[samples["sample_id"].isin(ids[:n_val])] = "val"
    return split
