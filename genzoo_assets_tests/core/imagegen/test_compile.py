"""The regional ``compile`` speed option, run for real: inductor on CPU, tiny FLUX, against eager.

``compile="regional"`` is what ``speed.prepare_pipeline`` does on load:
``transformer.compile_repeated_blocks(fullgraph=True)``, one compiled graph per block class (the
double-stream ``FluxTransformerBlock`` and the single-stream ``FluxSingleTransformerBlock``).
``fullgraph=True`` turns any graph break into an error, so a block that dynamo cannot trace fails
here instead of silently running eager. On CPU inductor emits C++ and needs a compiler (``g++``,
installed by ``make test-deps``). 42 s on 2 busy cores with an empty inductor cache, nearly all
of it compiling the two graphs; about 10 s with the cache warm.

Tolerances (float32): the transformer's output on the inputs of the pipeline's first denoising
step within 1e-4 absolute of eager (inductor fuses and reorders float ops, it does not change
the maths); the decoded images within one grey level.
"""

import shutil

import numpy as np
import pytest
import torch

from genzoo_assets.core.imagegen.flux import FluxControlNetGenerator
from genzoo_assets_tests.core.imagegen.test_flux import _request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("g++") is None, reason="inductor on CPU needs g++"),
]

TRANSFORMER_ATOL = 1e-4
IMAGE_MAX_DIFF = 1  # grey levels


def _gen(dirs, **speed):
    return FluxControlNetGenerator.from_pretrained(
        dirs.base,
        dirs.canny,
        dirs.depth,
        steps=2,
        resolution=None,
        max_sequence_length=64,
        device="cpu",
        dtype="float32",
        speed=speed,
    )


def test_regional_compile_matches_eager_on_a_tiny_flux(tiny_flux_dirs):
    from torch._dynamo.utils import counters

    eager = _gen(tiny_flux_dirs)
    first_call = {}

    def keep_first(module, args, kwargs):
        first_call.setdefault("kwargs", {k: v for k, v in kwargs.items()})

    hook = eager.pipeline.transformer.register_forward_pre_hook(keep_first, with_kwargs=True)
    try:
        eager_image = np.asarray(eager.generate([_request(1)])[0], dtype=int)
    finally:
        hook.remove()

    compiled = _gen(tiny_flux_dirs, compile="regional")
    assert compiled.params["speed"]["compile"] == "regional"
    assert compiled.pipeline is not eager.pipeline, "compile is part of the residency key"
    counters.clear()
    compiled_image = np.asarray(compiled.generate([_request(1)])[0], dtype=int)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == 2, f"one graph per block class (double, single), got {graphs}"
    assert np.abs(compiled_image - eager_image).max() <= IMAGE_MAX_DIFF

    with torch.inference_mode():
        want = eager.pipeline.transformer(**first_call["kwargs"])[0]
        got = compiled.pipeline.transformer(**first_call["kwargs"])[0]
    assert counters["stats"]["unique_graphs"] == graphs, "same shapes must not recompile"
    torch.testing.assert_close(got, want, atol=TRANSFORMER_ATOL, rtol=0)
