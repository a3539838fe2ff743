"""Reading images and writing class / probability rasters that keep the input's georeferencing."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine

from backend.errors import UserInputError


@dataclass
class RasterImage:
    """An RGB image (3, H, W) uint8 with the georeferencing it came with."""

    pixels: np.ndarray
    crs: CRS | None
    transform: Affine
    source: Path

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])


def to_uint8(band: np.ndarray, low_pct: float = 2.0, high_pct: float = 98.0) -> np.ndarray:
    """uint8 passes through; other types are stretched to 0-255 between two percentiles."""
    if band.dtype == np.uint8:
        return band
    finite = band[np.isfinite(band)] if np.issubdtype(band.dtype, np.floating) else band
    if finite.size == 0:
        return np.zeros(band.shape, np.uint8)
    low, high = np.percentile(finite, [low_pct, high_pct])
    scaled = (band.astype(np.float64) - low) / max(high - low, 1e-12)
    return (np.clip(np.nan_to_num(scaled), 0, 1) * 255).round().astype(np.uint8)


def read_rgb(path: str | Path) -> RasterImage:
    """Read the first three bands (one band is repeated to three) of any image GDAL opens."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"input raster {path} does not exist; check the path.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                indexes = [1, 1, 1] if dataset.count < 3 else [1, 2, 3]
                pixels = dataset.read(indexes)
                crs, transform = dataset.crs, dataset.transform
    except RasterioIOError as error:
        raise UserInputError(
            f"input raster {path} cannot be read ({str(error).splitlines()[0][:120]}); "
            "give a GeoTIFF or another image GDAL opens."
        ) from None
    pixels = np.stack([to_uint8(band) for band in pixels])
    return RasterImage(pixels, crs, transform, path)


@contextlib.contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        for leftover in (temporary, *temporary.parent.glob(temporary.name + ".*")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def class_colors(count: int) -> list[tuple[int, int, int]]:
    """Distinct display colours; class 0 (usually background) is dark grey."""
    palette = [(64, 64, 64), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
               (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
               (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0)]
    return [palette[i % len(palette)] for i in range(count)]


def _georeferenced_profile(image: RasterImage, count: int, dtype: str, **extra) -> dict:
    profile = dict(driver="GTiff", height=image.height, width=image.width, count=count, dtype=dtype,
                   transform=image.transform, tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", **extra)
    if image.crs is not None:
        profile["crs"] = image.crs
    return profile


def write_class_raster(target: str | Path, classes: np.ndarray, image: RasterImage,
                       class_names: list[str]) -> None:
    """uint8 class raster (value = class index) with names and a colour table in its metadata."""
    colors = class_colors(len(class_names))
    with atomic_output(target) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(temporary, "w", **_georeferenced_profile(image, 1, "uint8")) as out:
            out.write(classes.astype(np.uint8), 1)
            out.write_colormap(1, {i: (*color, 255) for i, color in enumerate(colors)})
            out.update_tags(CLASS_NAMES=";".join(class_names),
                            **{f"CLASS_{i}": name for i, name in enumerate(class_names)})
            out.set_band_description(1, "class")


def write_probability_raster(target: str | Path, probabilities: np.ndarray, image: RasterImage,
                             class_names: list[str]) -> None:
    """float32 raster, band i = the probability of class i."""
    with atomic_output(target) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        profile = _georeferenced_profile(image, len(class_names), "float32", predictor=3)
        with rasterio.open(temporary, "w", **profile) as out:
            out.write(probabilities.astype(np.float32))
            for index, name in enumerate(class_names, start=1):
                out.set_band_description(index, name)
            out.update_tags(CLASS_NAMES=";".join(class_names))


def write_preview_png(target: str | Path, classes: np.ndarray, image: RasterImage, class_names: list[str]) -> None:
    """The image and its colour-coded classes side by side, with a legend strip."""
    from PIL import Image, ImageDraw

    palette = np.array(class_colors(len(class_names)), dtype=np.uint8)
    overlay = palette[classes]
    photo = np.transpose(image.pixels, (1, 2, 0))
    blend = (0.45 * photo + 0.55 * overlay).astype(np.uint8)
    height, width = classes.shape
    legend_height = 18 * len(class_names) + 8
    canvas = Image.new("RGB", (2 * width + 10, height + legend_height), (255, 255, 255))
    canvas.paste(Image.fromarray(photo), (0, 0))
    canvas.paste(Image.fromarray(blend), (width + 10, 0))
    draw = ImageDraw.Draw(canvas)
    for index, name in enumerate(class_names):
        top = height + 4 + 18 * index
        draw.rectangle([4, top, 18, top + 14], fill=tuple(int(v) for v in palette[index]))
        share = 100.0 * float((classes == index).mean())
        draw.text((24, top + 1), f"{index} {name}  {share:.1f}%", fill=(0, 0, 0))
    with atomic_output(target) as temporary:
        canvas.save(temporary, format="PNG")
