"""Images as CLIP takes them: the rasters of a folder, each read as segment reads it, and CLIP's preprocessing.

Preprocessing is CLIP's own (open_clip's inference transform): the shorter side resized to
the model's input size with antialiased bicubic interpolation (rounded to 8 bits, as PIL
does), the centre square cropped, then CLIP's mean and standard deviation. Pixels come
from ``RasterSource`` as segment's do (uint8 as it is, other types stretched 2-98 %,
nodata black). An image whose shorter side is more than ``PRESHRINK`` times the input size
is read by GDAL (average) at that many times first, so memory stays the same for any
raster size.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from backend.inference.slide import normalise_pixels
from backend.raster.files import open_raster
from backend.raster.source import ReadOptions, RasterSource

PRESHRINK = 2
# extensions GDAL gives raster drivers that name other things in a folder of images (sidecars, vectors, documents)
NOT_IMAGES = frozenset({"xml", "gpkg", "gpkg.zip", "kml", "kmz", "pdf", "sqlite", "mbtiles", "hdr", "lbl", "dat",
                        "map", "err"})


@functools.cache
def image_suffixes() -> frozenset[str]:
    """Lower-case extensions (no dot) of GDAL's raster formats, but those that usually name something else."""
    from rasterio.drivers import raster_driver_extensions

    return frozenset(raster_driver_extensions()) - NOT_IMAGES


def iter_images(folder: Path) -> Iterator[Path]:
    """The raster files in ``folder`` and its subfolders, by extension, as found; hidden files and folders
    (this project's scratch folders among them) are left out."""
    suffixes = image_suffixes()
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix[1:].lower() in suffixes:
                yield Path(root) / name


def find_images(folder: Path) -> list[Path]:
    """``iter_images``, sorted by path."""
    return sorted(iter_images(folder))


def read_image(path: Path, options: ReadOptions, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A whole image's (3, h, w) uint8 pixels and (h, w) validity, its shorter side at most PRESHRINK * size."""
    return RasterSource.open(path, _shrunk(path, options, PRESHRINK * size)).read_all()


def _shrunk(path: Path, options: ReadOptions, limit: int) -> ReadOptions:
    try:
        with open_raster(path) as dataset:
            short, long = sorted((dataset.height, dataset.width))
    except Exception:  # noqa: BLE001 - RasterSource.open says what is wrong with the file
        return options
    if short <= limit:
        return options
    return dataclasses.replace(options, resize_long_side=max(limit, round(long * limit / short)))


def clip_input(pixels: np.ndarray, size: int) -> torch.Tensor:
    """(3, size, size) float32: CLIP's resize of the shorter side to ``size``, centre crop, normalisation."""
    pixels = _centre(pixels, 2 * min(pixels.shape[1:]))
    image = torch.from_numpy(np.ascontiguousarray(pixels)).float()[None]
    height, width = image.shape[-2:]
    short, long = min(height, width), max(height, width)
    resized_long = int(size * long / short)  # torchvision's Resize(int): the long side truncated
    shape = (size, resized_long) if height == short else (resized_long, size)
    if (height, width) != shape:
        image = F.interpolate(image, size=shape, mode="bicubic", antialias=True, align_corners=False)
        image = image.clamp(0, 255).round()
    top, left = round((shape[0] - size) / 2), round((shape[1] - size) / 2)  # torchvision's CenterCrop
    return normalise_pixels(image[0, :, top:top + size, left:left + size])


def _centre(pixels: np.ndarray, most: int) -> np.ndarray:
    """The centre ``most`` pixels of the long side: the crop keeps the centre square only, and a strip 1 x 5000
    would otherwise be resized to 224 x 1,120,000 (the part kept is the same, up to a sub-pixel shift)."""
    _, height, width = pixels.shape
    if height > most:
        return pixels[:, (height - most) // 2:(height - most) // 2 + most]
    if width > most:
        return pixels[:, :, (width - most) // 2:(width - most) // 2 + most]
    return pixels


def padded_tile(pixels: np.ndarray, tile: int) -> np.ndarray:
    """A tile cut by the raster's edge, completed to ``tile`` x ``tile`` with black (as nodata pixels are):
    every tile of a grid is seen at the same scale."""
    _, height, width = pixels.shape
    if (height, width) == (tile, tile):
        return pixels
    return np.pad(pixels, ((0, 0), (0, tile - height), (0, tile - width)))
