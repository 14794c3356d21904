"""AniMer's 26 Animal3D keypoints on SMAL topology: fixed vertex lists, taken as facts.

Source: ``luoxue-star/AniMer`` (MIT licence, Copyright (c) 2024 Jin Lv), file
``amr/models/smal_warapper.py``, ``keypoint_vertices_idx`` (read at commit 4d8be3b). Its
``SMAL.forward`` makes keypoint k the mean of the vertices in list k; AniMer's evaluator scores
Animal3D on these, so every published Animal3D number uses them. The order is Animal3D's
(``skeleton.KEYPOINT_NAMES``): AniMer compares them index by index with the release's
``keypoint_2d``.

They only mean something on SMAL's mesh (SMAL and SMAL+ share it): :func:`is_smal_topology`
says when they apply; other topologies (the procedural model) use derived groups.
"""

from __future__ import annotations

import numpy as np

from .skeleton import SMAL_PARENTS

KEYPOINT_SET_ANIMER = "animer"  # these lists (SMAL topology)
KEYPOINT_SET_DERIVED = (
    "derived"  # groups derived from the model's own geometry (smal_geometry, procedural)
)

SMAL_NUM_VERTICES = 3889

ANIMER_KEYPOINT_VERTICES: tuple[tuple[int, ...], ...] = (
    (1068, 1080, 1029, 1226),
    (2660, 3030, 2675, 3038),
    (910,),
    (360, 1203, 1235, 1230),
    (3188, 3156, 2327, 3183),
    (1976, 1974, 1980, 856),
    (3854, 2820, 3852, 3858),
    (452, 1811),
    (416, 235, 182),
    (2156, 2382, 2203),
    (829,),
    (2793,),
    (60, 114, 186, 59),
    (2091, 2037, 2036, 2160),
    (384, 799, 1169, 431),
    (2351, 2763, 2397, 3127),
    (221, 104),
    (2754, 2192),
    (191, 1158, 3116, 2165),
    (28, 1109, 1110, 1111, 1835, 1836, 3067, 3068, 3069),
    (498, 499, 500, 501, 502, 503),
    (2463, 2464, 2465, 2466, 2467, 2468),
    (764, 915, 916, 917, 934, 935, 956),
    (2878, 2879, 2880, 2897, 2898, 2919, 3751),
    (1039, 1845, 1846, 1870, 1879, 1919, 2997, 3761, 3762),
    (0, 464, 465, 726, 1824, 2429, 2430, 2690),
)


def is_smal_topology(num_vertices: int, parents) -> bool:
    """SMAL's mesh (3889 vertices) with SMAL's joint tree (``kintree_table[0]``, root parent -1)."""
    par = np.asarray(parents).astype(np.int64).ravel()
    return int(num_vertices) == SMAL_NUM_VERTICES and par.tolist() == list(SMAL_PARENTS)


def animer_keypoint_groups() -> list[list[int]]:
    """AniMer's vertex lists as the ``keypoint_groups`` a :class:`BodyModel` takes."""
    return [list(g) for g in ANIMER_KEYPOINT_VERTICES]
