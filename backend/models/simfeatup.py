"""SimFeatUp's JBU_One upsampler in plain PyTorch, loading the authors' Lightning checkpoint.

One joint bilateral upsampling module (11x11 window) is applied four times with shared
weights (x2 each, 14 -> 224 for a 224 window), guided by the window image average-pooled to
each step's size, then ``x + 0.1 * conv1x1(x)``. The per-pixel filtering ("adaptive conv")
runs as a loop over the 121 taps on blocks of channels: memory stays at the size of the
output, and blocks of any size give bit-identical results.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from backend.errors import CheckpointFormatError
from backend.models.checkpoints import read_checkpoint, tensor_state_dict

CHECKPOINT_PREFIX = "upsampler."


def adaptive_conv(padded: torch.Tensor, kernel: torch.Tensor, channel_chunk: int | None = 32) -> torch.Tensor:
    """out[b,c,y,x] = sum_ij kernel[b,i*d+j,y,x] * padded[b,c,y+i,x+j] for a d x d window.

    ``padded`` is (B, C, H+d-1, W+d-1), ``kernel`` is (B, d*d, H, W). Channels are processed
    ``channel_chunk`` at a time (all at once for None); each channel's arithmetic is the same
    whatever the chunk, so the result does not depend on it.
    """
    batch, taps, height, width = kernel.shape
    diameter = round(taps ** 0.5)
    channels = padded.shape[1]
    chunk = channels if channel_chunk is None else max(1, channel_chunk)
    kernel = kernel.to(padded.dtype)
    out = padded.new_empty(batch, channels, height, width)
    for start in range(0, channels, chunk):
        block = padded[:, start:start + chunk]
        accumulator = out[:, start:start + chunk]
        accumulator.zero_()
        for tap in range(taps):
            i, j = divmod(tap, diameter)
            accumulator.addcmul_(block[:, :, i:i + height, j:j + width], kernel[:, tap:tap + 1])
    return out


class JointBilateralUpsampler(nn.Module):
    """FeatUp's JBU with a learned range kernel (parameter names as in the checkpoints)."""

    def __init__(self, guidance_dim: int = 3, key_dim: int = 32, radius: int = 5, channel_chunk: int | None = 32):
        super().__init__()
        self.radius = radius
        self.diameter = 2 * radius + 1
        self.channel_chunk = channel_chunk
        taps = self.diameter ** 2
        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))
        self.range_proj = nn.Sequential(
            nn.Conv2d(guidance_dim, key_dim, 1), nn.GELU(), nn.Dropout2d(0.1), nn.Conv2d(key_dim, key_dim, 1))
        self.fixup_proj = nn.Sequential(
            nn.Conv2d(guidance_dim + taps, taps, 1), nn.GELU(), nn.Dropout2d(0.1), nn.Conv2d(taps, taps, 1))

    def spatial_kernel(self, device: torch.device) -> torch.Tensor:
        """Gaussian over a linspace(-1, 1) grid, shape (1, taps, 1, 1)."""
        axis = torch.linspace(-1, 1, self.diameter, device=device)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")
        squared = rows.square() + cols.square()
        return torch.exp(-squared / (2 * self.sigma_spatial ** 2)).reshape(1, -1, 1, 1)

    def range_kernel(self, guidance: torch.Tensor) -> torch.Tensor:
        """Softmax over the window of temperature * <r(G_neighbour), r(G_centre)>, (B, taps, H, W)."""
        _, _, height, width = guidance.shape
        keys = self.range_proj(guidance)
        padded = F.pad(keys, [self.radius] * 4, mode="reflect")
        similarity = torch.stack([
            (padded[:, :, i:i + height, j:j + width] * keys).sum(dim=1)
            for i in range(self.diameter) for j in range(self.diameter)
        ], dim=1)
        temperature = self.range_temp.exp().clamp(1e-4, 1e4)
        return torch.softmax(temperature * similarity, dim=1)

    def forward(self, source: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        _, _, height, width = guidance.shape
        kernel = self.range_kernel(guidance) * self.spatial_kernel(source.device)
        kernel = kernel / kernel.sum(dim=1, keepdim=True).clamp(min=1e-7)
        kernel = kernel + 0.1 * self.fixup_proj(torch.cat([kernel, guidance], dim=1))
        upsampled = F.interpolate(source, (height, width), mode="bicubic", align_corners=False)
        padded = F.pad(upsampled, [self.radius] * 4, mode="reflect")
        return adaptive_conv(padded, kernel, self.channel_chunk)


class SimFeatUp(nn.Module):
    """JBU_One: one shared JBU applied four times (x16), then a 0.1-weighted 1x1 fix-up."""

    steps = 4

    def __init__(self, feat_dim: int = 512, channel_chunk: int | None = 32):
        super().__init__()
        self.up = JointBilateralUpsampler(radius=5, channel_chunk=channel_chunk)
        self.fixup_proj = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(feat_dim, feat_dim, 1))

    @property
    def scale(self) -> int:
        return 2 ** self.steps

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Upsample (B, C, h, w) features 16x, guided by the normalised (B, 3, H, W) image."""
        for _ in range(self.steps):
            height, width = features.shape[-2:]
            guidance = F.adaptive_avg_pool2d(image, (2 * height, 2 * width))
            features = self.up(features, guidance)
        return features + 0.1 * self.fixup_proj(features)


def load_simfeatup(path: str | Path, channel_chunk: int | None = 32) -> SimFeatUp:
    """Load the authors' ``xclip_jbu_one_*.ckpt`` (Lightning; keys ``upsampler.*``) in eval mode."""
    tensors = tensor_state_dict(read_checkpoint(path))
    tensors = {k[len(CHECKPOINT_PREFIX):] if k.startswith(CHECKPOINT_PREFIX) else k: v for k, v in tensors.items()}
    if "fixup_proj.1.weight" not in tensors or "up.range_temp" not in tensors:
        raise CheckpointFormatError(
            f"{path} is not a SimFeatUp JBU_One checkpoint (no upsampler.up.range_temp); "
            "give xclip_jbu_one_million_aid.ckpt or turn the upsampler off with {no_upsampler}.",
            "upsampler_weights", "no_upsampler"
        )
    model = SimFeatUp(feat_dim=tensors["fixup_proj.1.weight"].shape[0], channel_chunk=channel_chunk)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        detail = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise CheckpointFormatError(
            f"{path} does not fit SimFeatUp JBU_One ({detail}); give xclip_jbu_one_million_aid.ckpt."
        ) from None
    return model.eval()
