"""Read exported shards back as training examples: decode, crop, normalise, augment.

Each example is a dict of tensors: ``img`` (3, H, W) ImageNet-normalised crop, ``keypoints_2d``
(26, 3) x, y in crop coordinates (see ``crop.py``: ``(p - centre)/crop_height``, y in
[-0.5, 0.5]) and visibility, ``poses`` (35, 3, 3) symmetric-orthogonalised as GenZoo does,
``betas``, ``cam_crop`` (3,) the ground-truth camera as a weak camera in crop coordinates for
the body posed without translation (exact for v1, first-order at the root depth for v2; the shards
store GenZoo's conventions, ``export.CAMERA_CONVENTIONS``, read back here to the true camera),
``keypoints_3d``, ``box`` (cx, cy, crop_height in image pixels) and the strings ``sample_id`` and
``species``.

Every reader resolves the export's ``current`` pointer once (``export.resolve_export``), so it reads
one whole export even while a new one is being swapped in; a streaming split holds an
``ExportLease`` so that export is not deleted under it.

Augmentation (training only): scale and translation jitter of the crop window, colour jitter
(brightness, contrast, saturation), grey crops and, optionally, GenZoo's in-plane rotation (off by
default: on the demo's 574 images and 800 steps it raised held-out PA-MPJPE from 89.6 to 90.5;
see ``docs/experiments/tiny-regressor.md``). A turned crop turns the 2D keypoints, the 3D
keypoints, the camera's offset and
the global orientation with it, about the optical axis; the body model turns about its root joint,
so its posed keypoints then match the turned 3D keypoints up to a translation (which every aligned
metric removes, and which the 2D loss leaves to the predicted camera).

Horizontal flip (``flip``, off by default; GenZoo has none) mirrors the crop and its labels:
keypoints swap with their left/right partners and negate x, the pose mirrors joint by joint and
the betas stay (``core.body.mirror``). That is right only for a mirror-symmetric body model, so
the regressor asset measures the model's asymmetry before it turns flips on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import webdataset as wds

from genzoo_assets.core.body.mirror import KEYPOINT_PARTNERS, mirror_points, mirror_pose
from genzoo_assets.core.body.rotations import symmetric_orthogonalization
from genzoo_assets.core.dataset.reader import decode_shards, shard_urls
from genzoo_assets.core.dataset.webdataset import ExportLease, read_manifest
from genzoo_assets.core.regressor.crop import (
    BBOX_PADDING,
    INPUT_HW,
    crop_box,
    crop_image,
    normalize_image,
    perspective_camera_to_crop,
    rotate_crop_points,
    to_crop_coords,
    weak_camera_to_crop,
)
from genzoo_assets.core.sampling.camera_model import fov_from_genzoo_deg
from genzoo_assets.core.seeds import derive_seed


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the training-time jitter (0 disables one)."""

    scale: float = 0.15  # crop height × U(1 - scale, 1 + scale)
    translate: float = 0.05  # centre shift × crop height, U(-t, t) per axis
    colour: float = 0.2  # brightness/contrast/saturation factors U(1 - c, 1 + c)
    grayscale: float = 0.0  # probability of dropping colour, so shape cues outweigh coat colour
    rotation: float = 0.0  # in-plane turn of the crop: N(0, rotation) degrees clipped to ±2σ ...
    rotation_rate: float = (
        0.0  # ... applied with this probability; the global orientation turns with it
    )
    flip: float = 0.0  # probability of a horizontal flip (mirrored labels); only for a mirror-symmetric body model
    reflection: tuple[float, ...] = (
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        -1.0,
    )  # body.mirror.sagittal_reflection, row-major


def load_split(
    out_dir,
    split: str,
    input_hw: tuple[int, int] = INPUT_HW,
    augment: Augmentation | None = None,
    shuffle: int = 0,
    seed: int = 0,
    padding: float = BBOX_PADDING,
) -> wds.WebDataset:
    """A ``torch`` IterableDataset over one split's examples (see the module docstring).

    In DataLoader workers each worker reads its own shards (webdataset's ``split_by_worker``), so
    an epoch sees every sample once. Augmentation and the ``shuffle`` buffer are drawn from
    (``seed``, sample, epoch), which ``set_epoch`` sets before each epoch (the trainer does): the
    draws do not depend on the number of workers, and epochs differ.
    """
    lease = ExportLease(read_manifest(out_dir)["export_dir"])  # taken before the files are listed
    urls = shard_urls(lease.export_dir, split)
    dataset = wds.WebDataset(
        urls, shardshuffle=False, empty_check=False, nodesplitter=wds.split_by_node
    )
    state = {"epoch": 0}
    if shuffle:
        dataset = dataset.compose(
            lambda src: buffer_shuffle(src, shuffle, derive_seed(seed, "shuffle", state["epoch"]))
        )

    def process(sample):
        rng = (
            np.random.default_rng(derive_seed(seed, sample["__key__"], state["epoch"]))
            if augment
            else None
        )
        return make_example(sample["jpg"], dict(sample["npz"]), input_hw, augment, rng, padding)

    dataset = decode_shards(dataset).map(process)
    dataset.export_lease = lease
    dataset.set_epoch = lambda epoch: state.update(epoch=int(epoch))
    return dataset


def buffer_shuffle(src, size: int, seed: int):
    """Yield ``src`` in a random order drawn through a buffer of ``size`` items (a stream's shuffle).

    Seeded per epoch and worker, so a rerun repeats it."""
    info = torch.utils.data.get_worker_info()
    rng = np.random.default_rng([seed, info.id if info is not None else 0])
    buffer = []
    for item in src:
        buffer.append(item)
        if len(buffer) >= size:
            i = int(rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


class CachedSplit(torch.utils.data.Dataset):
    """A split decoded once into memory; crops and augmentation are still drawn per access.

    For small splits (the demo's, a validation set) this removes JPEG and npz decoding from every
    epoch, which dominates a tiny model's step on CPU. Each access draws its augmentation from
    (seed, sample, epoch, access count in the epoch): ``set_epoch`` (called by the trainer before
    each epoch) restarts the counts, so the draws are the same whether DataLoader workers (each
    with its own copy of the counts) or the training process make the crops, and epochs differ.
    """

    def __init__(
        self,
        out_dir,
        split: str,
        input_hw=INPUT_HW,
        augment: Augmentation | None = None,
        seed: int = 0,
        padding: float = BBOX_PADDING,
    ):
        lease = ExportLease(read_manifest(out_dir)["export_dir"])
        try:
            raw = decode_shards(
                wds.WebDataset(
                    shard_urls(lease.export_dir, split), shardshuffle=False, empty_check=False
                )
            )
            self.items = [(sample["jpg"], dict(sample["npz"]), sample["__key__"]) for sample in raw]
        finally:
            lease.close()
        self.input_hw, self.augment, self.seed, self.padding = (
            tuple(input_hw),
            augment,
            seed,
            padding,
        )
        self.epoch = 0
        self.accesses = [0] * len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.accesses = [0] * len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        image, npz, key = self.items[i]
        self.accesses[i] += 1
        rng = (
            np.random.default_rng(derive_seed(self.seed, key, self.epoch, self.accesses[i]))
            if self.augment
            else None
        )
        return make_example(image, npz, self.input_hw, self.augment, rng, self.padding)


def make_example(
    image: np.ndarray,
    npz,
    input_hw=INPUT_HW,
    augment: Augmentation | None = None,
    rng: np.random.Generator | None = None,
    padding: float = BBOX_PADDING,
    normalise: bool = True,
) -> dict:
    """One training example from a decoded RGB image (H, W, 3 uint8) and its npz dict.

    With ``normalise=False``, ``img`` is the uint8 crop (H, W, 3), a quarter of the float32
    tensor's bytes, for examples kept in memory (``validation.ValidationSplit``); ``normalize_image``
    turns it into the model's input.
    """
    sid = str(npz["sample_id"])
    if image.ndim != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"sample {sid}: expected a square RGB image, got shape {image.shape}")
    width = image.shape[1]
    k = width / float(
        npz["image_size"]
    )  # the export records the image's width; a resized copy still maps
    kp = np.asarray(npz["keypoints_2d"], dtype=np.float64).copy()
    kp[:, :2] *= k
    box = crop_box(np.asarray(npz["bbox"], dtype=np.float64) * k, input_hw, padding)
    angle, flipped = 0.0, False
    if augment is not None:
        rng = rng or np.random.default_rng()
        box = box * np.array([1.0, 1.0, rng.uniform(1 - augment.scale, 1 + augment.scale)])
        box[:2] += rng.uniform(-augment.translate, augment.translate, 2) * box[2]
        if augment.rotation > 0 and rng.random() < augment.rotation_rate:
            angle = float(np.clip(rng.normal(), -2.0, 2.0) * augment.rotation)
        flipped = augment.flip > 0 and rng.random() < augment.flip
    crop = crop_image(image, box, input_hw, angle)
    if flipped:
        crop = np.ascontiguousarray(crop[:, ::-1])
    if augment is not None and augment.colour > 0:
        crop = colour_jitter(crop, rng, augment.colour)
    if augment is not None and augment.grayscale > 0 and rng.random() < augment.grayscale:
        crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    poses = symmetric_orthogonalization(
        torch.as_tensor(np.asarray(npz["poses"], dtype=np.float32)).reshape(35, 9)
    )
    if angle:
        poses[0] = torch.from_numpy(_turn_z(angle).T.astype(np.float32)) @ poses[0]
    if "scales" in npz:
        cam = weak_camera_to_crop(
            float(npz["scales"]), float(npz["txs"]), float(npz["tys"]), np.zeros(3), width, box
        )
    else:
        cam = perspective_camera_to_crop(
            npz["transls"], fov_from_genzoo_deg(float(npz["fovs"])), width, box
        )
    kp_crop = np.concatenate(
        [rotate_crop_points(to_crop_coords(kp[:, :2], box), angle), kp[:, 2:3]], 1
    )
    cam[1:] = rotate_crop_points(cam[1:], angle)
    kp3d = np.asarray(npz["keypoints_3d"], dtype=np.float64) @ _turn_z(angle)
    if flipped:
        reflection = np.asarray(augment.reflection, dtype=np.float64).reshape(3, 3)
        poses = mirror_pose(poses, reflection)
        kp_crop, kp3d = (
            mirror_points(kp_crop, KEYPOINT_PARTNERS),
            mirror_points(kp3d, KEYPOINT_PARTNERS),
        )
        cam[1] = -cam[1]
    return {
        "img": torch.from_numpy(normalize_image(crop) if normalise else crop),
        "keypoints_2d": torch.from_numpy(kp_crop.astype(np.float32)),
        "poses": poses,
        "betas": torch.as_tensor(np.asarray(npz["betas"], dtype=np.float32)),
        "cam_crop": torch.from_numpy(cam.astype(np.float32)),
        "keypoints_3d": torch.from_numpy(kp3d.astype(np.float32)),
        "box": torch.from_numpy(box.astype(np.float32)),
        "sample_id": sid,
        "species": str(npz["species"]),
    }


def _turn_z(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about the camera's optical axis by ``angle_deg`` (x towards y)."""
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation scaled by U(1 - strength, 1 + strength)."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    x = rgb.astype(np.float32) * b
    x = (x - x.mean()) * c + x.mean()
    grey = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)[
        ..., None
    ]
    x = (x - grey) * s + grey
    return np.clip(x, 0, 255).astype(np.uint8)


def materialize(dataset, limit: int | None = None) -> list[dict]:
    """Read an iterable split into memory (small splits: validation, tests)."""
    out = []
    for i, example in enumerate(dataset):
        if limit is not None and i >= limit:
            break
        out.append(example)
    return out
