"""Slide-window inference over a raster of any size, streamed in raster order.

The 224/112 windows are the same as ``slide_windows`` over the whole working grid, and
each pixel's logits are summed over its windows in the same order as ``slide_logits``,
so the result equals the in-memory one. Logits accumulate in a buffer one window row high;
after each window row, the rows no later window touches are finalised and handed on. A
raster wider than ``strip_width`` is processed in column strips, each holding every window
that touches its own columns, so memory depends on the strip width and the window only.
A reader thread reads the next window row while the model runs on the current one.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Sequence

import numpy as np
import torch

from backend.inference.slide import BatchSize, Progress, fitted_batches, normalise_pixels, window_logits
from backend.models.protocol import Prompts, Segmentor
from backend.raster.source import BlockReader
from backend.raster.tiling import DEFAULT_STRIP_WIDTH, Strip, plan_strips, window_starts


@dataclass
class Block:
    """Finished logits of working-grid rows ``row:row+h``, columns ``col:col+w``."""

    row: int
    col: int
    logits: torch.Tensor  # (Q, h, w) float32, on the model's device
    valid: np.ndarray  # (h, w) bool: pixels to classify


class _Prefetcher:
    """Reads (pixels, valid) of each window row of each strip in a thread, two rows ahead."""

    def __init__(self, open_reader: Callable[[], ContextManager[BlockReader]], jobs: list[tuple[int, int, int, int]]):
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(open_reader, jobs), daemon=True)
        self._thread.start()

    def _run(self, open_reader, jobs) -> None:
        try:
            with open_reader() as read:
                for job in jobs:
                    if self._stop.is_set():
                        return
                    self._put(read(*job))
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
            self._put(error)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@torch.no_grad()
def stream_logits(
    open_reader: Callable[[], ContextManager[BlockReader]],
    height: int,
    width: int,
    segmentor: Segmentor,
    prompts: Prompts,
    window: int = 224,
    stride: int = 112,
    batch_size: int = 8,
    strip_width: int = DEFAULT_STRIP_WIDTH,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    strips: Sequence[Strip] | None = None,
) -> Iterator[Block]:
    """Finished blocks of averaged logits, strip by strip, top to bottom within a strip.

    Windows whose pixels are all invalid (nodata, outside the AOI) are not run. ``strips``
    (some of ``plan_strips``' strips, as a cluster worker runs them) limits the run to those.
    """
    device = segmentor.device
    queries = prompts.embeddings.shape[0]
    win_h, win_w = min(window, height), min(window, width)
    rows = window_starts(height, window, stride)
    if strips is None:
        strips = plan_strips(width, window, stride, strip_width)
    total_count = len(rows) * sum(len(strip.starts) for strip in strips)
    jobs = [(y0, strip.x0, win_h, strip.x1 - strip.x0) for strip in strips for y0 in rows]
    prefetcher = _Prefetcher(open_reader, jobs)
    sizes = BatchSize(batch_size, torch.device(device))
    done = 0
    try:
        for strip in strips:
            sums = torch.zeros(queries, win_h, strip.x1 - strip.x0, device=device)
            counts = torch.zeros(1, win_h, strip.x1 - strip.x0, device=device)
            core = slice(strip.core0 - strip.x0, strip.core1 - strip.x0)
            for index, y0 in enumerate(rows):
                pixels, valid = prefetcher.get()
                starts = [x - strip.x0 for x in strip.starts if valid[:, x - strip.x0:x - strip.x0 + win_w].any()]

                def run(batch):
                    crops = torch.from_numpy(np.stack([pixels[:, :, x:x + win_w] for x in batch])).to(device)
                    return window_logits(segmentor, normalise_pixels(crops), prompts)

                for batch, logits in fitted_batches(starts, sizes, run, window, should_stop):
                    for x, logits_of_window in zip(batch, logits):
                        sums[:, :, x:x + win_w] += logits_of_window
                        counts[:, :, x:x + win_w] += 1
                done += len(strip.starts)
                if progress is not None:
                    progress(done, total_count)
                finished = rows[index + 1] - y0 if index + 1 < len(rows) else win_h
                if finished:
                    yield Block(y0, strip.core0, (sums[:, :finished, core] / counts[:, :finished, core]),
                                valid[:finished, core])
                    sums = torch.cat([sums[:, finished:], sums.new_zeros(sums.shape[0], finished, sums.shape[2])], 1)
                    counts = torch.cat([counts[:, finished:], counts.new_zeros(1, finished, counts.shape[2])], 1)
    finally:
        prefetcher.close()


def assemble(blocks: Iterator[Block], queries: int, height: int, width: int) -> torch.Tensor:
    """All blocks in one (Q, H, W) tensor (tests and small rasters)."""
    out = torch.full((queries, height, width), float("nan"))
    for block in blocks:
        h, w = block.valid.shape
        out[:, block.row:block.row + h, block.col:block.col + w] = block.logits.cpu()
    return out

