"""Slide windows over an image in memory, run the model on batches of them and average the logits."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F

from backend.errors import Cancelled
from backend.models.protocol import Prompts, Segmentor
from backend.raster.tiling import centred_padding, slide_windows

# The authors' normalisation on the 0-255 scale (mmseg's data preprocessor), float32.
PIXEL_MEAN = (122.771, 116.746, 104.094)
PIXEL_STD = (68.501, 66.632, 70.323)

Progress = Callable[[int, int], None]


def normalise_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(.., 3, H, W) uint8 or 0-255 floats -> CLIP-normalised float32."""
    mean = torch.tensor(PIXEL_MEAN, device=pixels.device).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=pixels.device).view(3, 1, 1)
    return (pixels.float() - mean) / std


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def slide_logits(
    segmentor: Segmentor,
    image: torch.Tensor,
    prompts: Prompts,
    window: int = 224,
    stride: int = 112,
    batch_size: int = 8,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Average per-query logits (Q, H, W) over the slide windows of a normalised (3, H, W) image.

    The whole image in memory: the reference that the streaming path (``streaming.py``)
    reproduces exactly, block by block.
    """
    device = segmentor.device
    _, height, width = image.shape
    windows = slide_windows(height, width, window, stride)
    queries = prompts.embeddings.shape[0]
    total = torch.zeros(queries, height, width, dtype=torch.float32, device=device)
    count = torch.zeros(1, height, width, dtype=torch.float32, device=device)
    done = 0
    for start in range(0, len(windows), batch_size):  # all windows have one size
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        batch = windows[start:start + batch_size]
        crops = torch.stack([image[(slice(None), *w.toslices())] for w in batch]).to(device)
        logits = window_logits(segmentor, crops, prompts)
        for item, logits_of_window in zip(batch, logits):
            rows, cols = item.toslices()
            total[:, rows, cols] += logits_of_window
            count[:, rows, cols] += 1
        done += len(batch)
        if progress is not None:
            progress(done, len(windows))
    return total / count


def window_logits(segmentor: Segmentor, crops: torch.Tensor, prompts: Prompts) -> torch.Tensor:
    """float32 logits (B, Q, h, w) of a batch of normalised windows (B, 3, h, w) of one size.

    Windows whose sides are not multiples of the model's patch size (the image is smaller
    than a window) are zero-padded, centred, and cropped back after the model, as the
    authors do.
    """
    _, _, win_h, win_w = crops.shape
    left, right, top, bottom = centred_padding(win_h, win_w, segmentor.patch_size)
    if left or right or top or bottom:
        crops = F.pad(crops, (left, right, top, bottom))
    with _autocast(crops.device, segmentor.autocast_dtype):
        logits = segmentor.logits(crops, prompts)
    return logits[:, :, top:top + win_h, left:left + win_w].float()
