"""One command, one GPU: does every paper backend run here at real size, and how fast?

    make gpu-check                                  # on the GPU present; ten minutes on an H100
    .venv/bin/python bench/gpu_check.py --cpu       # the same rows on a CPU, truncated depth

Rows (each passes, fails with its error's last line, or says it is not available):

- ``flux``: FLUX.1-dev + XLabs canny and depth ControlNets + T5-XXL + CLIP-L + VAE at their real
  size from the repository's configs, random weights, through the project's own generator at
  1024², bf16, default speed settings (``bench/flux_gpu.py`` for the full comparison).
- ``vlm``, ``llm``: ``bench/text_gpu.py --random-weights --roles captioner|prompter`` (``--full`` on
  a GPU, ``--layers 1`` on a CPU): Qwen2.5-VL-7B and Qwen2.5-7B, tokens/s and the fixed-cost line.
- ``vit-h train``: ``bench/train_loader.py --step`` (ViT-H training steps fed by the data loader;
  full depth under bf16 autocast on CUDA, one layer in float32 on a CPU), its last line.
- ``egl render``: pyrender offscreen through EGL; on a GPU the GL renderer must not be Mesa's
  software llvmpipe (a node without the NVIDIA EGL vendor library renders on the CPU).
- ``dagster partition``: one small species × shard partition, every per-sample asset through
  ``dg.materialize``, images by the ``flux_controlnet`` backend on tiny saved FLUX folders on this
  device (the production loading path; the real-size throughput is the ``flux`` row's).

Without a CUDA device (and without ``--cpu``) it says so in one line and exits 2. It exits 0 only
when every row passes. ``--cpu``: one block per network and 1 denoising step (``--resolution``
makes it quicker still).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before anything imports OpenGL
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOT_AVAILABLE = "not available on this branch"


class Unavailable(Exception):
    """The row's code is not on this branch: neither a pass nor a failure of the node."""


def check_flux(device: str, cpu: bool, resolution: int) -> str:
    import torch

    from bench.flux_gpu import PROMPT, _requests, _sync, flops_per_image, peak_for
    from genzoo_assets.core.imagegen.random_weights import random_generator

    steps, batch = (1, 1) if cpu else (28, 4)
    start = time.perf_counter()
    gen = random_generator(
        "flux",
        device=device,
        dtype=torch.bfloat16,
        layers=1 if cpu else None,
        steps=steps,
        batch_size=batch,
        resolution=resolution,
    )
    build_s = time.perf_counter() - start
    reqs = _requests(batch, resolution)
    if not cpu:
        gen.steps = 2  # warm-up: kernels and allocator, not timed
        gen.generate(reqs[:1])
        gen.steps = steps
    _sync(device)
    start = time.perf_counter()
    images = gen.generate(reqs)
    _sync(device)
    seconds = (time.perf_counter() - start) / batch
    if [im.size for im in images] != [(resolution, resolution)] * batch:
        raise RuntimeError(f"images of size {[im.size for im in images]}, expected {resolution}²")
    figure = f"{seconds:.2f} s/image, {3600 / seconds:.0f} images/h (batch {batch}, {steps} steps"
    figure += f", {resolution}², built in {build_s:.0f} s"
    peak = peak_for(torch.cuda.get_device_name()) if device.startswith("cuda") else None
    if peak:
        mfu = flops_per_image(gen, resolution, resolution, PROMPT) / seconds / 1e12 / peak
        figure += f", MFU {100 * mfu:.1f}%"
    if device.startswith("cuda"):
        figure += f", peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    del gen
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return figure + ")"


def check_script(name: str, args: list[str], pick=None) -> str:
    """Run ``bench/<name> <args>`` (another branch's bench); report ``pick(lines)`` or its last line."""
    script = REPO / "bench" / name
    if not script.is_file():
        raise Unavailable(f"bench/{name} {NOT_AVAILABLE}")
    cmd = [sys.executable, str(script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = (proc.stdout + proc.stderr).strip().splitlines() or ["(no output)"]
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {proc.returncode}: {lines[-1]}")
    return (pick or (lambda ls: ls[-1]))(proc.stdout.strip().splitlines() or lines)


def check_text(role: str, cpu: bool) -> str:
    """``bench/text_gpu.py`` for one role: its table row and its fixed-cost line."""
    depth = ["--layers", "1"] if cpu else ["--full"]

    def pick(lines: list[str]) -> str:
        row = [" ".join(ln.split()) for ln in lines if ln.startswith(role)]
        cost = [ln.strip() for ln in lines if ln.strip().startswith(f"{role}:")]
        return "; ".join(row[:1] + cost[:1]) or lines[-1]

    return check_script("text_gpu.py", ["--random-weights", *depth, "--roles", role], pick)


def vit_args(cpu: bool) -> list[str]:
    """``bench/train_loader.py``: ViT-H steps fed by the data loader (full depth, bf16 on CUDA)."""
    if cpu:
        small = ["--samples", "64", "--resolution", "256", "--repeats", "1"]
        return ["--step", "--layers", "1", "--device", "cpu", *small]
    return ["--step", "--full", "--samples", "256", "--repeats", "1", "--device", "cuda"]


def check_egl(cpu: bool) -> str:
    import numpy as np
    import pyrender
    import trimesh
    from OpenGL.GL import GL_RENDERER, glGetString

    size = 1024
    scene = pyrender.Scene()
    scene.add(pyrender.Mesh.from_trimesh(trimesh.creation.icosphere(subdivisions=5)))
    pose = np.eye(4)
    pose[2, 3] = 3.0
    scene.add(pyrender.PerspectiveCamera(yfov=0.8), pose=pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
    renderer = pyrender.OffscreenRenderer(size, size)
    try:
        color, depth = renderer.render(scene)
        gl = glGetString(GL_RENDERER)
        gl = gl.decode() if isinstance(gl, bytes) else str(gl)
        start, n = time.perf_counter(), 20
        for _ in range(n):
            renderer.render(scene)
        fps = n / (time.perf_counter() - start)
    finally:
        renderer.delete()
    if not (depth > 0).any():
        raise RuntimeError(f"EGL rendered an empty depth map (GL_RENDERER {gl})")
    if not cpu and "llvmpipe" in gl.lower():
        raise RuntimeError(f"GL_RENDERER is {gl}: EGL renders on the CPU, not the GPU")
    return f"GL_RENDERER {gl}; {fps:.0f} frames/s at {size}²"


def check_dagster(device: str) -> str:
    import dagster as dg

    from genzoo_assets.core import layout
    from genzoo_assets.defs.images import images
    from genzoo_assets.defs.partitions import sample_partition_key
    from genzoo_assets.defs.render import control_renders
    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.sampling import pose_params, shape_params
    from genzoo_assets.defs.species import species
    from genzoo_assets.defs.text import captions, prompts
    from genzoo_assets_tests.fixtures.tiny_flux import build_tiny_flux

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with tempfile.TemporaryDirectory(prefix="genzoo-gpu-check-") as tmp:
        flux = build_tiny_flux(Path(tmp) / "flux")
        settings = GenZooSettings(
            data_dir=str(Path(tmp) / "data"), samples_per_shard=4, resolution=128, device=device
        )
        instance = dg.DagsterInstance.ephemeral()
        run = dict(instance=instance, resources={"settings": settings}, raise_on_error=True)
        dg.materialize([species], run_config=quiet, **run)
        image_config = {
            "backend": "flux_controlnet",
            "base_model": str(flux.base),
            "canny_controlnet": str(flux.canny),
            "depth_controlnet": str(flux.depth),
            "steps": 2,
            "max_sequence_length": 64,
        }
        start = time.perf_counter()
        result = dg.materialize(
            [shape_params, pose_params, control_renders, captions, prompts, images],
            partition_key=sample_partition_key("dog-labrador-retriever", "000"),
            run_config=quiet | {"ops": {"images": {"config": image_config}}},
            **run,
        )
        seconds = time.perf_counter() - start
        if not result.success:
            raise RuntimeError("the partition's run did not succeed")
        files = layout.partition_files(settings.root(), "images", "dog-labrador-retriever", "000")
        written = list(files.glob("*.jpg"))
        if len(written) != settings.samples_per_shard:
            raise RuntimeError(
                f"{len(written)} images written, expected {settings.samples_per_shard}"
            )
    return f"{len(written)} samples, 6 assets, {seconds:.1f} s (tiny FLUX on {device})"


def run_checks(cpu: bool, resolution: int, only: list[str] | None) -> list[tuple[str, str, str]]:
    import torch

    device = "cpu" if cpu else "cuda"
    checks = {
        "flux": lambda: check_flux(device, cpu, resolution),
        "vlm": lambda: check_text("captioner", cpu),
        "llm": lambda: check_text("prompter", cpu),
        "vit-h train": lambda: check_script("train_loader.py", vit_args(cpu)),
        "egl render": lambda: check_egl(cpu),
        "dagster partition": lambda: check_dagster(device),
    }
    rows = []
    for name, check in checks.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        try:
            status, figure = "pass", check()
        except Unavailable as exc:
            status, figure = "n/a", str(exc)
        except Exception as exc:  # one row's failure must not hide the others
            traceback.print_exc(file=sys.stderr)
            status, figure = "FAIL", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
        rows.append((name, status, f"{figure} [{time.perf_counter() - start:.0f} s]"))
        if not cpu:
            torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cpu", action="store_true", help="run on the CPU, one block per network")
    ap.add_argument("--resolution", type=int, default=1024, help="FLUX image side (default 1024)")
    ap.add_argument("--only", nargs="+", default=None, help="run only these rows")
    args = ap.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA GPU on this machine (torch sees none); nothing was run (--cpu runs the CPU mode)"
        )
        return 2
    where = "cpu (truncated depth)" if args.cpu else torch.cuda.get_device_name()
    start = time.perf_counter()
    rows = run_checks(args.cpu, args.resolution, args.only)
    print(f"gpu-check on {where}: {time.perf_counter() - start:.0f} s")
    width = max(len(r[0]) for r in rows)
    for name, status, figure in rows:
        print(f"{name:<{width}}  {status:<4}  {figure}")
    passed = sum(s == "pass" for _, s, _ in rows)
    print(f"{passed}/{len(rows)} passed")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
