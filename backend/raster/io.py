"""Writing outputs: georeferenced rasters window by window, COG copies, atomic renames, previews."""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.windows import Window


def open_raster(path: str | Path, mode: str = "r", **profile):
    """rasterio.open without the warning for images that carry no georeferencing (plain images are allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix")


def _parts(path: Path) -> list[Path]:
    """A file and, for a shapefile, its sidecar files."""
    if path.suffix.lower() != ".shp":
        return [path]
    return [path, *(path.with_suffix(suffix) for suffix in SHAPEFILE_SIDECARS)]


@contextlib.contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it only if the block succeeds.

    A shapefile's sidecars (.shx, .dbf, .prj, ...) are renamed with it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    try:
        yield temporary
        pairs = list(zip(_parts(temporary), _parts(target)))
        if not temporary.exists() and temporary.with_suffix(temporary.suffix.lower()).exists():
            pairs[0] = (temporary.with_suffix(temporary.suffix.lower()), target)  # GDAL wrote X.SHP as X.shp
        for new, old in pairs[1:]:
            if not new.exists():
                old.unlink(missing_ok=True)  # a stale sidecar of the shapefile being replaced
        for new, old in reversed(pairs):  # the .shp itself last
            if new.exists():
                os.replace(new, old)
    finally:
        for leftover in (*_parts(temporary), temporary.with_suffix(temporary.suffix.lower()),
                         *temporary.parent.glob(temporary.name + ".*")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def class_colors(count: int) -> list[tuple[int, int, int]]:
    """Distinct display colours; class 0 (usually background) is dark grey."""
    palette = [(64, 64, 64), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
               (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
               (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0)]
    return [palette[i % len(palette)] for i in range(count)]


CLASS_NODATA = 255
CONFIDENCE_SCALE = 65535  # the temporary confidence raster stores probability x this, as uint16


@dataclass(frozen=True)
class Grid:
    """A pixel grid on the ground: size, geotransform and CRS (None: pixel coordinates)."""

    height: int
    width: int
    transform: Affine
    crs: CRS | None

    def window_bounds(self, row: int, col: int, height: int, width: int) -> tuple[float, float, float, float]:
        from rasterio.windows import bounds

        return bounds(Window(col, row, width, height), self.transform)

    def pixel_areas(self, row: int, count: int) -> np.ndarray:
        """m² of a pixel in each of ``count`` rows from ``row``: geodesic (at the centre column) for
        geographic CRSs, constant for projected ones."""
        t = self.transform
        if self.crs.is_projected:
            return np.full(count, abs(t.a * t.e - t.b * t.d) * self.crs.linear_units_factor[1] ** 2)
        geod = geod_of(self.crs)
        col = self.width // 2
        areas = np.empty(count)
        for index in range(count):
            corners = [t @ (col + dx, row + index + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))]
            lons, lats = zip(*corners)
            areas[index] = abs(geod.polygon_area_perimeter(lons, lats)[0])
        return areas


def geod_of(crs: CRS):
    """The pyproj Geod of a CRS's ellipsoid, for geodesic areas (built once per CRS)."""
    return _geod_of_wkt(crs.to_wkt())


@functools.lru_cache(maxsize=8)
def _geod_of_wkt(wkt: str):
    from pyproj import CRS as ProjCRS

    return ProjCRS.from_user_input(wkt).get_geod()


def open_grid_raster(path: Path, grid: Grid, count: int, dtype: str, nodata: float | None):
    """A tiled, compressed GeoTIFF on ``grid`` to be written window by window."""
    profile = dict(driver="GTiff", height=grid.height, width=grid.width, count=count, dtype=dtype,
                   transform=grid.transform, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   nodata=nodata, BIGTIFF="IF_SAFER")
    if dtype == "float32":
        profile["predictor"] = 3
    if grid.crs is not None:
        profile["crs"] = grid.crs
    return open_raster(path, "w", **profile)


def label_class_raster(dataset, class_names: list[str]) -> None:
    """Class names (tags and band description) and a colour table; nodata is transparent."""
    colors = {i: (*color, 255) for i, color in enumerate(class_colors(len(class_names)))}
    colors[CLASS_NODATA] = (0, 0, 0, 0)
    dataset.write_colormap(1, colors)
    dataset.update_tags(CLASS_NAMES=";".join(class_names), **{f"CLASS_{i}": name for i, name in enumerate(class_names)})
    dataset.set_band_description(1, "class")


def label_probability_raster(dataset, class_names: list[str]) -> None:
    for index, name in enumerate(class_names, start=1):
        dataset.set_band_description(index, name)
    dataset.update_tags(CLASS_NAMES=";".join(class_names))


def resample_to_grid(source: Path, target: Path, grid: Grid, rows_per_block: int = 512) -> None:
    """Nearest-neighbour copy of ``source`` onto ``grid`` (same CRS), block of rows by block."""
    from rasterio.windows import from_bounds

    with open_raster(source) as src:
        with open_grid_raster(target, grid, src.count, src.dtypes[0], src.nodata) as out:
            for row in range(0, grid.height, rows_per_block):
                height = min(rows_per_block, grid.height - row)
                window = from_bounds(*grid.window_bounds(row, 0, height, grid.width), transform=src.transform)
                data = src.read(window=window, out_shape=(src.count, height, grid.width),
                                resampling=Resampling.nearest)
                out.write(data, window=Window(0, row, grid.width, height))
            out.update_tags(**src.tags())
            for index in range(1, src.count + 1):
                if src.descriptions[index - 1]:
                    out.set_band_description(index, src.descriptions[index - 1])
                with contextlib.suppress(ValueError):
                    out.write_colormap(index, src.colormap(index))


def copy_as_cog(source: Path, target: Path, overview_resampling: str) -> None:
    """Cloud-optimised GeoTIFF copy of ``source`` (tiles, overviews, deflate) at ``target``."""
    import rasterio.shutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        rasterio.shutil.copy(source, target, driver="COG", compress="DEFLATE", blocksize=512,
                             overview_resampling=overview_resampling, BIGTIFF="IF_SAFER")


def write_preview_png(target: str | Path, photo: np.ndarray, classes: np.ndarray, class_names: list[str]) -> None:
    """The image (3, h, w) and its colour-coded classes (h, w) side by side, with a legend strip."""
    from PIL import Image, ImageDraw

    palette = np.array(class_colors(len(class_names)) + [(0, 0, 0)] * (256 - len(class_names)), dtype=np.uint8)
    photo = np.transpose(photo, (1, 2, 0))
    valid = classes != CLASS_NODATA
    blend = photo.copy()
    blend[valid] = (0.45 * photo[valid] + 0.55 * palette[classes[valid]]).astype(np.uint8)
    height, width = classes.shape
    legend_height = 18 * len(class_names) + 8
    canvas = Image.new("RGB", (2 * width + 10, height + legend_height), (255, 255, 255))
    canvas.paste(Image.fromarray(photo), (0, 0))
    canvas.paste(Image.fromarray(blend), (width + 10, 0))
    draw = ImageDraw.Draw(canvas)
    for index, name in enumerate(class_names):
        top = height + 4 + 18 * index
        draw.rectangle([4, top, 18, top + 14], fill=tuple(int(v) for v in palette[index]))
        share = 100.0 * float((classes[valid] == index).mean()) if valid.any() else 0.0
        draw.text((24, top + 1), f"{index} {name}  {share:.1f}%", fill=(0, 0, 0))
    canvas.save(target, format="PNG")
