import pytest
import torch

from genzoo_assets.core.imagegen.speed import SpeedOptions, numerics


def test_defaults_are_lossless_and_notebook_excludes_every_opt_in():
    assert not SpeedOptions().lossy and SpeedOptions().compile == "off"
    assert SpeedOptions(fp8_storage=True).lossy and SpeedOptions(vae_tiling=True).lossy
    assert SpeedOptions.from_value({"compile": "regional"}).load_key == ("regional", False)
    assert SpeedOptions(fp8_storage=True).as_params()["lossy"] is True
    with pytest.raises(ValueError, match="compile='fast'"):
        SpeedOptions(compile="fast")
    with pytest.raises(ValueError, match="reproduce_notebook=True .* compile='regional'"):
        SpeedOptions(reproduce_notebook=True, compile="regional")
    with pytest.raises(ValueError, match="reproduce_notebook=True"):
        SpeedOptions(reproduce_notebook=True, fp8_storage=True)
    with pytest.raises(ValueError, match=r"unknown speed options \['fast'\]"):
        SpeedOptions.from_value({"fast": True})


class _Vae:
    def __init__(self):
        self.slicing = self.tiling = None

    def enable_slicing(self):
        self.slicing = True

    def disable_slicing(self):
        self.slicing = False

    def enable_tiling(self):
        self.tiling = True

    def disable_tiling(self):
        self.tiling = False


class _Pipe:
    def __init__(self):
        self.vae = _Vae()


def test_notebook_numerics_apply_inside_and_are_restored():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic)
    with numerics(SpeedOptions(reproduce_notebook=True), "cpu"):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cuda.matmul.allow_tf32
        q = torch.randn(1, 2, 8, 4)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)  # the math kernel is allowed
    assert (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
    ) == before


def test_cuda_default_never_uses_the_math_kernel_and_turns_tf32_on():
    from torch.nn.attention import SDPBackend, _cur_sdpa_kernel_backends

    pipe = _Pipe()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    with numerics(SpeedOptions(), "cuda", pipe, batch=4):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert SDPBackend.MATH not in _cur_sdpa_kernel_backends()
        assert pipe.vae.slicing is True and pipe.vae.tiling is False
    assert torch.backends.cuda.matmul.allow_tf32 == tf32
    with numerics(SpeedOptions(reproduce_notebook=True), "cuda", pipe, batch=4):
        assert _cur_sdpa_kernel_backends() == [SDPBackend.MATH]
        assert pipe.vae.slicing is False, "the notebook decoded the batch at once"
    with numerics(SpeedOptions(vae_tiling=True), "cpu", pipe, batch=1):
        assert pipe.vae.tiling is True and pipe.vae.slicing is False
