"""What SimFeatUp trains beside the upsampler, the CLIP features it learns on, and the files it writes.

- ``clip_features``: the frozen CLIP tower's tokens at the input of its last block, through
  ``ln_post`` and ``proj`` (the paper's Eq. 6), as a (B, E, h, w) map.
- ``AttentionDownsampler``: FeatUp's learned downsampler σ↓, one attention-weighted average
  of each patch-sized block of the (blurred) upsampled map.
- ``ScaleNet``: FeatUp's predicted uncertainty of the reconstruction, from the target features.
- ``ContentRetentionNetwork``: the CRN of Eq. 4, upsampled features -> the image.
- ``export_upsampler``: the Lightning layout of the released ``xclip_jbu_one_*.ckpt``
  (``{'state_dict': {'upsampler.up.*', 'upsampler.fixup_proj.1.*'}}``), which
  ``backend.models.simfeatup.load_simfeatup`` reads; ``export_training_parts`` the rest.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from backend.models.segearth import embed_tokens
from backend.models.simfeatup import SimFeatUp
from training.common.checkpoint import atomic_save

UPSAMPLER_FILE = "simfeatup_jbu_one.ckpt"
TRAINING_PARTS_FILE = "simfeatup_training_parts.pt"
UPSAMPLER_PREFIX = "upsampler."  # the released checkpoint's key prefix (the LightningModule's attribute)


def clip_features(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Patch tokens entering the last block of an open_clip ViT, then ``ln_post`` and ``proj``: (B, E, h, w).

    ``images`` are normalised (B, 3, H, W); the positional embedding is resized when the
    patch grid is not the tower's own.
    """
    x, grid_h, grid_w = embed_tokens(visual, images)
    batch = images.shape[0]
    for block in list(visual.transformer.resblocks)[:-1]:
        x = block(x)
    x = x if getattr(visual.transformer, "batch_first", True) else x.transpose(0, 1)
    out = visual.ln_post(x[:, 1:]) @ visual.proj
    return out.transpose(1, 2).reshape(batch, -1, grid_h, grid_w)


def gaussian_blur(x: torch.Tensor, size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """Each channel blurred by a normalised size x size Gaussian (separable), reflect-padded at the edges."""
    offsets = torch.arange(size, dtype=x.dtype, device=x.device) - size // 2
    taps = torch.exp(-offsets.square() / (2 * sigma ** 2))
    taps = taps / taps.sum()
    channels, half = x.shape[1], size // 2
    x = F.conv2d(F.pad(x, [half, half, 0, 0], mode="reflect"), taps.view(1, 1, 1, size).expand(channels, 1, 1, size),
                 groups=channels)
    return F.conv2d(F.pad(x, [0, 0, half, half], mode="reflect"), taps.view(1, 1, size, 1).expand(channels, 1, size, 1),
                    groups=channels)


class AttentionDownsampler(nn.Module):
    """σ↓: each k x k block of the blurred map -> one vector, a softmax-weighted average of its pixels.

    The weights are softmax over the block of w * (a(pixel) * keep) + b: a is a linear score
    of the pixel's features (after dropout 0.2), keep drops 20 % of the blocks' scores while
    training, w and b are learned per position in the block. Blocks are ``kernel_size``
    (the CLIP patch size) apart, so an (H, W) map comes back to the (H/k, W/k) patch grid.
    """

    def __init__(self, dim: int, kernel_size: int, blur: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.blur = blur
        self.attention_net = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(dim, 1))
        self.w = nn.Parameter(torch.ones(kernel_size, kernel_size) + 0.01 * torch.randn(kernel_size, kernel_size))
        self.b = nn.Parameter(torch.zeros(kernel_size, kernel_size) + 0.01 * torch.randn(kernel_size, kernel_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H/k, W/k); H and W are multiples of k."""
        batch, channels, height, width = features.shape
        k = self.kernel_size
        if height % k or width % k:
            raise ValueError(f"a {height}x{width} map does not split into {k}x{k} blocks")
        x = gaussian_blur(features) if self.blur else features
        blocks = x.reshape(batch, channels, height // k, k, width // k, k).permute(0, 2, 4, 3, 5, 1)
        blocks = blocks.reshape(batch, height // k, width // k, k * k, channels)
        scores = self.attention_net(blocks).squeeze(-1)
        if self.training:
            scores = scores * (torch.rand(*scores.shape[:3], 1, device=scores.device) > 0.2)
        attention = torch.softmax(scores * self.w.flatten() + self.b.flatten(), dim=-1)
        return torch.einsum("bhwpc,bhwp->bchw", blocks, attention)


class ScaleNet(nn.Module):
    """Predicted uncertainty s > 0 per low-resolution position: exp(conv1x1(features) + 0.1), at least 1e-4."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Conv2d(dim, 1, 1)
        with torch.no_grad():  # start near s = exp(0.1) everywhere
            self.net.weight.mul_(0.1)
            self.net.bias.mul_(0.1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.net(features) + 0.1).clamp_min(1e-4)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        variance = (x - mean).square().mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ContentRetentionNetwork(nn.Sequential):
    """CRN: 1x1 conv, channel LayerNorm, GELU, 1x1 conv to 3 channels, Tanh (outputs in [-1, 1])."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv2d(dim, dim, 1), LayerNorm2d(dim), nn.GELU(), nn.Conv2d(dim, 3, 1), nn.Tanh())


class SimFeatUpTraining(nn.Module):
    """Everything that trains: the upsampler (exported), the downsampler, the uncertainty net and the CRN.

    ``step`` counts optimiser steps (written into the exported checkpoint as Lightning's
    ``global_step``).
    """

    def __init__(self, dim: int, patch_size: int, predicted_uncertainty: bool = True) -> None:
        super().__init__()
        self.upsampler = SimFeatUp(feat_dim=dim)
        self.downsampler = AttentionDownsampler(dim, patch_size)
        self.scale_net = ScaleNet(dim) if predicted_uncertainty else None
        self.crn = ContentRetentionNetwork(dim)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))


def _plain(module: nn.Module | None) -> dict[str, torch.Tensor] | None:
    if module is None:
        return None
    return {key: value.detach().float().cpu().clone() for key, value in module.state_dict().items()}


def export_upsampler(module: SimFeatUpTraining, path: Path, epoch: int) -> Path:
    """``{"epoch", "global_step", "state_dict": {"upsampler.*"}}``: what ``load_simfeatup`` reads."""
    state = {UPSAMPLER_PREFIX + key: value for key, value in _plain(module.upsampler).items()}
    return atomic_save({"epoch": epoch, "global_step": int(module.step), "state_dict": state}, path)


def export_training_parts(module: SimFeatUpTraining, path: Path, epoch: int) -> Path:
    """The downsampler, uncertainty net and CRN (training only; inference never uses them)."""
    return atomic_save({"epoch": epoch, "global_step": int(module.step), "downsampler": _plain(module.downsampler),
                        "scale_net": _plain(module.scale_net), "crn": _plain(module.crn)}, path)
