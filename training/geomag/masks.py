"""Masks as the referring sets store them: COCO run-length encodings and polygons, decoded to boolean arrays.

COCO RLE (the format of ``pycocotools.mask``): ``{"size": [H, W], "counts": ...}``, runs of 0s
and 1s alternating, starting with 0s, over the pixels in column-major order. ``counts`` is a
list of run lengths (uncompressed) or a text (compressed): each run written in 5-bit groups,
least significant first, as characters ``48 + group`` with bit 0x20 set when another group
follows and bit 0x10 the sign of the last one; from the fourth run on, the value stored is
the difference to the run two before.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from backend.errors import UserInputError


def rle_counts(text: str | bytes) -> list[int]:
    """The run lengths of a compressed COCO RLE text."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    position = 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(data):
                raise ValueError("the RLE text ends inside a run")
            group = data[position] - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift  # a negative difference
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def decode_rle(rle: dict[str, Any], where: str = "the RLE mask") -> np.ndarray:
    """A COCO RLE (compressed or not) as a boolean (H, W) array."""
    try:
        height, width = (int(side) for side in rle["size"])
        counts = rle["counts"]
        runs = rle_counts(counts) if isinstance(counts, (str, bytes)) else [int(run) for run in counts]
    except (KeyError, TypeError, ValueError) as error:
        raise UserInputError(f"{where} is not a COCO RLE ({error}); give {{'size': [H, W], 'counts': ...}} "
                             "as pycocotools writes it.") from None
    if sum(runs) != height * width or any(run < 0 for run in runs):
        raise UserInputError(f"{where} has runs summing to {sum(runs)}, not H x W = {height * width}; "
                             "the annotation is damaged: replace it.")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def fill_polygons_coco(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons (each a flat ``[x1, y1, x2, y2, ...]`` list, in pixel-edge coordinates) as one mask.

    A pixel (row r, column c) is in when its centre (c + 0.5, r + 0.5) lies inside a polygon
    (even-odd rule); several polygons are united (ours: pycocotools rasterises at 5x and
    resamples, which can differ on edge pixels).
    """
    mask = np.zeros((height, width), bool)
    centres = np.arange(width) + 0.5
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) < 3:
            continue
        x0, y0 = points[:, 0], points[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        inside = np.zeros((height, width), bool)
        for row in range(height):
            y = row + 0.5
            crossing = (y0 <= y) != (y1 <= y)
            if not crossing.any():
                continue
            xs = x0[crossing] + (y - y0[crossing]) * (x1[crossing] - x0[crossing]) / (y1[crossing] - y0[crossing])
            inside[row] = (np.searchsorted(np.sort(xs), centres, side="right") % 2) == 1
        mask |= inside
    return mask


def fill_polygons_pixels(polygons: Sequence[Sequence[Sequence[float]]], height: int, width: int) -> np.ndarray:
    """Polygons of ``[[x, y], ...]`` pixel-centre vertices as one mask, boundary pixels included.

    The convention of ``cv2.fillPoly`` (GeoPixelD's loader): integer vertices name pixels,
    and a polygon covers its interior and its outline (drawn here with Pillow).
    """
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        points = [(float(x), float(y)) for x, y in polygon]
        if len(points) == 1:
            draw.point(points, fill=1)
        elif len(points) == 2:
            draw.line(points, fill=1)
        elif points:
            draw.polygon(points, fill=1, outline=1)
    return np.array(canvas, dtype=bool)
