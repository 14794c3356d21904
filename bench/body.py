"""Batched LBS (one forward over 1024 samples) vs a per-sample loop of the same forward on the same inputs.

Both paths call the same ``BodyModel.forward`` in float32 under ``torch.inference_mode``. They run
interleaved ``--repeats`` times (batch, then a loop over ``--loop-samples`` samples, rotating through
the batch) and the medians are compared, so load spikes from other processes hit both alike. Prints
the thread count and load average, the ratio (target >= 20x) at one intra-op thread and at torch's
default, and what the dense skinning GEMM (12 x J x V multiply-adds a sample; the sparse path skips
it) would cost at the GEMM rate this machine reaches now, next to the batch time 20x would need.
Asserts the looped outputs equal the batched ones and the batched vertices equal ``smplx.lbs.lbs``.
Run: .venv/bin/python bench/body.py [--batch 1024] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from smplx.lbs import lbs

from genzoo_assets.core.body import procedural_body_model
from genzoo_assets.core.body.rotations import axis_angle_to_matrix


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _gemm_gflops(bm, device: str) -> float:
    """Rate of a dense skinning GEMM's shape ((8*12, J) @ (J, V)) on this machine now."""
    a = torch.randn(96, bm.num_joints, device=device)
    w = bm.lbs_weights.T
    a @ w
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ w
        _sync(device)
        runs.append((time.perf_counter() - t0) / 10)
    return 2 * a.shape[0] * a.shape[1] * w.shape[1] / statistics.median(runs) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--loop-samples", type=int, default=96)
    args = ap.parse_args()
    bm = procedural_body_model().to(args.device, torch.float32)
    default_threads = torch.get_num_threads()
    # Intra-op threads help the batch and hurt a loop of tiny ops (thread wake-ups), so the ratio is
    # reported at one thread (the conservative figure) and at torch's default.
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        run(bm, args)


def run(bm, args) -> None:
    torch.manual_seed(0)
    b, dev = args.batch, args.device
    betas = torch.randn(b, bm.num_betas, device=dev)
    orient = torch.randn(b, 3, device=dev)
    pose = 0.4 * torch.randn(b, 34, 3, device=dev)
    batch_s, loop_s, start = [], [], 0
    with torch.inference_mode():
        bm(betas[:4], orient[:4], pose[:4])  # warm-up
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = bm(betas, orient, pose)
            _sync(dev)
            batch_s.append((time.perf_counter() - t0) / b)
            idx = [(start + i) % b for i in range(min(args.loop_samples, b))]
            t0 = time.perf_counter()
            looped = [bm(betas[i : i + 1], orient[i : i + 1], pose[i : i + 1]) for i in idx]
            _sync(dev)
            loop_s.append((time.perf_counter() - t0) / len(idx))
            start += len(idx)
            for name in ("vertices", "joints", "keypoints"):
                torch.testing.assert_close(
                    getattr(out, name)[idx],
                    torch.cat([getattr(o, name) for o in looped]),
                    atol=1e-5,
                    rtol=1e-5,
                )
        rot = torch.cat([axis_angle_to_matrix(orient)[:, None], axis_angle_to_matrix(pose)], 1)
        ref_v, _ = lbs(
            betas[:64],
            rot[:64],
            bm.v_template,
            bm.shapedirs,
            bm.posedirs,
            bm.J_regressor,
            bm.parents_t,
            bm.lbs_weights,
            pose2rot=False,
        )
        gflops = _gemm_gflops(bm, dev)
    smplx_err = (out.vertices[:64] - ref_v).abs().max().item()
    assert smplx_err < 1e-5, f"batched vertices differ from smplx.lbs.lbs by {smplx_err:.2e}"
    per_batch, per_loop = statistics.median(batch_s), statistics.median(loop_s)
    dense_gemm = 2 * 12 * bm.num_joints * bm.num_vertices / (gflops * 1e9)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"device={dev} dtype={out.vertices.dtype} threads={torch.get_num_threads()} cores={os.cpu_count()} "
        f"load average={load} vertices={bm.num_vertices} joints={bm.num_joints} batch={b}"
    )
    print(
        f"batched forward : {per_batch * 1e6:8.1f} us/sample  (median of {args.repeats}: "
        f"{', '.join(f'{x * 1e6:.0f}' for x in batch_s)})"
    )
    print(
        f"per-sample loop : {per_loop * 1e6:8.1f} us/sample  (median of {args.repeats} x {args.loop_samples}: "
        f"{', '.join(f'{x * 1e6:.0f}' for x in loop_s)})"
    )
    print(
        f"dense skinning GEMM alone (the old path): {dense_gemm * 1e6:.1f} us/sample at the {gflops:.1f} GFLOP/s "
        f"measured now; 20x needs the batch at {per_loop / 20 * 1e6:.1f} us/sample"
    )
    print(
        f"outputs agree: loop == batch (atol 1e-5), batch vs smplx.lbs.lbs max |diff| {smplx_err:.1e}"
    )
    print(f"ratio loop/batched = {per_loop / per_batch:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
