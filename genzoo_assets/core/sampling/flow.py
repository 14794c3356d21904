"""AWOL's conditional RealNVP: CLIP text embedding → body-model betas.

Same module layout as AWOL's ``get_generator`` (as used by GenZoo's ``awol.py``), so the released
state dict (``submission_animal_realnvp_mask_pred_net_6000.pth``) loads key for key: a
sequence (children "0", "1", ...) of ``num_blocks`` × (``CouplingLayer``, ``BatchNormFlow``). The base
distribution is N(0, σ²·I) over the betas (GenZoo samples with σ = 3); sampling runs the
sequence in reverse with ``mode="inverse"`` and batch-norm on its running statistics.

Masks: ``alternating`` (checkerboard, flipped every block, not part of the state dict),
``learned`` (AWOL/GenZoo: one trainable logit per beta, binarised by round(sigmoid)) or
``conditioned`` (mask logits predicted from the CLIP embedding).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from genzoo_assets.core.errors import InputError

EPS = 1e-6
MASK_KINDS = ("alternating", "learned", "conditioned")
# Prefixes under which the flow sits in known checkpoints (GenZoo's ObjectNet wraps it).
_KNOWN_PREFIXES = ("object_params_predictor.pred_layer.", "pred_layer.", "flow.", "module.")


class FlowCheckpointError(InputError):
    """A flow checkpoint is missing, unreadable or does not match the architecture."""


class BatchNormFlow(nn.Module):
    """Real NVP's invertible batch normalisation (log_gamma, beta, running stats)."""

    def __init__(self, num_inputs: int, momentum: float = 0.0, eps: float = 1e-5):
        super().__init__()
        self.log_gamma = nn.Parameter(torch.zeros(num_inputs))
        self.beta = nn.Parameter(torch.zeros(num_inputs))
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_inputs))
        self.register_buffer("running_var", torch.ones(num_inputs))

    def forward(self, inputs, cond_inputs=None, mode="direct"):
        if mode == "direct":
            if self.training:
                mean = inputs.mean(0)
                var = (inputs - mean).pow(2).mean(0) + self.eps
                self.running_mean.mul_(self.momentum).add_(mean.detach() * (1 - self.momentum))
                self.running_var.mul_(self.momentum).add_(var.detach() * (1 - self.momentum))
            else:
                mean, var = self.running_mean, self.running_var
            y = torch.exp(self.log_gamma) * (inputs - mean) / var.sqrt() + self.beta
            return y, (self.log_gamma - 0.5 * torch.log(var + EPS)).sum(-1, keepdim=True)
        mean, var = self.running_mean, self.running_var
        y = (inputs - self.beta) / torch.exp(self.log_gamma) * var.sqrt() + mean
        return y, (-self.log_gamma + 0.5 * torch.log(var + EPS)).sum(-1, keepdim=True)


class MaskGenerator(nn.Module):
    """AWOL's learned coupling mask: binary round(sigmoid(logits)), logits free or from the condition."""

    def __init__(self, num_inputs: int, num_cond: int = 0):
        super().__init__()
        self.mask_cond = num_cond > 0
        if self.mask_cond:
            self.pred_layer = nn.Linear(num_cond, num_inputs)
        else:
            self.mask = nn.Parameter(2 * torch.rand(num_inputs) - 1)

    def forward(self, x, cond=None):
        logits = self.pred_layer(cond) if self.mask_cond else self.mask
        return x * torch.round(torch.sigmoid(logits))


def _mlp(
    n_in: int, n_hidden: int, n_out: int, act: type[nn.Module], bottleneck: int | None
) -> nn.Sequential:
    if bottleneck is None:
        return nn.Sequential(
            nn.Linear(n_in, n_hidden),
            act(),
            nn.Linear(n_hidden, n_hidden),
            act(),
            nn.Linear(n_hidden, n_out),
        )
    return nn.Sequential(
        nn.Linear(n_in, n_hidden),
        act(),
        nn.Linear(n_hidden, bottleneck),
        act(),
        nn.Linear(bottleneck, n_hidden),
        act(),
        nn.Linear(n_hidden, n_out),
    )


class CouplingLayer(nn.Module):
    """Affine coupling conditioned on the CLIP embedding (scale net tanh, translate net relu).

    With a learned mask AWOL neither masks log_s/t nor removes the masked part of the input:
    ``y = x·b + x·exp(log_s) + t``; we reproduce that arithmetic exactly so released weights
    produce the published shapes.
    """

    def __init__(
        self,
        num_inputs: int,
        num_hidden: int,
        num_cond: int,
        mask_kind: str,
        mask: torch.Tensor | None = None,
        bottleneck: int | None = 512,
    ):
        super().__init__()
        self.learned = mask_kind != "alternating"
        if self.learned:
            self.mask = MaskGenerator(num_inputs, num_cond if mask_kind == "conditioned" else 0)
        else:
            self.register_buffer("mask", mask, persistent=False)
        self.scale_net = _mlp(num_inputs + num_cond, num_hidden, num_inputs, nn.Tanh, bottleneck)
        self.translate_net = _mlp(
            num_inputs + num_cond, num_hidden, num_inputs, nn.ReLU, bottleneck
        )

    def forward(self, inputs, cond_inputs=None, mode="direct"):
        masked = self.mask(inputs, cond_inputs) if self.learned else inputs * self.mask
        h = masked if cond_inputs is None else torch.cat([masked, cond_inputs], -1)
        log_s, t = self.scale_net(h), self.translate_net(h)
        if self.learned:
            if mode == "direct":
                return masked + inputs * torch.exp(log_s) + t, log_s.sum(-1, keepdim=True)
            return masked + (inputs - t) * torch.exp(-log_s), -log_s.sum(-1, keepdim=True)
        log_s, t = log_s * (1 - self.mask), t * (1 - self.mask)
        if mode == "direct":
            return inputs * torch.exp(log_s) + t, log_s.sum(-1, keepdim=True)
        return (inputs - t) * torch.exp(-log_s), -log_s.sum(-1, keepdim=True)


class ConditionalRealNVP(nn.Module):
    """The flow: ``direct`` maps betas → latent (training), ``inverse`` latent → betas (sampling)."""

    def __init__(
        self,
        num_inputs: int = 145,
        num_cond: int = 512,
        num_blocks: int = 5,
        num_hidden: int = 1024,
        mask_kind: str = "learned",
        bottleneck: int | None = 512,
    ):
        if mask_kind not in MASK_KINDS:
            raise InputError(f"flow mask_kind {mask_kind!r} is not one of {MASK_KINDS}")
        modules: list[nn.Module] = []
        mask = (torch.arange(num_inputs) % 2).float()
        for _ in range(num_blocks):
            modules += [
                CouplingLayer(
                    num_inputs, num_hidden, num_cond, mask_kind, mask.clone(), bottleneck
                ),
                BatchNormFlow(num_inputs),
            ]
            mask = 1 - mask
        super().__init__()
        for i, module in enumerate(modules):  # children "0".."9": AWOL's state-dict keys
            self.add_module(str(i), module)
        self.num_inputs, self.num_cond = num_inputs, num_cond
        self.config = dict(
            num_inputs=num_inputs,
            num_cond=num_cond,
            num_blocks=num_blocks,
            num_hidden=num_hidden,
            mask_kind=mask_kind,
            bottleneck=bottleneck,
        )

    def forward(self, inputs, cond_inputs=None, mode="direct"):
        logdet = torch.zeros(inputs.shape[0], 1, dtype=inputs.dtype, device=inputs.device)
        layers = list(self.children()) if mode == "direct" else list(self.children())[::-1]
        for layer in layers:
            inputs, ld = layer(inputs, cond_inputs, mode)
            logdet = logdet + ld
        return inputs, logdet

    @property
    def couplings(self) -> list[CouplingLayer]:
        return list(self.children())[::2]

    @property
    def batch_norms(self) -> list[BatchNormFlow]:
        return list(self.children())[1::2]

    def log_prob(self, inputs, cond_inputs):
        u, logdet = self(inputs, cond_inputs, "direct")
        return (-0.5 * u.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1, keepdim=True) + logdet

    @torch.no_grad()
    def sample(self, cond_inputs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Betas for each condition row, from base-distribution ``noise`` (already scaled by σ)."""
        return self(noise, cond_inputs, "inverse")[0]


def _strip_prefix(state: dict) -> dict:
    for prefix in _KNOWN_PREFIXES:
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def flow_config_from_state_dict(state: dict) -> dict:
    """Architecture read off a state dict's keys and shapes, so a checkpoint needs no side config."""
    if "0.scale_net.0.weight" not in state:
        raise FlowCheckpointError(
            "state dict has no '0.scale_net.0.weight': not an AWOL RealNVP flow"
        )
    blocks = (1 + max(int(k.split(".")[0]) for k in state if k.split(".")[0].isdigit())) // 2
    num_hidden, total = state["0.scale_net.0.weight"].shape
    compressed = "0.scale_net.6.weight" in state
    num_inputs = state[f"0.scale_net.{6 if compressed else 4}.weight"].shape[0]
    if "0.mask.pred_layer.weight" in state:
        mask_kind = "conditioned"
    elif "0.mask.mask" in state:
        mask_kind = "learned"
    else:
        mask_kind = "alternating"
    return dict(
        num_inputs=int(num_inputs),
        num_cond=int(total - num_inputs),
        num_blocks=int(blocks),
        num_hidden=int(num_hidden),
        mask_kind=mask_kind,
        bottleneck=int(state["0.scale_net.2.weight"].shape[0]) if compressed else None,
    )


def load_flow_checkpoint(
    path: str | os.PathLike,
    expected_num_betas: int | None = None,
    expected_num_cond: int | None = None,
) -> ConditionalRealNVP:
    """Load a flow from a torch state dict (bare, or GenZoo's ``ObjectNet`` wrapping), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FlowCheckpointError(f"flow checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise FlowCheckpointError(f"flow checkpoint {path} cannot be read: {exc}") from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise FlowCheckpointError(f"flow checkpoint {path} is not a torch state dict of tensors")
    state = _strip_prefix(raw)
    try:
        config = flow_config_from_state_dict(state)
    except (FlowCheckpointError, KeyError, IndexError) as exc:
        raise FlowCheckpointError(f"flow checkpoint {path}: {exc}") from exc
    for field, want in (("num_inputs", expected_num_betas), ("num_cond", expected_num_cond)):
        if want is not None and config[field] != want:
            raise FlowCheckpointError(
                f"flow checkpoint {path} has {field}={config[field]} but {want} is required "
                f"({'the body model betas' if field == 'num_inputs' else 'the CLIP embedding size'})"
            )
    flow = ConditionalRealNVP(**config)
    expected = flow.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise FlowCheckpointError(
            f"flow checkpoint {path} does not match AWOL's RealNVP: missing keys {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
        )
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise FlowCheckpointError(
                f"flow checkpoint {path}: {key} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(value.shape)}"
            )
    flow.load_state_dict({k: v.float() for k, v in state.items()})
    return flow.eval()
