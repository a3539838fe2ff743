"""Slide windows over an image in memory, run the model on batches of them and average the logits."""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator, Sequence, TypeVar

import torch
import torch.nn.functional as F

from backend.errors import Cancelled, DeviceMemoryError
from backend.models.devices import OUT_OF_MEMORY, free_memory_text, release_memory
from backend.models.protocol import Prompts, Segmentor
from backend.raster.tiling import centred_padding, slide_windows

# The authors' normalisation on the 0-255 scale (mmseg's data preprocessor), float32.
PIXEL_MEAN = (122.771, 116.746, 104.094)
PIXEL_STD = (68.501, 66.632, 70.323)

Progress = Callable[[int, int], None]
Item = TypeVar("Item")
log = logging.getLogger("rsov")


class BatchSize:
    """Windows per model call; halved for the rest of the run each time the device runs out of memory."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.size = size
        self.device = device

    def halve(self, window: int) -> None:
        release_memory()
        if self.size == 1:
            raise DeviceMemoryError(f"one {window}-pixel window does not fit in the memory of {self.device}"
                                    f"{free_memory_text(self.device)}; use {{precision}} fp16, a smaller {{window}}, "
                                    "or {device} cpu.", "precision", "window", "device")
        self.size //= 2
        log.warning("%s ran out of memory: %d windows per batch from now on.", self.device, self.size)


def fitted_batches(items: Sequence[Item], batch_size: BatchSize, run: Callable[[Sequence[Item]], torch.Tensor],
                   window: int, should_stop: Callable[[], bool] | None = None
                   ) -> Iterator[tuple[Sequence[Item], torch.Tensor]]:
    """``(batch, run(batch))`` over ``items`` in order, in batches that fit in the device's memory.

    A batch that runs out of memory is retried at half the size; the windows and the order
    in which their logits are summed stay the same, so the result does too.
    """
    first = 0
    while first < len(items):
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        batch = items[first:first + batch_size.size]
        try:
            result = run(batch)
        except OUT_OF_MEMORY:
            result = None  # the failed attempt's tensors are released before the cache is emptied
        if result is None:
            batch_size.halve(window)
            continue
        yield batch, result
        first += len(batch)


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
    sizes = BatchSize(batch_size, torch.device(device))

    def run(batch):
        return window_logits(segmentor, torch.stack([image[(slice(None), *w.toslices())] for w in batch]).to(device),
                             prompts)

    for batch, logits in fitted_batches(windows, sizes, run, window, should_stop):  # all windows have one size
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
