"""FeatUp's multi-view jitter: a random flip, zoom and translation applied alike to images and feature maps.

A ``Jitter`` is drawn once per view for a whole batch. Applying it reflect-pads by
``max_pad``, zooms bilinearly by ``zoom`` (only when above 1), crops back to the input
size at (top, left) and flips horizontally. The zoom is computed only for the cropped
rows and columns (what ``F.interpolate(scale_factor=zoom)`` then a crop would give),
so a zoomed 512-channel feature map never exists at twice its size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Jitter:
    """Flip left-right, zoom factor (1: none), and the crop's top-left corner in the padded, zoomed map."""

    flip: bool
    zoom: float
    top: int
    left: int


def sample_jitter(height: int, width: int, max_pad: int, max_zoom: float, flips: bool = True) -> Jitter:
    """A random view, as FeatUp draws it (torch's global generator).

    Flip with probability 1/2; zoom with probability 1/2, then uniform in [1, max_zoom);
    the corner uniform over every crop inside the padded, zoomed map.
    """
    flip = flips and torch.rand(()).item() > 0.5
    zoom = 1.0
    if torch.rand(()).item() > 0.5:
        zoom = 1.0 + torch.rand(()).item() * (max_zoom - 1.0)
    rows = int((height + 2 * max_pad) * zoom) - height + 1
    cols = int((width + 2 * max_pad) * zoom) - width + 1
    top, left = int(torch.randint(0, rows, ())), int(torch.randint(0, cols, ()))
    return Jitter(bool(flip), zoom, top, left)


def _linear_taps(start: int, length: int, size: int, zoom: float, device: torch.device):
    """Source indices and weights of output positions start..start+length of a bilinear zoom (align_corners=False).

    The arithmetic of ``F.interpolate(scale_factor=zoom, mode="bilinear")``: source position
    (dst + 0.5) / zoom - 0.5 in float32, clamped at 0; neighbours floor and floor + 1 (last
    index repeated at the edge).
    """
    scale = torch.tensor(1.0 / zoom, dtype=torch.float32)
    position = (scale * (torch.arange(start, start + length, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
    low = position.floor().long().clamp(max=size - 1)
    weight = (position - low).clamp(0, 1)
    high = (low + 1).clamp(max=size - 1)
    return low.to(device), high.to(device), weight.to(device)


def _zoomed_crop(padded: torch.Tensor, zoom: float, top: int, left: int, height: int, width: int) -> torch.Tensor:
    low, high, weight = _linear_taps(top, height, padded.shape[-2], zoom, padded.device)
    weight = weight.to(padded.dtype)[:, None]
    rows = padded.index_select(-2, low) * (1 - weight) + padded.index_select(-2, high) * weight
    low, high, weight = _linear_taps(left, width, padded.shape[-1], zoom, padded.device)
    weight = weight.to(padded.dtype)
    return rows.index_select(-1, low) * (1 - weight) + rows.index_select(-1, high) * weight


def apply_jitter(x: torch.Tensor, jitter: Jitter, max_pad: int) -> torch.Tensor:
    """The view ``jitter`` of (B, C, H, W) images or features, (B, C, H, W) again; differentiable."""
    height, width = x.shape[-2:]
    padded = F.pad(x, [max_pad] * 4, mode="reflect")
    zoomed_size = (int(padded.shape[-2] * jitter.zoom), int(padded.shape[-1] * jitter.zoom))
    if jitter.zoom > 1.0 and zoomed_size != padded.shape[-2:]:  # interpolate copies a map it would not resize
        out = _zoomed_crop(padded, jitter.zoom, jitter.top, jitter.left, height, width)
    else:
        out = padded[:, :, jitter.top:jitter.top + height, jitter.left:jitter.left + width]
    return out.flip(-1) if jitter.flip else out
