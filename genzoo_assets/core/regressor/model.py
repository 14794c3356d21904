"""GenZoo's regressor (an HMR2 fork): ViTPose backbone + transformer-decoder head.

The head is HMR2's: one query token cross-attends to the backbone's feature tokens through a few
decoder layers; linear read-outs add a raw 9D rotation per joint to the identity, betas to zero
and a weak camera ``(s, tx, ty)`` to ``(init_cam_scale, 0, 0)``. The raw 9D is kept for GenZoo's
9D loss; ``rotmat`` is its symmetric orthogonalisation, what the body model is posed with.

The read-outs start from the identity (rest pose), zero betas and a fixed camera, as GenZoo's fork
does (``smpl_head.py``: ``init_body_pose = eye``, one pass, a zero input token; 4DHumans' HMR2
started from SMPL's mean parameters, which GenZoo commented out). We keep that: the untrained
model then *is* the rest-pose baseline, and a head that started from the training set's mean
pose would start from a worse answer, not a better one — on held-out Felidae the chordal mean of
the training poses (sitting, lying and standing averaged) scores a higher PA-MPJPE than the rest
pose (see ``docs/experiments/tiny-regressor.md``).

The tiny CPU model adds one thing to the head (``query_from_features``): its query token is the
learned token plus a linear map of the whole flattened feature map. Cross-attention is blind to
the order of its tokens, and the ResNet backbone's 4×3 feature cells carry no position embedding
(ViTPose's patches do), so the head saw them as an unordered set, where a leg's place in the crop
is the posture; and a query that is zero at the start attends to every cell equally until it has
learned to do otherwise. On the demo's data the validation body-pose loss sat at the mean pose's
level (about 3.6) for 300 to over 1,000 steps before it fell; with the flattened map it falls from
the first validation on (2.9 at step 250 against 3.6). ``docs/experiments/tiny-regressor.md`` has the side-by-side runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from genzoo_assets.core.body.rotations import symmetric_orthogonalization
from genzoo_assets.core.body.skeleton import NUM_JOINTS
from genzoo_assets.core.errors import InputError, MissingInputError

BACKBONES = ("vitpose", "resnet")


@dataclass
class RegressorConfig:
    backbone: str = "vitpose"
    image_size: tuple[int, int] = (256, 192)  # H, W
    # ViTPose (defaults: ViT-H, GenZoo's)
    patch_size: int = 16
    hidden_size: int = 1280
    num_layers: int = 32
    num_heads: int = 16
    # ResNet
    resnet_hidden_sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    resnet_depths: tuple[int, ...] = (3, 4, 6, 3)
    resnet_layer_type: str = "bottleneck"
    # local directory of pretrained backbone weights (transformers format), loaded offline
    pretrained_backbone: str | None = None
    # head (HMR2: dim 1024, depth 6, 8 heads, mlp 1024)
    num_joints: int = NUM_JOINTS
    num_betas: int = 145
    decoder_dim: int = 1024
    decoder_depth: int = 6
    decoder_heads: int = 8
    decoder_mlp: int = 1024
    init_cam_scale: float = 0.5
    # the decoder's query token: HMR2's learned token (zeros at the start), plus, when set, a linear
    # map of the whole flattened feature map (the tiny CPU model: see ``GenZooRegressor``)
    query_from_features: bool = False

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise InputError(
                f"RegressorConfig.backbone must be one of {BACKBONES}, got {self.backbone!r}"
            )
        self.image_size = tuple(int(v) for v in self.image_size)
        self.resnet_hidden_sizes = tuple(self.resnet_hidden_sizes)
        self.resnet_depths = tuple(self.resnet_depths)
        if self.backbone == "vitpose" and any(s % self.patch_size for s in self.image_size):
            raise InputError(
                f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}"
            )

    @classmethod
    def tiny(
        cls, num_betas: int, image_size=(64, 48), backbone: str = "vitpose"
    ) -> RegressorConfig:
        """A CPU-sized model for tests and the demo (same code path as ViT-H).

        The ResNet has three stages (32, 64, 128 channels; a 4×3 feature map at 64×48). On the
        demo's first data (574 training images of 9 species, held-out Felidae) the two-stage
        (16, 32) one scored held-out PA-MPJPE 92.9 after 800 steps (86.6 after the demo's 2,000)
        where this one scored 84.0 (85.8); its pose alone, with zero betas, 80.9 (77.4) against
        86.6 — for 1.15× the step time. A fourth stage (256) was no better: 86.3 after 800 steps.
        """
        return cls(
            backbone=backbone,
            image_size=image_size,
            patch_size=8,
            hidden_size=64,
            num_layers=2,
            num_heads=2,
            resnet_hidden_sizes=(32, 64, 128),
            resnet_depths=(1, 1, 1),
            resnet_layer_type="basic",
            num_betas=num_betas,
            decoder_dim=64,
            decoder_depth=2,
            decoder_heads=2,
            decoder_mlp=128,
            query_from_features=True,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RegressorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"RegressorConfig has no fields {unknown}")
        return cls(**data)


class RegressorOutput(NamedTuple):
    raw9d: torch.Tensor  # (B, J, 9)
    rotmat: torch.Tensor  # (B, J, 3, 3)
    betas: torch.Tensor  # (B, num_betas)
    cam: torch.Tensor  # (B, 3): s, tx, ty in crop coordinates


def _vitpose(config: RegressorConfig) -> tuple[nn.Module, int]:
    from transformers import VitPoseBackbone, VitPoseBackboneConfig

    if config.pretrained_backbone:
        model = _pretrained(config.pretrained_backbone, VitPoseBackbone)
        return model, model.config.hidden_size
    cfg = VitPoseBackboneConfig(
        image_size=list(config.image_size),
        patch_size=[config.patch_size] * 2,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        out_indices=[-1],
        layer_norm_eps=1e-6,
    )
    return VitPoseBackbone(cfg), config.hidden_size


def _resnet(config: RegressorConfig) -> tuple[nn.Module, int]:
    """The ResNet in channels-last memory (``features`` feeds it so): oneDNN's convolutions run
    faster so on CPU, and the numbers are the same."""
    from transformers import ResNetConfig, ResNetModel

    if config.pretrained_backbone:
        model = _pretrained(config.pretrained_backbone, ResNetModel)
    else:
        model = ResNetModel(
            ResNetConfig(
                embedding_size=config.resnet_hidden_sizes[0]
                // (4 if config.resnet_layer_type == "bottleneck" else 1),
                hidden_sizes=list(config.resnet_hidden_sizes),
                depths=list(config.resnet_depths),
                layer_type=config.resnet_layer_type,
            )
        )
    return model.to(memory_format=torch.channels_last), model.config.hidden_sizes[-1]


def _pretrained(path: str, cls):
    """Load backbone weights from a local directory, offline.

    A full ``VitPoseForPoseEstimation`` checkpoint (model_type ``vitpose``) is accepted too: its
    ``backbone`` is what we keep.
    """
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise MissingInputError(
            f"pretrained backbone {directory} has no config.json (expected a transformers folder)"
        )
    model_type = json.loads((directory / "config.json").read_text()).get("model_type")
    if model_type == "vitpose":
        from transformers import VitPoseForPoseEstimation

        return VitPoseForPoseEstimation.from_pretrained(directory, local_files_only=True).backbone
    return cls.from_pretrained(directory, local_files_only=True)


class GenZooRegressor(nn.Module):
    def __init__(self, config: RegressorConfig):
        super().__init__()
        self.config = config
        self.backbone, feat_dim = (_vitpose if config.backbone == "vitpose" else _resnet)(config)
        d = config.decoder_dim
        self.context_proj = nn.Linear(feat_dim, d)
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerDecoderLayer(
            d,
            config.decoder_heads,
            config.decoder_mlp,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, config.decoder_depth, norm=nn.LayerNorm(d))
        j = config.num_joints
        self.dec_pose = nn.Linear(d, j * 9)
        self.dec_betas = nn.Linear(d, config.num_betas)
        self.dec_cam = nn.Linear(d, 3)
        for head in (self.dec_pose, self.dec_betas, self.dec_cam):
            nn.init.xavier_uniform_(
                head.weight, gain=0.01
            )  # start at the mean, as HMR2's INIT_DECODER_XAVIER
            nn.init.zeros_(head.bias)
        self.query_proj = (
            nn.Linear(self._num_tokens() * d, d) if config.query_from_features else None
        )
        self.register_buffer("init_pose", torch.eye(3).reshape(1, 9).repeat(j, 1).reshape(1, j * 9))
        self.register_buffer("init_cam", torch.tensor([[config.init_cam_scale, 0.0, 0.0]]))

    def _num_tokens(self) -> int:
        """How many feature tokens the backbone makes at ``image_size``: one probe in eval mode, so
        that BatchNorm's running statistics (what the untrained baseline is evaluated with) do not
        take in the probe image."""
        training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            tokens = self.features(torch.zeros(1, 3, *self.config.image_size)).shape[1]
        self.backbone.train(training)
        return tokens

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone feature tokens (B, N, C)."""
        if self.config.backbone == "vitpose":
            return self.backbone(images).feature_maps[-1]
        hidden = self.backbone(
            images.contiguous(memory_format=torch.channels_last)
        ).last_hidden_state
        return hidden.flatten(2).transpose(1, 2)

    def forward(self, images: torch.Tensor) -> RegressorOutput:
        h, w = self.config.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, h, w):
            raise ValueError(f"images must be (B, 3, {h}, {w}), got {tuple(images.shape)}")
        b, j = images.shape[0], self.config.num_joints
        context = self.context_proj(self.features(images))
        query = self.query.expand(b, -1, -1)
        if self.query_proj is not None:
            query = query + self.query_proj(context.flatten(1))[:, None]
        token = self.decoder(query, context)[:, 0]
        raw9d = (self.dec_pose(token) + self.init_pose).reshape(b, j, 9)
        rotmat = symmetric_orthogonalization(raw9d.float())
        return RegressorOutput(
            raw9d, rotmat, self.dec_betas(token), self.dec_cam(token) + self.init_cam
        )


def build_regressor(config: RegressorConfig) -> GenZooRegressor:
    return GenZooRegressor(config)


__all__ = ["BACKBONES", "GenZooRegressor", "RegressorConfig", "RegressorOutput", "build_regressor"]
