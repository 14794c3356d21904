"""How a diffusers generator spends its GPU: attention kernels, TF32, VAE decoding, compilation.

Three kinds of setting, kept apart because they differ in what they cost:

- **Lossless defaults** (on CUDA, always on unless ``reproduce_notebook``): scaled-dot-product
  attention restricted to the flash, memory-efficient and cuDNN kernels (never the math kernel,
  which materialises the T×T score matrix: 4608² per head at 1024²), TF32 for the float32 matmuls
  and convolutions that remain in a bf16 pipeline, and VAE slicing (the decoder runs one image at a
  time, so a batch of 8 at 1024² does not hold eight 128-channel 1024² activations at once).
- **Opt-ins that keep the numerics**: ``compile`` = ``"regional"`` (``compile_repeated_blocks``:
  one compiled graph per block class, seconds to compile) or ``"full"`` (``transformer.compile``:
  longest compile, fastest steady state).
- **Lossy opt-ins** (off by default, recorded in every image's provenance through ``params``):
  ``fp8_storage`` keeps transformer and ControlNet weights in float8 and casts each layer to bf16
  when it runs (halves their memory, rounds every weight); ``vae_tiling`` decodes in overlapping
  tiles, whose blended seams change pixels. Block-skipping step caches (FirstBlockCache,
  TaylorSeer, ...) are not offered: a ControlNet pipeline adds its residuals after each transformer
  block, and a cache that skips blocks would drop or mis-add them.

``reproduce_notebook`` applies GenZoo's notebook settings instead, for an exact reproduction:
``torch.use_deterministic_algorithms(True)``, cuDNN deterministic and not benchmarking, the math
SDPA kernel only, TF32 off. It cannot be combined with any opt-in.

Process-wide torch flags are set only inside :func:`numerics` and restored when it exits, so two
generators with different settings can run side by side in one process (the bench does).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from genzoo_assets.core.errors import InputError

COMPILE_MODES = ("off", "regional", "full")


@dataclass(frozen=True)
class SpeedOptions:
    reproduce_notebook: bool = False
    compile: str = "off"
    fp8_storage: bool = False
    vae_tiling: bool = False

    def __post_init__(self):
        if self.compile not in COMPILE_MODES:
            raise InputError(
                f"speed option compile={self.compile!r}: expected one of {COMPILE_MODES}"
            )
        if self.reproduce_notebook and (self.compile != "off" or self.lossy):
            raise InputError(
                "speed option reproduce_notebook=True reproduces GenZoo's notebook exactly and "
                f"cannot be combined with compile={self.compile!r}, fp8_storage={self.fp8_storage}, "
                f"vae_tiling={self.vae_tiling}"
            )

    @classmethod
    def from_value(cls, value) -> SpeedOptions:
        """``None`` (defaults), a ``SpeedOptions``, or a dict of its fields (a run config)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise InputError(
                    f"unknown speed options {unknown}; known: {sorted(cls.__dataclass_fields__)}"
                )
            return cls(**value)
        raise InputError(
            f"speed options must be a dict or SpeedOptions, got {type(value).__name__}"
        )

    @property
    def lossy(self) -> bool:
        """True when images differ from the default settings' beyond float reordering."""
        return self.fp8_storage or self.vae_tiling

    @property
    def load_key(self) -> tuple:
        """The options that change the loaded modules themselves (part of the residency key)."""
        return (self.compile, self.fp8_storage)

    def as_params(self) -> dict:
        return asdict(self) | {"lossy": self.lossy}


def prepare_pipeline(pipe, options: SpeedOptions) -> None:
    """Apply the load-time options to a freshly loaded pipeline (in place)."""
    import torch

    nets = [pipe.transformer] + list(getattr(pipe.controlnet, "nets", [pipe.controlnet]))
    if options.fp8_storage:
        for net in nets:
            net.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=net.dtype)
    if options.compile == "regional":
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    elif options.compile == "full":
        pipe.transformer.compile(fullgraph=True)


@contextlib.contextmanager
def numerics(options: SpeedOptions, device: str, pipe=None, batch: int = 1) -> Iterator[None]:
    """Torch's process-wide numerics for one pipeline call, restored on exit.

    ``pipe`` (optional) gets its VAE decoding mode for a call of ``batch`` images.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cuda = str(device).startswith("cuda")
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    if pipe is not None:
        _set_vae_mode(
            pipe.vae,
            slicing=cuda and batch > 1 and not options.reproduce_notebook,
            tiling=options.vae_tiling,
        )
    with contextlib.ExitStack() as stack:
        if options.reproduce_notebook:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS determinism
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        elif cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            stack.enter_context(
                sdpa_kernel(
                    [
                        SDPBackend.FLASH_ATTENTION,
                        SDPBackend.CUDNN_ATTENTION,
                        SDPBackend.EFFICIENT_ATTENTION,
                    ]
                )
            )
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
            (
                torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark,
                torch.backends.cuda.matmul.allow_tf32,
                torch.backends.cudnn.allow_tf32,
            ) = saved[2:]


def _set_vae_mode(vae, *, slicing: bool, tiling: bool) -> None:
    if hasattr(vae, "enable_slicing"):
        (vae.enable_slicing if slicing else vae.disable_slicing)()
    if hasattr(vae, "enable_tiling"):
        (vae.enable_tiling if tiling else vae.disable_tiling)()
