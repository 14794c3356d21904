"""CUDA out-of-memory inside a batch loop: halved within the step, down to one item."""

import pickle

import pytest
import torch

from genzoo_assets.core import lease
from genzoo_assets.core.errors import is_input_error
from genzoo_assets.core.oom import HalvingBatches, OutOfMemory, device_name, is_cuda_oom


class _Model:
    """Fails with a CUDA OOM while a batch holds more than ``fits`` items."""

    loads = 0

    def __init__(self, fits: int):
        type(self).loads += 1
        self.fits = fits
        self.calls: list[int] = []

    def run(self, batch):
        self.calls.append(len(batch))
        if len(batch) > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]


def test_an_oom_halves_the_batch_and_keeps_the_smaller_size():
    model = _Model(fits=2)
    halved = []
    batches = HalvingBatches(8, on_halve=lambda old, new: halved.append((old, new)))
    assert batches.map(model.run, list(range(7))) == [x * 10 for x in range(7)]
    assert model.calls == [7, 4, 2, 2, 2, 1]  # the 7 items again in halves; 2 kept after
    assert halved == [(8, 4), (4, 2)]


def test_an_oom_with_one_item_is_a_clear_error_and_other_errors_pass_through():
    with pytest.raises(OutOfMemory, match="batch of 1") as caught:
        HalvingBatches(4, step="images species=zebra shard=000").map(_Model(fits=0).run, [1, 2, 3])
    message = str(caught.value)
    assert "\n" not in message and is_input_error(caught.value)
    again = pickle.loads(pickle.dumps(caught.value))  # a demo worker's error reaches its parent
    assert str(again) == message and (again.step, again.batch_size) == (caught.value.step, 4)
    for part in (
        "images species=zebra shard=000",
        f"on {device_name()}",
        "batch_size 4",
        "2.00 GiB",
    ):
        assert part in message, (part, message)
    with pytest.raises(ValueError, match="bad input"):
        HalvingBatches(4).map(lambda b: (_ for _ in ()).throw(ValueError("bad input")), [1])
    assert is_cuda_oom(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not is_cuda_oom(RuntimeError("CUDA error: device-side assert"))


def test_the_device_named_is_the_leased_one(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_FAKE_GPUS", "2")
    monkeypatch.setenv("GENZOO_GPU_LOCK_DIR", str(tmp_path))
    with lease.hold() as held:
        assert device_name() == f"cpu (fake GPU {held.device.key} (GENZOO_FAKE_GPUS))"
    if not torch.cuda.is_available():
        assert device_name() == "the GPU"  # no lease and no CUDA: nothing better to name
