"""Catalog throughput: ingest 1,000,000 synthetic samples as Parquet partitions and query them.

Writes ``shape_params`` (betas: list<float32> of 41) and ``pose_params`` (yaw/pitch, global_orient,
transl) as one file per species x shard through ``write_table_atomic``, refreshes the DuckDB
catalog (a snapshot in DuckDB's native storage), then times typical queries through ``query()``
(a fresh cursor per call, as the CLI and UI use it), and an incremental refresh after adding one
species. Targets: ingest (write + refresh) >= 100k rows/s, each query's p50 < 100 ms.

    .venv/bin/python bench/catalog.py [--rows 1000000 --species 100 --shards 10 --repeats 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo_assets.core.catalog.duckdb_catalog import query, refresh_catalog
from genzoo_assets.core.catalog.parquet import write_table_atomic
from genzoo_assets.core.catalog.provenance import provenance, provenance_json
from genzoo_assets.core.taxonomy.table import build_species_table

INGEST_TARGET_ROWS_S = 100_000
QUERY_TARGET_MS = 100.0


def _partitions(keys: list[str], shards: int, rows: int):
    """(species, shard, shape df, pose df) per partition; rows split as evenly as possible."""
    rng = np.random.default_rng(0)
    n_parts = len(keys) * shards
    sizes = [rows // n_parts + (1 if i < rows % n_parts else 0) for i in range(n_parts)]
    prov_shape = provenance_json(provenance("shape_params", "prior"))
    prov_pose = provenance_json(provenance("pose_params", "bank"))
    start = 0
    for i, n in enumerate(sizes):
        species, shard = keys[i // shards], f"{i % shards:03d}"
        idx = np.arange(start, start + n)
        start += n
        base = {"sample_id": [f"{species}.{shard}.{j:05d}" for j in idx], "species": species,
                "shard": shard, "index": idx}
        shape = pd.DataFrame({**base, "seed": rng.integers(0, 2**62, n), "shape_backend": "prior",
                              "betas": list(rng.standard_normal((n, 41), dtype=np.float32)),
                              "provenance": prov_shape})
        pose = pd.DataFrame({**base, "yaw_deg": rng.uniform(-180, 180, n), "pitch_deg": rng.uniform(-10, 40, n),
                             "global_orient": list(rng.standard_normal((n, 3), dtype=np.float32)),
                             "transl": list(rng.standard_normal((n, 3), dtype=np.float32)),
                             "pose_backend": "bank", "provenance": prov_pose})
        yield species, shard, shape, pose


def _p50_ms(sql: str, root: Path, repeats: int) -> tuple[float, float, float, int]:
    """(p50 wall ms, p50 CPU ms, first-call wall ms, rows); the first call reads every footer."""
    walls, cpus, rows = [], [], 0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = len(query(sql, root))
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return statistics.median(walls), statistics.median(cpus), walls[0], rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--species", type=int, default=100)
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="genzoo-catalog-bench-"))
    try:
        table = build_species_table(dataset_size=args.rows)
        keys = list(table["key"][: args.species])
        write_table_atomic(table, root / "species" / "species.parquet")
        write_s = cpu_s = 0.0
        n_files = 0
        for species, shard, shape, pose in _partitions(keys, args.shards, args.rows):
            t0, c0 = time.perf_counter(), time.process_time()
            write_table_atomic(shape, root / "shape_params" / species / f"{shard}.parquet")
            write_table_atomic(pose, root / "pose_params" / species / f"{shard}.parquet")
            write_s += time.perf_counter() - t0
            cpu_s += time.process_time() - c0
            n_files += 2
        write_cpu = cpu_s
        t0, c0 = time.perf_counter(), time.process_time()
        refresh_catalog(root)
        refresh_s = time.perf_counter() - t0
        cpu_s += time.process_time() - c0
        rate = args.rows / (write_s + refresh_s)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (wall times suffer when loaded)")
        print(f"ingest: {args.rows:,} samples x 2 tables in {n_files:,} Parquet files: write {write_s:.2f} s "
              f"+ refresh {refresh_s:.3f} s = {rate:,.0f} rows/s wall, {args.rows / cpu_s:,.0f} rows/CPU-s "
              f"(CPU: write {write_cpu:.2f} s + refresh {cpu_s - write_cpu:.2f} s) "
              f"(target >= {INGEST_TARGET_ROWS_S:,} wall) {'PASS' if rate >= INGEST_TARGET_ROWS_S else 'FAIL'}")

        target, other = keys[0], keys[len(keys) // 2]
        queries = {
            "count by species": "SELECT species, count(*) AS n FROM shape_params GROUP BY species",
            "yaw range + species": (f"SELECT sample_id, yaw_deg FROM pose_params WHERE species IN ('{target}', "
                                    f"'{other}') AND yaw_deg BETWEEN -30 AND 30"),
            "join with species": ('SELECT sp.family, sp."order", count(*) AS n FROM shape_params s '
                                  "JOIN species sp ON sp.key = s.species GROUP BY ALL"),
        }
        ok = rate >= INGEST_TARGET_ROWS_S
        for name, sql in queries.items():
            p50, cpu, first, rows = _p50_ms(sql, root, args.repeats)
            passed = p50 < QUERY_TARGET_MS
            ok &= passed
            print(f"query {name!r}: p50 {p50:.1f} ms wall ({cpu:.1f} ms CPU; first call {first:.1f} ms) over "
                  f"{args.repeats} runs, {rows:,} rows (target < {QUERY_TARGET_MS:.0f} ms) "
                  f"{'PASS' if passed else 'FAIL'}")
        p50, cpu, first, rows = _p50_ms("SELECT count(*) AS n, avg(yaw_deg) AS y FROM samples WHERE species = "
                                        f"'{target}'", root, max(3, args.repeats // 2))
        print(f"info: samples view (shape_params LEFT JOIN pose_params + species), one species: p50 {p50:.1f} ms")
        p50, cpu, first, rows = _p50_ms("SELECT species, count(*) AS n, avg(yaw_deg) AS y FROM samples GROUP BY 1",
                                        root, max(3, args.repeats // 2))
        print(f"info: samples view, all {args.rows:,} samples grouped by species: p50 {p50:.1f} ms")
        extra = [p for p in _partitions([f"{keys[0]}-bis"], args.shards, args.rows // len(keys))]
        for species, shard, shape, pose in extra:
            write_table_atomic(shape, root / "shape_params" / species / f"{shard}.parquet")
            write_table_atomic(pose, root / "pose_params" / species / f"{shard}.parquet")
        t0 = time.perf_counter()
        refresh_catalog(root)
        again_s = time.perf_counter() - t0
        reused, read = query("SELECT files_reused, files_read FROM _catalog_info", root).iloc[0].tolist()
        print(f"info: incremental refresh after adding one species ({read} new files, {reused:,} reused "
              f"from the previous snapshot): {again_s:.2f} s (full refresh above: {refresh_s:.2f} s)")
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
