"""The area a sentence is about, read at whatever resolution the model asks for.

GeoMag looks at the whole area once at its input size; MagCrop then asks for a part of it
again at full resolution (capped at the input size). Boxes are in pixels of the working grid.
"""
from __future__ import annotations

import numpy as np

from backend.models.geomag.config import Box
from backend.raster.source import RasterSource


def fitted_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) scaled down so the long side is at most ``max_side`` (never scaled up)."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class Area:
    """An opened raster's working grid (the AOI's window), read box by box into RGB images."""

    def __init__(self, source: RasterSource) -> None:
        self.source = source
        self.height, self.width = source.height, source.width

    @property
    def whole(self) -> Box:
        return Box(0, 0, self.width, self.height)

    def read(self, box: Box | None, max_side: int) -> np.ndarray:
        """The pixels under ``box`` (default: the whole area) as (h, w, 3) uint8, long side at most ``max_side``.

        Pixels outside the AOI or without valid data are black, as the segment path feeds them.
        """
        box = (box or self.whole).clipped(self.width, self.height)
        if box.width < 1 or box.height < 1:
            raise ValueError(f"empty box {box}")
        height, width = fitted_size(box.height, box.width, max_side)
        pixels, _ = self.source.read_resampled(box.y0, box.x0, box.height, box.width, height, width)
        return np.ascontiguousarray(pixels.transpose(1, 2, 0))
