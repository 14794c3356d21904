"""Batched LBS (one forward over 1024 samples) vs a per-sample loop on the same inputs.

Prints both timings and their ratio (target >= 20x) at one intra-op thread and at torch's default;
asserts the outputs agree. Each loop stops after ``--loop-seconds`` (default 10 s, to keep the run
under a minute on a busy 2-core machine); its per-sample time is then taken over the samples done.
Run: .venv/bin/python bench/body.py [--batch 1024] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from genzoo_assets.core.body import procedural_body_model


def _time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--loop-seconds", type=float, default=10.0)
    args = ap.parse_args()
    bm = procedural_body_model().to(args.device)
    default_threads = torch.get_num_threads()
    # Intra-op threads help the batch and hurt a loop of tiny ops (thread wake-ups), so the ratio is
    # reported at one thread (the conservative figure) and at torch's default.
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        run(bm, args)


def run(bm, args) -> None:
    torch.manual_seed(0)
    b = args.batch
    betas = torch.randn(b, bm.num_betas, device=args.device)
    orient = torch.randn(b, 3, device=args.device)
    pose = 0.4 * torch.randn(b, 34, 3, device=args.device)

    with torch.inference_mode():
        bm(betas[:4], orient[:4], pose[:4])  # warm-up
        t_batch, out = _time(lambda: bm(betas, orient, pose), repeat=3)
        outs, t0 = [], time.perf_counter()
        for i in range(b):
            outs.append(bm(betas[i:i + 1], orient[i:i + 1], pose[i:i + 1]))
            if time.perf_counter() - t0 > args.loop_seconds:
                break
        if args.device == "cuda":
            torch.cuda.synchronize()
        n = len(outs)
        per_sample_loop = (time.perf_counter() - t0) / n
    torch.testing.assert_close(out.vertices[:n], torch.cat([o.vertices for o in outs]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.keypoints[:n], torch.cat([o.keypoints for o in outs]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.joints[:n], torch.cat([o.joints for o in outs]), atol=1e-5, rtol=1e-5)
    per_sample_batch = t_batch / b
    print(f"device={args.device} threads={torch.get_num_threads()} vertices={bm.num_vertices} batch={b}")
    print(f"batched forward : {t_batch * 1e3:9.1f} ms for {b} ({per_sample_batch * 1e6:8.1f} us/sample)")
    print(f"per-sample loop : {per_sample_loop * n * 1e3:9.1f} ms for {n} ({per_sample_loop * 1e6:8.1f} us/sample)"
          f"{'' if n == b else f', stopped after {args.loop_seconds:g} s'}")
    print(f"outputs agree (vertices, joints, keypoints; atol 1e-5) on the {n} looped samples")
    print(f"ratio loop/batched = {per_sample_loop / per_sample_batch:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
