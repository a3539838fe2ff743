"""Random geometry drawn once and applied identically to several co-registered images.

A ``Geometry`` is a value: a crop box in the source pixels, then flips and quarter turns
of the resized crop. Draw it with ``sample_geometry`` and apply it with
``apply_geometry`` to every image of a pair (optical and SAR), so their pixels stay aligned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GeometryOptions:
    """What may be drawn: crop area as a fraction of the image, crop aspect range, flips, 90° turns."""

    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (0.9, 1.0 / 0.9)
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True


@dataclass(frozen=True)
class Geometry:
    """A crop box (rows top..top+height, columns left..left+width), then flips, then turns."""

    top: int
    left: int
    height: int
    width: int
    hflip: bool = False
    vflip: bool = False
    quarter_turns: int = 0


def sample_geometry(rng: np.random.Generator, height: int, width: int, options: GeometryOptions) -> Geometry:
    """A random resized crop (area in ``scale``, aspect width/height in ``ratio``), flips and turns.

    Ten tries for a box inside the image, as the usual random-resized-crop does; failing
    that, the largest centred box whose aspect is within ``ratio``.
    """
    area = height * width
    low, high = math.log(options.ratio[0]), math.log(options.ratio[1])
    box = None
    for _ in range(10):
        target = area * rng.uniform(*options.scale)
        aspect = math.exp(rng.uniform(low, high))
        box_w, box_h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < box_w <= width and 0 < box_h <= height:
            box = (int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1)), box_h, box_w)
            break
    if box is None:
        aspect = min(max(width / height, options.ratio[0]), options.ratio[1])
        box_w, box_h = (width, round(width / aspect)) if width / height <= aspect else (round(height * aspect), height)
        box_w, box_h = min(box_w, width), min(box_h, height)
        box = ((height - box_h) // 2, (width - box_w) // 2, box_h, box_w)
    hflip = bool(options.hflip and rng.random() < 0.5)
    vflip = bool(options.vflip and rng.random() < 0.5)
    turns = int(rng.integers(0, 4)) if options.rot90 else 0
    return Geometry(*box, hflip=hflip, vflip=vflip, quarter_turns=turns)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) float -> (C, size, size), bilinear with antialiasing when shrinking."""
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def apply_geometry(image: torch.Tensor, geometry: Geometry, size: int) -> torch.Tensor:
    """Crop ``image`` (C, H, W) float to the box, resize to ``size`` x ``size``, flip and turn."""
    g = geometry
    out = resize_square(image[:, g.top:g.top + g.height, g.left:g.left + g.width], size)
    if g.hflip:
        out = out.flip(-1)
    if g.vflip:
        out = out.flip(-2)
    if g.quarter_turns:
        out = torch.rot90(out, g.quarter_turns, dims=(-2, -1))
    return out.contiguous()
