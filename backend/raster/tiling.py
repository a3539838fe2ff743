"""The slide-window grid of the authors' inference, its column strips, and the padding of small windows.

Windows are rasterio ``Window`` values (col_off, row_off, width, height), in pixels of the
working grid.
"""
from __future__ import annotations

from dataclasses import dataclass

from rasterio.windows import Window

DEFAULT_STRIP_WIDTH = 8192  # columns per strip: bounds memory on very wide rasters


def grid_count(size: int, window: int, stride: int) -> int:
    """Windows along one axis: ``max(size - window + stride - 1, 0) // stride + 1``."""
    return max(size - window + stride - 1, 0) // stride + 1


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start of each window along one axis; the last one is shifted back to the edge."""
    if window <= 0 or stride <= 0:
        raise ValueError("window and stride must be positive")
    return [max(min(i * stride + window, size) - window, 0) for i in range(grid_count(size, window, stride))]


def slide_windows(height: int, width: int, window: int = 224, stride: int = 112) -> list[Window]:
    """Windows in raster order, ``window`` pixels square, clipped to the image where it is smaller."""
    win_h, win_w = min(window, height), min(window, width)
    return [Window(x, y, win_w, win_h) for y in window_starts(height, window, stride)
            for x in window_starts(width, window, stride)]


@dataclass(frozen=True)
class Strip:
    """Columns ``core0:core1`` are finalised from the windows starting at ``starts`` (``x0:x1`` read)."""

    core0: int
    core1: int
    starts: tuple[int, ...]
    x0: int
    x1: int


def plan_strips(width: int, window: int, stride: int, strip_width: int) -> list[Strip]:
    """Split the columns into strips of at most ``strip_width`` core columns (at least one window)."""
    span = min(window, width)
    starts = window_starts(width, window, stride)
    strip_width = max(strip_width, span)
    strips = []
    for core0 in range(0, width, strip_width):
        core1 = min(core0 + strip_width, width)
        touching = tuple(x for x in starts if x < core1 and x + span > core0)
        strips.append(Strip(core0, core1, touching, touching[0], touching[-1] + span))
    return strips


def total_windows(height: int, width: int, window: int, stride: int, strip_width: int) -> int:
    """Windows run over a grid in strips (a window touching two strips runs in each)."""
    rows = grid_count(height, window, stride)
    return rows * sum(len(strip.starts) for strip in plan_strips(width, window, stride, strip_width))


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes both sides multiples of ``multiple``."""
    def split(size: int) -> tuple[int, int]:
        extra = (-size) % multiple
        return extra // 2, extra - extra // 2

    left, right = split(width)
    top, bottom = split(height)
    return left, right, top, bottom
