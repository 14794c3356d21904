"""predict_fn adapters: turn a trained (or untrained) regressor into a benchmark predictor."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from genzoo_assets.core.evaluate.benchmark_set import BenchmarkSet
from genzoo_assets.core.evaluate.gallery import load_rgb


def regressor_predict_fn(
    model, input_hw: tuple[int, int] | None = None
) -> Callable[[BenchmarkSet], object]:
    """A predict_fn running ``model`` (``core.regressor``) on the benchmark's crop windows.

    Each image is cropped with the batch's ``crop_box`` by the regressor's own ``crop_image`` and
    ImageNet-normalised, so the camera it predicts is in the benchmark's crop coordinates.
    """
    from genzoo_assets.core.regressor.crop import INPUT_HW, crop_image, normalize_image
    from genzoo_assets.core.regressor.predict import predict

    hw = tuple(input_hw or INPUT_HW)

    def predict_fn(batch: BenchmarkSet):
        crops = [
            normalize_image(crop_image(load_rgb(im, sid), box, hw))
            for im, sid, box in zip(batch.images, batch.sample_ids, batch.crop_box)
        ]
        return predict(model, torch.from_numpy(np.stack(crops)))

    return predict_fn
