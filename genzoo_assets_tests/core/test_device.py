import pytest
import torch

from genzoo_assets.core import lease
from genzoo_assets.core.device import DeviceError, resolve_device, resolve_dtype
from genzoo_assets.core.lease import Device


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without usable CUDA")
@pytest.mark.parametrize(
    "env, named",
    [
        ({"CUDA_VISIBLE_DEVICES": "0"}, "CUDA_VISIBLE_DEVICES=0"),
        ({"SLURM_JOB_GPUS": "3"}, "SLURM_JOB_GPUS=3"),
    ],
)
def test_auto_inside_a_gpu_allocation_without_cuda_fails_in_one_line(env, named):
    with pytest.raises(DeviceError) as err:
        resolve_device("auto", env=env)
    message = str(err.value)
    assert "\n" not in message and named in message and "CPU-only build" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without usable CUDA")
def test_no_allocation_or_fake_gpus_run_on_the_cpu():
    assert resolve_device("auto", env={}) == "cpu"
    assert resolve_device("auto", env={"CUDA_VISIBLE_DEVICES": ""}) == "cpu"  # devices hidden
    assert (
        resolve_device("auto", env={"GENZOO_FAKE_GPUS": "4", "CUDA_VISIBLE_DEVICES": "2"}) == "cpu"
    )
    assert resolve_device("cpu", env={"CUDA_VISIBLE_DEVICES": "0"}) == "cpu"  # asked for


def test_auto_is_the_leased_device(tmp_path):
    env = {"GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    with lease.hold(devices=[Device(3, "GPU-aa")], env=env):
        assert resolve_device("auto") == "cuda:3" and resolve_device("cuda:0") == "cuda:0"
    with lease.hold(devices=[Device(1, "1", fake=True)], env=env):
        assert resolve_device(None) == "cpu"  # a fake device: the step runs on the CPU
