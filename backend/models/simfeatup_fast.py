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
  high-resolution ones, applied to all channels by one sparse-dense product; away from
  the borders that folding and the kernel fix-up's last layer are one matrix per
  parity of the pixel's row and column (``tap_weights``);
- the range kernel's similarities are symmetric: half of them are computed.

Windows go through one at a time (the caller shares them among cores).

``backend.models.simfeatup.SimFeatUp.forward`` stays the reference (and the training path);
tests compare the two.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F

from backend.errors import UserInputError
from backend.models.simfeatup import JointBilateralUpsampler, SimFeatUp

_MIN_SIDE = 6  # the first x2 step's map: reflect padding by 5 needs 6 pixels


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
def _sparse_structure(low_h: int, low_w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """CSR rows and columns of one window's x2 step on ``device``: output pixel -> its ny x nx low-res taps."""
    _, start_y = axis_weights(low_h)
    _, start_x = axis_weights(low_w)
    ny, nx = axis_weights(low_h)[0].shape[2], axis_weights(low_w)[0].shape[2]
    rows = start_y[:, None, None, None] + torch.arange(ny)[None, None, :, None]
    cols = start_x[None, :, None, None] + torch.arange(nx)[None, None, None, :]
    columns = (rows * low_w + cols).reshape(-1).to(device, torch.int32)
    crow = (torch.arange(4 * low_h * low_w + 1) * (ny * nx)).to(device, torch.int32)
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


def soft_range_kernels(up: JointBilateralUpsampler, guidance: torch.Tensor) -> torch.Tensor:
    """The JBU's kernels before their fix-up: softmax range kernel x spatial kernel, renormalised, (B, d*d, H, W)."""
    similarity = range_similarity(up.range_proj(guidance), up.radius)
    temperature = up.range_temp.exp().clamp(1e-4, 1e4)
    kernel = torch.softmax(temperature * similarity, dim=1) * up.spatial_kernel(guidance.device)
    return kernel / kernel.sum(dim=1, keepdim=True).clamp(min=1e-7)


@lru_cache(maxsize=64)
def regular_positions(low: int, radius: int = 5) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Which output positions of an axis read the interior pattern: ``(mask (2*low,), (even, odd) weights)``.

    Away from the borders, output position y reads low-resolution positions y // 2 - 4 ...
    with one of two weight patterns, by the parity of y.
    """
    weights, start = axis_weights(low, radius)
    middle = low - low % 2  # an even output position in the middle
    offset = start[middle] - middle // 2
    patterns = (weights[middle], weights[middle + 1])
    mask = torch.tensor([bool(start[y] - y // 2 == offset) and torch.equal(weights[y], patterns[y % 2])
                         for y in range(2 * low)])
    return mask, patterns


def _pointwise(layer: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    return layer.weight[:, :, 0, 0], layer.bias


def _fixed_kernels(up: JointBilateralUpsampler, soft: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """kernel + 0.1 * fixup_proj([kernel, guidance]) for channels-last rows (N, d*d) and (N, 3)."""
    (w1, b1), (w2, b2) = _pointwise(up.fixup_proj[0]), _pointwise(up.fixup_proj[3])
    taps = soft.shape[-1]
    hidden = F.gelu(torch.addmm(b1, soft, w1[:, :taps].T) + guidance @ w1[:, taps:].T)
    return torch.addmm(soft, hidden, w2.T, alpha=0.1) + 0.1 * b2


def tap_weights(up: JointBilateralUpsampler, guidance: torch.Tensor) -> torch.Tensor:
    """Each output pixel's weights over its ny x nx low-resolution taps, (B, H, W, ny * nx).

    The weights of pixel (y, x) are By[y]^T K Bx[x]: its 11x11 kernel K seen through the
    reflect-padded bicubic weights of its row and column (``axis_weights``). Where both
    the row and the column follow the interior pattern of their parity, By and Bx are one
    of two matrices each, so the kernel fix-up's last 1x1 layer and this product are one
    matrix per parity pair, applied to [kernel, hidden layer] by two matrix products. The
    remaining border rows and columns are computed pixel by pixel.
    """
    batch, _, height, width = guidance.shape
    low_h, low_w = height // 2, width // 2
    d = up.diameter
    soft = soft_range_kernels(up, guidance)  # (B, taps, H, W)
    weights_y, _ = axis_weights(low_h, up.radius)
    weights_x, _ = axis_weights(low_w, up.radius)
    weights_y, weights_x = weights_y.to(guidance.device), weights_x.to(guidance.device)
    ny, nx = weights_y.shape[2], weights_x.shape[2]
    out = guidance.new_empty(batch, height, width, ny * nx)
    rows, (row_even, row_odd) = regular_positions(low_h, up.radius)
    cols, (col_even, col_odd) = regular_positions(low_w, up.radius)
    if rows.float().mean() < 0.5 or cols.float().mean() < 0.5:  # small maps: every pixel on its own
        rows, cols = torch.zeros_like(rows), torch.zeros_like(cols)
    else:
        (w1, b1), (w2, b2) = _pointwise(up.fixup_proj[0]), _pointwise(up.fixup_proj[3])
        taps = d * d
        # phase-major rows: (B, row parity, column parity, H/2, W/2, channels)
        by_phase = soft.view(batch, taps, low_h, 2, low_w, 2).permute(0, 3, 5, 2, 4, 1).contiguous()
        guide = guidance.view(batch, 3, low_h, 2, low_w, 2).permute(0, 3, 5, 2, 4, 1).contiguous()
        result = out.view(batch, low_h, 2, low_w, 2, ny * nx)
        for py, row_pattern in enumerate((row_even, row_odd)):
            for px, col_pattern in enumerate((col_even, col_odd)):
                # M[(u, v), (i, j)] = By[i, u] Bx[j, v]
                combine = torch.einsum("iu,jv->uvij", row_pattern, col_pattern).reshape(ny * nx, taps)
                combine = combine.to(guidance.device)
                soft_rows = by_phase[:, py, px].reshape(-1, taps)
                hidden = F.gelu(torch.addmm(b1, soft_rows, w1[:, :taps].T)
                                + guide[:, py, px].reshape(-1, 3) @ w1[:, taps:].T)
                phase = torch.addmm(0.1 * combine @ b2, soft_rows, combine.T)
                phase = torch.addmm(phase, hidden, (0.1 * combine @ w2).T)
                result[:, :, py, :, px] = phase.view(batch, low_h, low_w, ny * nx)
    for ys, xs in _border_blocks(rows, cols):
        soft_block = soft[:, :, ys, xs].permute(0, 2, 3, 1)
        guide_block = guidance[:, :, ys, xs].permute(0, 2, 3, 1)
        kernel = _fixed_kernels(up, soft_block.reshape(-1, d * d), guide_block.reshape(-1, 3))
        kernel = kernel.view(*soft_block.shape[:3], d, d)
        block = torch.einsum("yiu,byxij,xjv->byxuv", weights_y[ys], kernel, weights_x[xs])
        out[:, ys, xs] = block.reshape(*block.shape[:3], ny * nx)
    return out


def _border_blocks(rows: torch.Tensor, cols: torch.Tensor) -> list[tuple[slice, slice]]:
    """Rectangles covering every pixel whose row or column is not regular (rows/cols: regular masks)."""
    height, width = len(rows), len(cols)
    blocks = []
    regular_rows = rows.nonzero().flatten()
    regular_cols = cols.nonzero().flatten()
    if len(regular_rows) == 0 or len(regular_cols) == 0:
        return [(slice(0, height), slice(0, width))]
    top, bottom = int(regular_rows[0]), int(regular_rows[-1]) + 1
    left, right = int(regular_cols[0]), int(regular_cols[-1]) + 1
    assert bool(rows[top:bottom].all()) and bool(cols[left:right].all()), "irregular positions inside"
    for ys in (slice(0, top), slice(bottom, height)):
        if ys.stop > ys.start:
            blocks.append((ys, slice(0, width)))
    for xs in (slice(0, left), slice(right, width)):
        if xs.stop > xs.start:
            blocks.append((slice(top, bottom), xs))
    return blocks


def upsample_step(up: JointBilateralUpsampler, low: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """One x2 JBU step on channels-last (B, h, w, K) features -> (B, 2h, 2w, K)."""
    batch, low_h, low_w, channels = low.shape
    height, width = 2 * low_h, 2 * low_w
    combined = tap_weights(up, guidance).reshape(batch, -1)
    crow, columns, _, _ = _sparse_structure(low_h, low_w, low.device)  # kept on the device between windows
    unused = low.new_empty(height * width, channels)  # beta=0: addmm neither reads nor zero-fills it
    out = []
    for index in range(batch):
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is tested
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(crow, columns, combined[index], size=(height * width, low_h * low_w),
                                             check_invariants=False)
        out.append(torch.addmm(unused, matrix, low[index].reshape(low_h * low_w, channels), beta=0))
    return (out[0] if batch == 1 else torch.stack(out)).view(batch, height, width, channels)


@torch.no_grad()
@torch.autocast("cpu", enabled=False)
@torch.autocast("cuda", enabled=False)
def upsampled_cosine_logits(upsampler: SimFeatUp, patches: torch.Tensor, windows: torch.Tensor,
                            queries: torch.Tensor) -> torch.Tensor:
    """cos(SimFeatUp(patches, windows) at each pixel, query): (B, Q, H, W), float32.

    ``patches`` (B, C, h, w) are the window features, ``windows`` (B, 3, 16h, 16w) the
    normalised window images, ``queries`` (Q, C) unit text embeddings. Runs in float32
    whatever the autocast around it, one window at a time (memory: ~0.5 GB at 224).
    """
    return torch.cat([_cosine_logits(upsampler, patches[i:i + 1], windows[i:i + 1], queries)
                      for i in range(patches.shape[0])])


def _cosine_logits(upsampler: SimFeatUp, patches: torch.Tensor, windows: torch.Tensor,
                   queries: torch.Tensor) -> torch.Tensor:
    patches, windows, queries = patches.float(), windows.float(), queries.float()
    batch, channels, low_h, low_w = patches.shape
    if min(low_h, low_w) * 2 < _MIN_SIDE:  # SimFeatUp itself cannot run: its padding needs the pixels
        patch = windows.shape[-1] // low_w
        raise UserInputError(f"the area read is {windows.shape[-2]} x {windows.shape[-1]} pixels, too small for "
                             f"SimFeatUp (it needs {patch * _MIN_SIDE // 2} pixels a side); read a larger area or "
                             "turn the upsampler off with {no_upsampler}.", "no_upsampler")
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
