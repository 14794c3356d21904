"""Evaluate stage: AniMer's metrics, the Animal3D loader, the benchmark runner and its report."""

from .animal3d import Animal3DError, Animal3DSet, load_animal3d
from .benchmark import BenchmarkResult, Prediction, mean_pose_baseline, run_benchmark, summarize
from .benchmark_set import (
    BenchmarkSet,
    benchmark_set_from_animal3d,
    benchmark_set_from_arrays,
    benchmark_set_from_samples,
)
from .metrics import pa_mpjpe, pa_v2v, pck, pck_auc, pck_hits, s_mpjpe, s_v2v

__all__ = [
    "Animal3DError",
    "Animal3DSet",
    "BenchmarkResult",
    "BenchmarkSet",
    "Prediction",
    "benchmark_set_from_animal3d",
    "benchmark_set_from_arrays",
    "benchmark_set_from_samples",
    "load_animal3d",
    "mean_pose_baseline",
    "pa_mpjpe",
    "pa_v2v",
    "pck",
    "pck_auc",
    "pck_hits",
    "run_benchmark",
    "s_mpjpe",
    "s_v2v",
    "summarize",
]
