import pytest
import torch

from genzoo_assets.core.device import resolve_device, resolve_dtype


def test_auto_picks_the_best_available_device_and_a_name_is_kept():
    best = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device(None) == resolve_device("") == resolve_device("auto") == best
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cpu") == "cpu"


def test_dtype_from_name_or_device_and_a_bad_name_is_refused():
    assert (
        resolve_dtype(None, "cuda:0") is torch.bfloat16
        and resolve_dtype(None, "cpu") is torch.float32
    )
    assert (
        resolve_dtype("float16", "cpu") is torch.float16
        and resolve_dtype(torch.float64, "cpu") is torch.float64
    )
    with pytest.raises(ValueError, match="unknown torch dtype 'fp7'"):
        resolve_dtype("fp7", "cpu")
