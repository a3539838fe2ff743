"""SimFeatUp's forward for training: the backend module's arithmetic, differentiable and lean on memory.

``backend.models.simfeatup`` is written for inference. Training needs gradients through
the per-pixel filtering ("adaptive conv") of a 512-channel 224 x 224 map and through the
range kernel's 121 neighbour similarities, which autograd would record tap by tap, each
tap keeping a full-size gradient. ``adaptive_conv`` and ``local_correlation`` have
hand-written backwards instead (as FeatUp's CUDA extension has), looping over the taps:
memory stays at a few copies of the map.

``upsample(model, features, image)`` reads only the parameters of a ``SimFeatUp`` (the
names of the released checkpoint, ``up.*`` and ``fixup_proj.*``) and computes what
``model(features, image)`` computes, with gradients.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backend.models.simfeatup import JointBilateralUpsampler, SimFeatUp

STEPS = 4  # JBU_One runs four times: x16, a ViT-B/16 patch grid back to its pixels
FIXUP_WEIGHT = 0.1  # kernel = normalised kernel + 0.1 * fixup_proj(...); output = x + 0.1 * fixup_proj(x)


def _blocks(channels: int, chunk: int | None) -> list[slice]:
    size = channels if chunk is None else max(1, chunk)
    return [slice(start, start + size) for start in range(0, channels, size)]


def _taps(diameter: int, height: int, width: int):
    """(tap index, row slice, column slice) of each offset of a diameter x diameter window, row-major."""
    for tap in range(diameter * diameter):
        i, j = divmod(tap, diameter)
        yield tap, slice(i, i + height), slice(j, j + width)


# Three loops over the taps of a d x d window serve both operations below. With P a padded
# (B, C, H+d-1, W+d-1) map, X a (B, C, H, W) map and K a (B, d*d, H, W) per-pixel kernel:
#   _filter:    out[b,c,y,x]      = sum_t K[b,t,y,x] * P[b,c,y+i,x+j]
#   _correlate: out[b,t,y,x]      = sum_c P[b,c,y+i,x+j] * X[b,c,y,x]
#   _scatter:   out[b,c,y+i,x+j] += K[b,t,y,x] * X[b,c,y,x]
# Channels go ``chunk`` at a time; a channel's arithmetic is the same whatever the chunk.
# Under CUDA autocast both operations run in float32 (sums over 121 taps and many channels).

def _filter(padded: torch.Tensor, kernel: torch.Tensor, chunk: int | None) -> torch.Tensor:
    batch, taps, height, width = kernel.shape
    kernel = kernel.to(padded.dtype)
    out = padded.new_zeros(batch, padded.shape[1], height, width)
    for block in _blocks(padded.shape[1], chunk):
        source, accumulator = padded[:, block], out[:, block]
        for tap, rows, cols in _taps(math.isqrt(taps), height, width):
            accumulator.addcmul_(source[:, :, rows, cols], kernel[:, tap:tap + 1])
    return out


def _correlate(padded: torch.Tensor, x: torch.Tensor, taps: int, chunk: int | None) -> torch.Tensor:
    batch, channels, height, width = x.shape
    out = x.new_zeros(batch, taps, height, width)
    for block in _blocks(channels, chunk):
        source, other = padded[:, block].to(x.dtype), x[:, block]
        for tap, rows, cols in _taps(math.isqrt(taps), height, width):
            out[:, tap] += (source[:, :, rows, cols] * other).sum(dim=1)
    return out


def _scatter(kernel: torch.Tensor, x: torch.Tensor, padded_like: torch.Tensor, chunk: int | None) -> torch.Tensor:
    _, taps, height, width = kernel.shape
    kernel = kernel.to(x.dtype)
    out = torch.zeros_like(padded_like, dtype=x.dtype)
    for block in _blocks(x.shape[1], chunk):
        target, source = out[:, block], x[:, block]
        for tap, rows, cols in _taps(math.isqrt(taps), height, width):
            target[:, :, rows, cols].addcmul_(source, kernel[:, tap:tap + 1])
    return out


class _AdaptiveConv(torch.autograd.Function):
    """out = _filter(padded, kernel); FeatUp's per-pixel filtering."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, padded: torch.Tensor, kernel: torch.Tensor, chunk: int | None) -> torch.Tensor:
        ctx.save_for_backward(padded, kernel)
        ctx.chunk = chunk
        return _filter(padded, kernel, chunk)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: torch.Tensor):
        padded, kernel = ctx.saved_tensors
        grad_padded = _scatter(kernel, grad, padded, ctx.chunk).to(padded.dtype) if ctx.needs_input_grad[0] else None
        grad_kernel = (_correlate(padded, grad, kernel.shape[1], ctx.chunk).to(kernel.dtype)
                       if ctx.needs_input_grad[1] else None)
        return grad_padded, grad_kernel, None


class _LocalCorrelation(torch.autograd.Function):
    """out = _correlate(padded, x): each pixel's dot products with its d x d neighbours."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, padded: torch.Tensor, x: torch.Tensor, taps: int) -> torch.Tensor:
        ctx.save_for_backward(padded, x)
        return _correlate(padded, x, taps, None)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: torch.Tensor):
        padded, x = ctx.saved_tensors
        grad_padded = _scatter(grad, x, padded, None).to(padded.dtype) if ctx.needs_input_grad[0] else None
        grad_x = _filter(padded, grad, None).to(x.dtype) if ctx.needs_input_grad[1] else None
        return grad_padded, grad_x, None


def adaptive_conv(padded: torch.Tensor, kernel: torch.Tensor, channel_chunk: int | None = None) -> torch.Tensor:
    """FeatUp's adaptive conv with a lean backward: (B, C, H+d-1, W+d-1) x (B, d*d, H, W) -> (B, C, H, W).

    out[b,c,y,x] = sum over taps t = (i, j) of kernel[b,t,y,x] * padded[b,c,y+i,x+j]. Channels
    go ``channel_chunk`` at a time (all at once for None), in forward and backward.
    """
    return _AdaptiveConv.apply(padded, kernel, channel_chunk)


def local_correlation(padded: torch.Tensor, x: torch.Tensor, diameter: int) -> torch.Tensor:
    """(B, C, H+d-1, W+d-1) x (B, C, H, W) -> (B, d*d, H, W): out[b,t,y,x] = <padded[b,:,y+i,x+j], x[b,:,y,x]>."""
    return _LocalCorrelation.apply(padded, x, diameter * diameter)


def _diameter(up: JointBilateralUpsampler) -> int:
    return math.isqrt(up.fixup_proj[3].weight.shape[0])  # fixup_proj.3 maps to one weight per tap


def spatial_kernel(sigma: torch.Tensor, diameter: int, device: torch.device) -> torch.Tensor:
    """exp(-|p|^2 / (2 sigma^2)) over a linspace(-1, 1) diameter x diameter grid, as (1, d*d, 1, 1)."""
    axis = torch.linspace(-1, 1, diameter, device=device)
    squared = axis[:, None].square() + axis[None, :].square()
    return torch.exp(-squared / (2 * sigma ** 2)).reshape(1, -1, 1, 1)


def range_kernel(up: JointBilateralUpsampler, guidance: torch.Tensor, radius: int) -> torch.Tensor:
    """Softmax over the window of exp(range_temp) * <r(G_neighbour), r(G_centre)>, (B, d*d, H, W)."""
    keys = up.range_proj(guidance)
    similarity = local_correlation(F.pad(keys, [radius] * 4, mode="reflect"), keys, 2 * radius + 1)
    return torch.softmax(up.range_temp.exp().clamp(1e-4, 1e4) * similarity, dim=1)


def jbu_step(up: JointBilateralUpsampler, source: torch.Tensor, guidance: torch.Tensor,
             channel_chunk: int | None = None) -> torch.Tensor:
    """One joint bilateral upsampling of ``source`` (B, C, h, w) to the guidance's (B, 3, H, W) size."""
    diameter = _diameter(up)
    radius = diameter // 2
    height, width = guidance.shape[-2:]
    kernel = range_kernel(up, guidance, radius) * spatial_kernel(up.sigma_spatial, diameter, source.device)
    kernel = kernel / kernel.sum(dim=1, keepdim=True).clamp(min=1e-7)
    kernel = kernel + FIXUP_WEIGHT * up.fixup_proj(torch.cat([kernel, guidance], dim=1))
    upsampled = F.interpolate(source, (height, width), mode="bicubic", align_corners=False)
    return adaptive_conv(F.pad(upsampled, [radius] * 4, mode="reflect"), kernel, channel_chunk)


def upsample(model: SimFeatUp, features: torch.Tensor, image: torch.Tensor,
             channel_chunk: int | None = None) -> torch.Tensor:
    """``model(features, image)`` with gradients: (B, C, h, w) features -> (B, C, 16h, 16w).

    ``image`` is the normalised (B, 3, 16h, 16w) image; each step's guidance is it
    average-pooled to that step's size.
    """
    for _ in range(STEPS):
        height, width = features.shape[-2:]
        guidance = F.adaptive_avg_pool2d(image, (2 * height, 2 * width))
        features = jbu_step(model.up, features, guidance, channel_chunk)
    return features + FIXUP_WEIGHT * model.fixup_proj(features)
