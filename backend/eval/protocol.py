"""The authors' image-level protocol, for reproducing a table (not the geo-streaming path of ``rsov segment``).

As the authors' mmseg test pipeline and segmentor do it, for one image:
1. resize keeping the ratio so the long side is ``resize_long_side`` (mmcv ``Resize(scale=(s, s),
   keep_ratio=True)``: factor s / long side, sides rounded half up; bilinear, back to 8 bits);
2. CLIP-normalise and slide the windows (or run the whole resized image in one pass);
3. resize the averaged logits bilinearly to the label's size (``ori_shape``);
4. softmax at the logit scale, max over synonyms, argmax, pixels below ``prob_thd`` -> ``bg_idx``.
On whole tiles (6,000 pixels a side) steps 3-4 run in blocks of rows.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from backend.eval.datasets.base import Protocol
from backend.inference.slide import normalise_pixels, slide_logits
from backend.models.protocol import Prompts, Segmentor

ROW_BLOCK = 256
EXACT_ELEMENTS = 64 * 2**20  # up to this many label-sized logits (256 MiB), PyTorch's own resize in one call


def resized_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """mmcv's keep-ratio size for ``scale=(long_side, long_side)``: factor long_side / max(h, w), rounded half up."""
    factor = min(long_side / max(height, width), long_side / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize_image(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) float 0-255, bilinear (half-pixel centres, no antialiasing) and rounded to
    8 bits, as OpenCV's INTER_LINEAR resize of a uint8 image."""
    pixels = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    if tuple(pixels.shape[1:]) == tuple(size):
        return pixels
    resized = F.interpolate(pixels[None], size=size, mode="bilinear", align_corners=False)[0]
    return resized.round().clamp(0, 255)


def predict_image(segmentor: Segmentor, prompts: Prompts, rgb: np.ndarray, protocol: Protocol,
                  batch_size: int = 8, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The class map (H, W) uint8 of one (H, W, 3) uint8 RGB image, at the image's own size."""
    height, width = rgb.shape[:2]
    size = resized_size(height, width, protocol.resize_long_side)
    image = normalise_pixels(resize_image(rgb, size))
    window = protocol.window or max(size)  # None: the whole image is one window
    stride = protocol.stride if protocol.window else window
    logits = slide_logits(segmentor, image, prompts, window, stride, batch_size, should_stop=should_stop)
    return classify_at_size(segmentor, prompts, logits, height, width)


def classify_at_size(segmentor: Segmentor, prompts: Prompts, logits: torch.Tensor, height: int,
                     width: int) -> np.ndarray:
    """Logits (Q, h, w) resized bilinearly (align_corners False) to (height, width) and classified.

    Larger than ``EXACT_ELEMENTS`` (whole tiles), the height is resized by blocks of rows:
    the same formula, with index rounding that differs from PyTorch's by about 1e-5.
    """
    if logits.shape[0] * height * width <= EXACT_ELEMENTS:
        full = F.interpolate(logits[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        classes, _ = segmentor.classify(full, prompts)
        return classes.cpu().numpy().astype(np.uint8)
    columns = F.interpolate(logits[None], size=(logits.shape[1], width), mode="bilinear",
                            align_corners=False)[0] if logits.shape[2] != width else logits
    out = np.empty((height, width), dtype=np.uint8)
    source_rows = logits.shape[1]
    scale = source_rows / height
    for first in range(0, height, ROW_BLOCK):
        rows = torch.arange(first, min(first + ROW_BLOCK, height), dtype=torch.float32)
        if source_rows == height:
            block = columns[:, first:first + len(rows)]
        else:
            block = _rows_bilinear(columns, rows, scale, source_rows)
        classes, _ = segmentor.classify(block, prompts)
        out[first:first + len(rows)] = classes.cpu().numpy().astype(np.uint8)
    return out


def _rows_bilinear(columns: torch.Tensor, rows: torch.Tensor, scale: float, source_rows: int) -> torch.Tensor:
    """The output ``rows`` of PyTorch's bilinear resize along the height (align_corners False)."""
    source = ((rows + 0.5) * torch.tensor(scale, dtype=torch.float32) - 0.5).clamp(min=0)  # float32, as PyTorch
    low = source.floor().long().clamp(max=source_rows - 1)
    high = (low + 1).clamp(max=source_rows - 1)
    weight = (source - low.float()).to(columns.device).view(1, -1, 1)
    return columns[:, low] * (1 - weight) + columns[:, high] * weight

