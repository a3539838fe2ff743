"""Writing rasters: georeferenced GeoTIFFs window by window, class styling, COG copies."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from backend.raster.files import open_raster
from backend.raster.grid import Grid


def class_colors(count: int) -> list[tuple[int, int, int]]:
    """Distinct display colours; class 0 (usually background) is dark grey."""
    palette = [(64, 64, 64), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
               (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
               (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0)]
    return [palette[i % len(palette)] for i in range(count)]


CLASS_NODATA = 255
CONFIDENCE_SCALE = 65535  # the temporary confidence raster stores probability x this, as uint16


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
            out.update_tags(**src.tags())  # labels before pixels, as for every raster written here
            for index in range(1, src.count + 1):
                if src.descriptions[index - 1]:
                    out.set_band_description(index, src.descriptions[index - 1])
                with contextlib.suppress(ValueError):
                    out.write_colormap(index, src.colormap(index))
            for row in range(0, grid.height, rows_per_block):
                height = min(rows_per_block, grid.height - row)
                window = from_bounds(*grid.window_bounds(Window(0, row, grid.width, height)), transform=src.transform)
                data = src.read(window=window, out_shape=(src.count, height, grid.width),
                                resampling=Resampling.nearest)
                out.write(data, window=Window(0, row, grid.width, height))


def copy_as_cog(source: Path, target: Path, overview_resampling: str) -> None:
    """Cloud-optimised GeoTIFF copy of ``source`` (tiles, overviews, deflate) at ``target``."""
    import rasterio.shutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        rasterio.shutil.copy(source, target, driver="COG", compress="DEFLATE", blocksize=512,
                             overview_resampling=overview_resampling, BIGTIFF="IF_SAFER")
