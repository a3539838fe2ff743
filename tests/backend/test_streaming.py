"""Streaming slide inference equals the in-memory reference, with memory bounded by the width."""
import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.errors import Cancelled
from backend.inference.slide import normalise_pixels, slide_logits
from backend.inference.streaming import assemble, stream_logits
from backend.raster.tiling import plan_strips, slide_windows, total_windows
from tests.helpers.checkpoints import tiny_clip, tiny_simfeatup
from tests.helpers.models import prompts, segmentor

QUERIES = prompts(F.normalize(torch.randn(4, 32, generator=torch.Generator().manual_seed(2)), dim=-1))


def array_reader(pixels: np.ndarray, valid: np.ndarray | None = None, reads: list | None = None):
    """open_reader over an in-memory (3, H, W) uint8 array, recording every block read."""
    valid = np.ones(pixels.shape[1:], bool) if valid is None else valid

    @contextlib.contextmanager
    def open_reader():
        def read(row, col, height, width):
            if reads is not None:
                reads.append((row, col, height, width))
            return pixels[:, row:row + height, col:col + width].copy(), valid[row:row + height, col:col + width]
        yield read
    return open_reader


def streamed(model, pixels, **kwargs):
    _, height, width = pixels.shape
    blocks = stream_logits(array_reader(pixels), height, width, model, QUERIES, **kwargs)
    return assemble(blocks, QUERIES.embeddings.shape[0], height, width)


def test_streaming_over_many_buffer_rows_equals_the_in_memory_result():
    model = segmentor(tiny_clip())
    pixels = np.random.default_rng(0).integers(0, 256, (3, 1010, 300), dtype=np.uint8)  # 8 window rows
    reference = slide_logits(model, normalise_pixels(torch.from_numpy(pixels)), QUERIES, batch_size=2)
    assert torch.equal(streamed(model, pixels, batch_size=2), reference)


def test_column_strips_give_the_same_result_with_the_upsampler():
    model = segmentor(tiny_clip(), tiny_simfeatup())
    pixels = np.random.default_rng(1).integers(0, 256, (3, 224, 460), dtype=np.uint8)
    reference = slide_logits(model, normalise_pixels(torch.from_numpy(pixels)), QUERIES, batch_size=1)
    strips = plan_strips(460, 224, 112, 230)
    assert len(strips) == 2 and strips[1].x0 < strips[0].core1  # strips overlap by whole windows
    assert torch.equal(streamed(model, pixels, batch_size=1, strip_width=230), reference)


def test_rasters_smaller_than_a_window_are_padded_like_the_reference():
    model = segmentor(tiny_clip())
    pixels = np.random.default_rng(2).integers(0, 256, (3, 70, 150), dtype=np.uint8)
    reference = slide_logits(model, normalise_pixels(torch.from_numpy(pixels)), QUERIES)
    assert torch.equal(streamed(model, pixels), reference)


def test_buffer_holds_one_window_row_and_reads_follow_raster_order():
    model = segmentor(tiny_clip())
    pixels = np.zeros((3, 900, 460), dtype=np.uint8)
    reads = []
    blocks = list(stream_logits(array_reader(pixels, reads=reads), 900, 460, model, QUERIES, strip_width=230))
    assert all(h == 224 for _, _, h, _ in reads)
    assert max(block.logits.shape[1] for block in blocks) <= 224
    assert max(block.logits.shape[2] for block in blocks) <= 230  # never the raster's height or width
    covered = np.zeros((900, 460), int)
    for block in blocks:
        h, w = block.valid.shape
        covered[block.row:block.row + h, block.col:block.col + w] += 1
    assert (covered == 1).all()  # every pixel finalised exactly once


def test_windows_without_valid_pixels_are_skipped():
    calls = []

    class Counting:
        patch_size, device, autocast_dtype = 16, torch.device("cpu"), None

        def logits(self, windows, prompts):
            calls.append(windows.shape[0])
            return torch.zeros(windows.shape[0], prompts.embeddings.shape[0], *windows.shape[-2:])

    pixels = np.zeros((3, 224, 448), dtype=np.uint8)
    valid = np.zeros((224, 448), bool)
    valid[:, :100] = True  # only the first window holds valid pixels
    blocks = list(stream_logits(array_reader(pixels, valid), 224, 448, Counting(), QUERIES, batch_size=8))
    assert sum(calls) == 1
    assert total_windows(224, 448, 224, 112, 8192) == 3
    assert not blocks[0].valid[:, 100:].any()


def test_cancelling_stops_the_stream():
    model = segmentor(tiny_clip())
    pixels = np.zeros((3, 448, 448), dtype=np.uint8)
    with pytest.raises(Cancelled):
        list(stream_logits(array_reader(pixels), 448, 448, model, QUERIES, should_stop=lambda: True))


def test_reader_errors_reach_the_caller():
    @contextlib.contextmanager
    def failing():
        def read(*_):
            raise OSError("disk gone")
        yield read

    with pytest.raises(OSError, match="disk gone"):
        list(stream_logits(failing, 300, 300, segmentor(tiny_clip()), QUERIES))


def test_window_count_matches_the_slide_grid():
    assert total_windows(1010, 300, 224, 112, 8192) == len(slide_windows(1010, 300))


class ScarceMemory:
    """A segmentor whose device runs out of memory for batches above ``fits`` windows, as a GPU does."""

    def __init__(self, model, fits: int) -> None:
        self.model, self.fits, self.batches = model, fits, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def logits(self, windows, prompts):
        if windows.shape[0] > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(windows.shape[0])
        return self.model.logits(windows, prompts)


def test_a_batch_that_runs_out_of_memory_is_halved_and_the_result_is_unchanged():
    model = segmentor(tiny_clip())
    pixels = np.random.default_rng(3).integers(0, 256, (3, 340, 560), dtype=np.uint8)  # 2 rows of 4 windows
    reference = streamed(model, pixels, batch_size=8)
    scarce = ScarceMemory(model, fits=2)
    assert torch.equal(streamed(scarce, pixels, batch_size=8), reference)
    assert set(scarce.batches) == {2}  # halved twice at the first batch, then kept at 2


def test_a_single_window_that_does_not_fit_is_one_sentence():
    from backend.errors import DeviceMemoryError

    with pytest.raises(DeviceMemoryError) as error:
        streamed(ScarceMemory(segmentor(tiny_clip()), fits=0), np.zeros((3, 224, 224), np.uint8), batch_size=4)
    assert str(error.value) == ("one 224-pixel window does not fit in the memory of cpu; use precision fp16, "
                                "a smaller window, or device cpu.")
