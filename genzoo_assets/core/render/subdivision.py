"""Loop subdivision as a precomputed sparse matrix.

GenZoo subdivides the posed mesh twice with ``trimesh.remesh.subdivide_loop`` before rendering.
For a fixed topology Loop subdivision is linear in the vertex positions, so the whole operation is
one sparse matrix ``S`` (new vertices × old vertices): ``subdivided = S @ vertices``. We build
``S`` once per face array by writing trimesh's own stencils (same edge order, same neighbour sets,
same boundary rules) as matrix rows, so the result equals trimesh's up to float round-off while
costing one sparse product per sample instead of a full topology analysis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np
import scipy.sparse as sp
from trimesh import graph, grouping
from trimesh.geometry import faces_to_edges


def _loop_step(faces: np.ndarray, num_vertices: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One Loop iteration: (matrix (n_even + n_odd, n), new faces), mirroring trimesh's ordering."""
    edges, edges_face = faces_to_edges(faces, return_index=True)
    edges.sort(axis=1)
    unique, inverse = grouping.unique_rows(edges)
    edge_inter = np.sort(grouping.group_rows(edges, require_count=2), axis=1)
    edge_bound = grouping.group_rows(edges, require_count=1)
    if len(edge_inter) * 2 + len(edge_bound) != len(edges):
        raise ValueError("faces: some edges are shared by more than two faces (non-manifold mesh)")
    counts = np.bincount(faces.reshape(-1), minlength=num_vertices)
    if (counts == 0).any():
        raise ValueError(f"faces: {int((counts == 0).sum())} vertices are not used by any face")

    edge_bound_mask = np.zeros(len(edges), dtype=bool)
    edge_bound_mask[edge_bound] = True
    edge_bound_mask = edge_bound_mask[unique]
    edge_inter_mask = ~edge_bound_mask
    edge_pair = np.zeros(len(edges), dtype=np.int64)
    edge_pair[edge_inter[:, 0]] = edge_inter[:, 1]
    edge_pair[edge_inter[:, 1]] = edge_inter[:, 0]
    face_a = edges_face[unique]
    face_b = edges_face[edge_pair[unique]]
    uedges = edges[unique]
    n_odd = len(uedges)

    rows, cols, vals = [], [], []

    def add(r, c, v):
        rows.append(np.asarray(r).ravel())
        cols.append(np.asarray(c).ravel())
        vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(r)).ravel())

    odd_rows = num_vertices + np.arange(n_odd)
    # Odd (edge) vertices: boundary = edge midpoint; interior = 3/8 ends + 1/8 opposite corners.
    b = np.flatnonzero(edge_bound_mask)
    add(np.repeat(odd_rows[b], 2), uedges[b].ravel(), 0.5)
    i = np.flatnonzero(edge_inter_mask)
    e = uedges[i]
    f0 = faces[face_a[i]]
    f1 = faces[face_b[i]]
    v2 = f0[~(f0[:, :, None] == e[:, None, :]).any(-1)]
    v3 = f1[~(f1[:, :, None] == e[:, None, :]).any(-1)]
    add(np.repeat(odd_rows[i], 2), e.ravel(), 0.375)
    add(odd_rows[i], v2, 0.125)
    add(odd_rows[i], v3, 0.125)

    # Even (original) vertices: interior = (1 - kβ)·v + β·Σ neighbours.
    neighbors = graph.neighbors(edges=uedges, max_index=num_vertices)
    neighbors = np.array(list(zip_longest(*neighbors, fillvalue=-1))).T
    k = (neighbors >= 0).sum(axis=1)
    beta = (40.0 - (2.0 * np.cos(2 * np.pi / k) + 3) ** 2) / (64 * k)
    centre = 1.0 - k * beta
    vrt_bound = np.zeros(num_vertices, dtype=bool)
    if edge_bound_mask.any():
        vrt_bound[np.unique(uedges[edge_bound_mask])] = True
    inner = np.flatnonzero(~vrt_bound)
    add(inner, inner, centre[inner])
    nb = neighbors[inner]
    valid = nb >= 0
    rows_nb = np.broadcast_to(inner[:, None], nb.shape)[valid]
    add(rows_nb, nb[valid], np.broadcast_to(beta[inner][:, None], nb.shape)[valid])
    # Boundary vertices: 3/4·v + 1/8 per neighbour that is itself a boundary vertex (trimesh's rule).
    bv = np.flatnonzero(vrt_bound)
    if len(bv):
        nb = neighbors[bv]
        valid = (nb >= 0) & vrt_bound[np.where(nb >= 0, nb, 0)]
        add(bv, bv, 0.75)
        add(np.broadcast_to(bv[:, None], nb.shape)[valid], nb[valid], 0.125)

    n_new = num_vertices + n_odd
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_new, num_vertices),
    )
    odd_idx = inverse.reshape((-1, 3)) + num_vertices
    new_faces = np.column_stack(
        [
            faces[:, 0],
            odd_idx[:, 0],
            odd_idx[:, 2],
            odd_idx[:, 0],
            faces[:, 1],
            odd_idx[:, 1],
            odd_idx[:, 2],
            odd_idx[:, 1],
            faces[:, 2],
            odd_idx[:, 0],
            odd_idx[:, 1],
            odd_idx[:, 2],
        ]
    ).reshape((-1, 3))
    return matrix, new_faces


@dataclass(frozen=True)
class LoopSubdivision:
    """``iterations`` Loop steps of a fixed topology: ``matrix`` (V', V) and the new ``faces`` (F', 3)."""

    matrix: sp.csr_matrix
    faces: np.ndarray
    num_vertices: int

    @classmethod
    def build(
        cls, faces: np.ndarray, iterations: int = 2, num_vertices: int | None = None
    ) -> LoopSubdivision:
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(
                f"faces must be an integer (F, 3) array, got {faces.dtype} {faces.shape}"
            )
        if iterations < 0:
            raise ValueError(f"subdivision iterations must be >= 0, got {iterations}")
        n = int(faces.max()) + 1 if num_vertices is None else int(num_vertices)
        matrix = sp.identity(n, format="csr", dtype=np.float64)
        cur = faces.astype(np.int64)
        for _ in range(iterations):
            step, cur = _loop_step(cur, matrix.shape[0])
            matrix = (step @ matrix).tocsr()
        return cls(matrix=matrix, faces=cur, num_vertices=n)

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        vertices = np.asarray(vertices, dtype=np.float64)
        if vertices.shape != (self.num_vertices, 3):
            raise ValueError(
                f"vertices must be ({self.num_vertices}, 3) for this topology, got {vertices.shape}"
            )
        return self.matrix @ vertices


def topology_key(faces: np.ndarray, iterations: int) -> str:
    """Cache key of a face array (its bytes), so a renderer builds each subdivision matrix once."""
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    return f"{hashlib.sha1(faces.tobytes()).hexdigest()}:{faces.shape[0]}:{iterations}"
