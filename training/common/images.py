"""Reading 8-bit training images with rasterio (any GDAL format): 1 band replicated to 3, or 3 bands."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioIOError

from backend.errors import UserInputError
from backend.raster.files import open_raster


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[rasterio.io.DatasetReader]:
    if not path.is_file():
        raise UserInputError(f"image {path} does not exist; fix its path in the manifest "
                             "(relative paths are read from the manifest's folder).")
    try:
        source = open_raster(path)
    except RasterioIOError as error:
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else "unreadable"
        raise UserInputError(f"cannot read image {path} ({reason}); give an image GDAL reads "
                             "(PNG, JPEG, GeoTIFF) or replace the damaged file.") from None
    with source:
        yield source


def _colour_bands(source, path: Path) -> list[int]:
    """The 1-based bands to read: all but an alpha band; refused unless 1 or 3, or not 8-bit."""
    bands = [index + 1 for index, interp in enumerate(source.colorinterp) if interp != ColorInterp.alpha]
    if source.dtypes[0] != "uint8":
        raise UserInputError(f"image {path} has {source.dtypes[0]} pixels, not 8-bit; convert it to 8-bit first "
                             "(e.g. gdal_translate -ot Byte -scale).")
    if len(bands) not in (1, 3):
        raise UserInputError(f"image {path} has {len(bands)} bands; give 1-band (grey, SAR) or 3-band (RGB) "
                             "8-bit images.")
    return bands


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an 8-bit 1- or 3-band image, checked from its header alone."""
    path = Path(path)
    with _opened(path) as source:
        _colour_bands(source, path)
        return source.height, source.width


def read_uint8_image(path: str | Path) -> np.ndarray:
    """The image as a (3, H, W) uint8 array; a single band is repeated three times."""
    path = Path(path)
    with _opened(path) as source:
        bands = _colour_bands(source, path)
        try:
            pixels = source.read(bands)
        except Exception as error:  # noqa: BLE001 - GDAL fails in many ways on a truncated file
            raise UserInputError(f"cannot read the pixels of image {path} ({type(error).__name__}); "
                                 "the file may be truncated: replace it.") from None
    return np.repeat(pixels, 3, axis=0) if pixels.shape[0] == 1 else pixels
