"""SimFeatUp's cosine logits computed the cheap way, equal to upsampling the features in full.

Everything JBU_One does after the ViT is linear in the feature channels and its per-pixel
kernels depend only on the guidance image. So, per window and without changing the result
beyond float rounding (|delta p| ~ 1e-6):

- the final ``x + 0.1 * (W x + b)`` is applied to the 14x14 features before upsampling
  (``W`` commutes with the upsampler; the bias ``b`` is carried analytically);
- the C feature channels of an h x w window span at most h*w dimensions: with the QR
  decomposition F = Q R only R (h*w channels, 196 for ViT-B/16) is upsampled, and each
  pixel's dot products with the queries and its norm are recovered from it;
- each x2 step (bicubic x2, reflect padding by 5, 11x11 adaptive convolution) is one
  sparse matrix over the low-resolution pixels: the kernel is folded into the bicubic
  weights, leaving at most 9x9 low-resolution taps per output pixel instead of 11x11
  high-resolution ones, applied to all channels by one sparse-dense product;
- the range kernel's similarities are symmetric: half of them are computed, for a batch
  of windows at once.

``backend.models.simfeatup.SimFeatUp.forward`` stays the reference (and the training path);
tests compare the two.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import torch
import torch.nn.functional as F

from backend.models.simfeatup import JointBilateralUpsampler, SimFeatUp

_MIN_SIDE = 6  # reflect padding by 5 needs 6 pixels; smaller maps take the reference path


@lru_cache(maxsize=64)
def axis_weights(low: int, radius: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """For one axis of a x2 step: ``(weights (2*low, 2r+1, n), start (2*low,))``.

    Output position y's tap i reads the reflect-padded bicubic x2 upsampling at
    ``y + i - r``; its weights over the low-resolution positions ``start[y] + 0..n-1``
    are ``weights[y, i]`` (n = 9, or ``low`` when smaller). The bicubic weights are
    PyTorch's own, read off by upsampling the identity.
    """
    high = 2 * low
    identity = torch.eye(low, dtype=torch.float64).reshape(1, low, low, 1)
    bicubic = F.interpolate(identity, size=(high, 1), mode="bicubic", align_corners=False)[0, :, :, 0].T
    source = torch.arange(high)[:, None] + torch.arange(-radius, radius + 1)[None, :]
    source = torch.where(source < 0, -source, source)
    source = torch.where(source > high - 1, 2 * (high - 1) - source, source)
    rows = bicubic[source]  # (high, taps, low)
    used = rows.abs().sum(dim=1) > 0
    first = used.float().argmax(dim=1)
    last = low - 1 - used.flip(1).float().argmax(dim=1)
    span = int((last - first + 1).max())
    start = first.clamp(max=low - span)
    index = start[:, None] + torch.arange(span)[None, :]
    weights = torch.gather(rows, 2, index[:, None, :].expand(high, rows.shape[1], span))
    return weights.float().contiguous(), start


@lru_cache(maxsize=16)
def _sparse_structure(low_h: int, low_w: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """CSR rows and columns of one window's x2 step: output pixel -> its ny x nx low-res taps."""
    _, start_y = axis_weights(low_h)
    _, start_x = axis_weights(low_w)
    ny, nx = axis_weights(low_h)[0].shape[2], axis_weights(low_w)[0].shape[2]
    rows = start_y[:, None, None, None] + torch.arange(ny)[None, None, :, None]
    cols = start_x[None, :, None, None] + torch.arange(nx)[None, None, None, :]
    columns = (rows * low_w + cols).reshape(-1).to(torch.int32)
    crow = (torch.arange(4 * low_h * low_w + 1) * (ny * nx)).to(torch.int32)
    return crow, columns, ny, nx


def range_similarity(keys: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, D, H, W) keys -> (B, d*d, H, W): each pixel's dot products with its reflect-padded d x d window.

    On the padded grid the product of p and p + t is that of p + t and p, so half of the
    taps are computed, each once, and read at both pixels.
    """
    batch, _, height, width = keys.shape
    diameter = 2 * radius + 1
    padded = F.pad(keys, [radius] * 4, mode="reflect")
    padded_h, padded_w = padded.shape[-2:]
    out = keys.new_empty(batch, diameter * diameter, height, width)
    for dy in range(radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx <= 0:
                continue
            left = max(0, -dx)  # products[a, b] is that of padded (a, left + b) and (a + dy, left + b + dx)
            columns = padded_w - abs(dx)
            products = (padded[:, :, :padded_h - dy, left:left + columns]
                        * padded[:, :, dy:, left + dx:left + dx + columns]).sum(dim=1)
            # pixel p sits at p + r on the padded grid: tap +t reads products at p + r, tap -t at p + r - t
            out[:, (radius + dy) * diameter + radius + dx] = products[:, radius:radius + height,
                                                                      radius - left:radius - left + width]
            out[:, (radius - dy) * diameter + radius - dx] = products[:, radius - dy:radius - dy + height,
                                                                      radius - dx - left:radius - dx - left + width]
    out[:, radius * diameter + radius] = keys.square().sum(dim=1)
    return out


def step_kernels(up: JointBilateralUpsampler, guidance: torch.Tensor) -> torch.Tensor:
    """The JBU's per-pixel kernels for (B, 3, H, W) guidance, channels-last (B, H, W, d*d).

    The module's own layers and formula (dropout is off in eval mode); only the range
    similarity is computed differently.
    """
    similarity = range_similarity(up.range_proj(guidance), up.radius)
    temperature = up.range_temp.exp().clamp(1e-4, 1e4)
    kernel = torch.softmax(temperature * similarity, dim=1) * up.spatial_kernel(guidance.device)
    kernel = kernel / kernel.sum(dim=1, keepdim=True).clamp(min=1e-7)
    kernel = kernel + 0.1 * up.fixup_proj(torch.cat([kernel, guidance], dim=1))
    return kernel.permute(0, 2, 3, 1)


def upsample_step(up: JointBilateralUpsampler, low: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """One x2 JBU step on channels-last (B, h, w, K) features -> (B, 2h, 2w, K)."""
    batch, low_h, low_w, channels = low.shape
    height, width = 2 * low_h, 2 * low_w
    diameter = up.diameter
    kernel = step_kernels(up, guidance).reshape(batch, height, width, diameter, diameter)
    weights_y, _ = axis_weights(low_h, up.radius)
    weights_x, _ = axis_weights(low_w, up.radius)
    weights_y, weights_x = weights_y.to(low.device), weights_x.to(low.device)
    along_x = torch.einsum("bhwij,wjv->bhwiv", kernel, weights_x)
    combined = torch.einsum("hiu,bhwiv->bhwuv", weights_y, along_x).reshape(batch, -1)
    crow, columns, _, _ = _sparse_structure(low_h, low_w)
    crow, columns = crow.to(low.device), columns.to(low.device)
    unused = low.new_empty(height * width, channels)  # beta=0: addmm neither reads nor zero-fills it
    out = []
    for index in range(batch):
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is tested
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(crow, columns, combined[index], size=(height * width, low_h * low_w),
                                             check_invariants=False)
        out.append(torch.addmm(unused, matrix, low[index].reshape(low_h * low_w, channels), beta=0))
    return torch.stack(out).view(batch, height, width, channels)


def upsampled_cosine_logits(upsampler: SimFeatUp, patches: torch.Tensor, windows: torch.Tensor,
                            queries: torch.Tensor) -> torch.Tensor:
    """cos(SimFeatUp(patches, windows) at each pixel, query): (B, Q, H, W), float32.

    ``patches`` (B, C, h, w) are the window features, ``windows`` (B, 3, 16h, 16w) the
    normalised window images, ``queries`` (Q, C) unit text embeddings. Runs in float32
    whatever the autocast around it.

    On the CPU the windows are shared among ``torch.get_num_threads()`` worker threads,
    each running its window's operations on one core: no operation waits for all cores,
    so a machine busy with other work slows each window down instead of stalling them
    all (see bench/busy_machine.py), and a window's result does not depend on the
    number of threads.
    """
    parts = [(patches[i:i + 1], windows[i:i + 1]) for i in range(patches.shape[0])]
    threads = torch.get_num_threads()
    if patches.device.type != "cpu" or threads == 1 or len(parts) == 1:
        return torch.cat([_cosine_logits(upsampler, p, w, queries) for p, w in parts])
    pool = _worker_pool(threads)
    try:
        return torch.cat(list(pool.map(lambda part: _on_one_core(upsampler, *part, queries), parts)))
    finally:
        torch.set_num_threads(threads)  # the workers set it to 1 for the whole process


@lru_cache(maxsize=4)
def _worker_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="rsov-upsampler")


def _on_one_core(upsampler: SimFeatUp, patches: torch.Tensor, windows: torch.Tensor,
                 queries: torch.Tensor) -> torch.Tensor:
    torch.set_num_threads(1)  # also this thread's own MKL setting
    return _cosine_logits(upsampler, patches, windows, queries)


@torch.no_grad()  # grad mode and autocast are per thread: set where the work runs
@torch.autocast("cpu", enabled=False)
@torch.autocast("cuda", enabled=False)
def _cosine_logits(upsampler: SimFeatUp, patches: torch.Tensor, windows: torch.Tensor,
                   queries: torch.Tensor) -> torch.Tensor:
    patches, windows, queries = patches.float(), windows.float(), queries.float()
    batch, channels, low_h, low_w = patches.shape
    if min(low_h, low_w) * 2 < _MIN_SIDE:
        features = upsampler(patches, windows)
        features = features / features.norm(dim=1, keepdim=True)
        return torch.einsum("bchw,qc->bqhw", features, queries)
    weight, bias = upsampler.fixup_proj[1].weight[:, :, 0, 0], upsampler.fixup_proj[1].bias
    features = patches.flatten(2)
    features = features + 0.1 * torch.matmul(weight, features)  # the final fix-up, before upsampling
    bias = 0.1 * bias
    if channels > low_h * low_w:
        basis, coefficients = torch.linalg.qr(features)  # (B, C, n), (B, n, n)
        queries_in_basis = torch.matmul(queries, basis)  # (B, Q, n)
        bias_in_basis = torch.matmul(bias, basis)  # (B, n): b = basis @ bias_in_basis + the rest
    else:
        coefficients = features
        queries_in_basis = queries.expand(batch, *queries.shape)
        bias_in_basis = bias.expand(batch, channels)
    low = coefficients.transpose(1, 2).reshape(batch, low_h, low_w, -1)
    for _ in range(upsampler.steps):
        height, width = 2 * low.shape[1], 2 * low.shape[2]
        low = upsample_step(upsampler.up, low, F.adaptive_avg_pool2d(windows, (height, width)))
    pixels = low.view(batch, -1, low.shape[-1])  # (B, H*W, n): feature = basis @ pixel + bias
    # one product gives the dots with the queries and with basis^T bias; then
    # |basis a + b|^2 = |a|^2 + 2 a.(basis^T b) + |b|^2
    products = torch.matmul(pixels, torch.cat([queries_in_basis, bias_in_basis.unsqueeze(1)], 1).transpose(1, 2))
    dots = products[..., :-1] + queries @ bias  # (B, H*W, Q)
    squared = torch.linalg.vector_norm(pixels, dim=-1).square() + 2 * products[..., -1] + bias.square().sum()
    norms = squared.clamp(min=0).sqrt()
    logits = dots / norms.unsqueeze(-1)
    return logits.transpose(1, 2).reshape(batch, -1, low.shape[1], low.shape[2])
