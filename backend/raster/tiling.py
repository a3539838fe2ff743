"""The slide-window grid of the authors' inference, and the padding of small windows."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """A window of the image in pixel coordinates: rows y0:y1, columns x0:x1."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def grid_count(size: int, window: int, stride: int) -> int:
    """Windows along one axis: ``max(size - window + stride - 1, 0) // stride + 1``."""
    return max(size - window + stride - 1, 0) // stride + 1


def slide_windows(height: int, width: int, window: int = 224, stride: int = 112) -> list[Window]:
    """Windows in raster order; the last one on each axis is shifted back to the image edge.

    Windows are ``window`` pixels square, clipped to the image where it is smaller.
    """
    if window <= 0 or stride <= 0:
        raise ValueError("window and stride must be positive")
    windows = []
    for row in range(grid_count(height, window, stride)):
        for col in range(grid_count(width, window, stride)):
            y1 = min(row * stride + window, height)
            x1 = min(col * stride + window, width)
            windows.append(Window(max(y1 - window, 0), max(x1 - window, 0), y1, x1))
    return windows


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes both sides multiples of ``multiple``."""
    def split(size: int) -> tuple[int, int]:
        extra = (-size) % multiple
        return extra // 2, extra - extra // 2

    left, right = split(width)
    top, bottom = split(height)
    return left, right, top, bottom
