"""A raster as the model sees it: three uint8 bands and a validity mask, read block by block.

The *working grid* is the area of interest (its bounding window, in whole source pixels),
optionally resampled on read to another ground sampling distance. Every block read from it
uses the same band selection and the same per-band stretch, computed once per raster.
Complex bands (SAR SLC) are read as their magnitude.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from backend.errors import UserInputError
from backend.raster.files import open_raster
from backend.raster.grid import Grid

STRETCH_PERCENTILES = (2.0, 98.0)
SAMPLE_SIDE = 1024  # the long side of the decimated read the stretch percentiles come from
MIN_LONG_SIDE = 16

BlockReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ReadOptions:
    """How to read the input: bands, stretch, area of interest and ground sampling distance."""

    bands: tuple[int, ...] | None = None  # 1-based; None = 1,2,3 (or band 1 three times)
    stretch: tuple[float, ...] | None = None  # MIN,MAX for every band, or one pair per band
    aoi: str | None = None  # XMIN,YMIN,XMAX,YMAX | WKT | vector file
    aoi_layer: str | None = None
    aoi_crs: str | None = None
    gsd: float | None = None  # metres per pixel to resample to on read
    resize_long_side: int | None = None  # or: resample so the AOI's long side has this many pixels


def check_read_options(options: ReadOptions) -> None:
    """Refuse read options that make no sense whatever the raster."""
    if options.bands is not None:
        if len(options.bands) not in (1, 3) or min(options.bands) < 1:
            raise UserInputError(f"{{bands}} {','.join(map(str, options.bands))} must be three band numbers "
                                 "(R,G,B order, from 1) or one; e.g. 4,3,2 or 1.", "bands")
    if options.stretch is not None:
        values = options.stretch
        if len(values) not in (2, 6) or any(low >= high for low, high in zip(values[::2], values[1::2])) \
                or not all(math.isfinite(v) for v in values):
            raise UserInputError(f"{{stretch}} {','.join(f'{v:g}' for v in values)} must be MIN,MAX (MIN < MAX) "
                                 "for all bands, or three such pairs.", "stretch")
    if options.gsd is not None and options.resize_long_side is not None:
        raise UserInputError("{gsd} and {resize_long_side} both resample the input; give only one.",
                             "gsd", "resize_long_side")
    if options.gsd is not None and not (math.isfinite(options.gsd) and options.gsd > 0):
        raise UserInputError(f"{{gsd}} {options.gsd} must be a positive number of metres.", "gsd")
    if options.resize_long_side is not None and options.resize_long_side < MIN_LONG_SIDE:
        raise UserInputError(f"{{resize_long_side}} {options.resize_long_side} is too small; "
                             f"give at least {MIN_LONG_SIDE} pixels.", "resize_long_side")
    for name in ("aoi_layer", "aoi_crs"):
        if getattr(options, name) is not None and options.aoi is None:
            raise UserInputError(f"{{{name}}} is given without {{aoi}}; give the area of interest too.", name, "aoi")


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__


def _open(path: Path):
    if not path.exists():
        raise UserInputError(f"input raster {path} does not exist; check the path.", "raster")
    try:
        return open_raster(path)
    except RasterioError as error:
        raise UserInputError(f"input raster {path} cannot be read ({_first_line(error)}); "
                             "give a GeoTIFF or another image GDAL opens.", "raster") from None


def _is_complex(dtype: str) -> bool:
    return dtype.startswith("complex")


@dataclass(frozen=True)
class RasterSource:
    """An opened input: its bands, the working grid and the stretch, ready to read block by block.

    Build it with ``RasterSource.open``; every attribute is settled there, once.
    """

    path: Path
    bands: tuple[int, int, int]
    dtype: str
    has_mask: bool
    aoi: BaseGeometry | None
    file_grid: Grid  # the whole file
    window: Window  # the area of interest in whole file pixels
    grid: Grid  # the working grid: the window, resampled on read if asked
    stretch: np.ndarray | None  # (3, 2) low/high per band; None: uint8 passes through

    @classmethod
    def open(cls, path: str | Path, options: ReadOptions = ReadOptions()) -> RasterSource:
        path = Path(path)
        check_read_options(options)
        with _open(path) as dataset:
            try:
                dataset.read(1, window=Window(0, 0, 1, 1))
            except RasterioError as error:
                raise UserInputError(f"input raster {path} cannot be read ({_first_line(error)}); "
                                     "the file may be truncated or corrupt.", "raster") from None
            if dataset.crs is None and (dataset.transform != Affine.identity() or dataset.gcps[0]):
                raise UserInputError(f"input raster {path} has a geotransform but no CRS; assign one, e.g. "
                                     "gdal_edit.py -a_srs EPSG:32633 FILE.", "raster")
            file_grid = Grid(dataset.height, dataset.width, dataset.transform, dataset.crs)
            bands = _choose_bands(dataset, path, options.bands)
            aoi = None
            if options.aoi is not None:
                from backend.raster.aoi import load_aoi

                aoi = load_aoi(options.aoi, options.aoi_layer, options.aoi_crs, dataset.crs)
            window = _aoi_window(file_grid, aoi, path)
            height, width = _working_size(file_grid, window, options, path)
            dtype = dataset.dtypes[bands[0] - 1]
            has_mask = any(MaskFlags.all_valid not in dataset.mask_flag_enums[band - 1] for band in bands)
            stretch = _stretch(dataset, bands, dtype, options.stretch)
        return cls(path, bands, dtype, has_mask, aoi, file_grid, window,
                   file_grid.subgrid(window, height, width), stretch)

    # -- the working grid ---------------------------------------------------------------------
    @property
    def crs(self):
        return self.grid.crs

    @property
    def height(self) -> int:
        return self.grid.height

    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def transform(self) -> Affine:
        return self.grid.transform

    @property
    def resampled(self) -> bool:
        return (self.grid.height, self.grid.width) != (self.window.height, self.window.width)

    def output_grid(self, keep_gsd: bool = False) -> Grid:
        """The grid outputs are written on: the area at the file's resolution, or the working grid."""
        return self.grid if keep_gsd or not self.resampled else self.file_grid.subgrid(self.window)

    # -- reading --------------------------------------------------------------------------------
    def source_window(self, row: int, col: int, height: int, width: int) -> Window:
        """The (possibly fractional) file window under a block of the working grid."""
        fy, fx = self.window.height / self.grid.height, self.window.width / self.grid.width
        return Window(self.window.col_off + col * fx, self.window.row_off + row * fy, width * fx, height * fy)

    @contextlib.contextmanager
    def reader(self) -> Iterator[BlockReader]:
        """A block reader with its own dataset handle (one per thread)."""
        dataset = open_raster(self.path)

        def read(row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            try:
                return self._read(dataset, row, col, height, width)
            except RasterioError as error:
                raise UserInputError(f"input raster {self.path} cannot be read at rows {row}-{row + height} "
                                     f"({_first_line(error)}); the file may be truncated or corrupt: copy or "
                                     "download it again.", "raster") from None

        with dataset:
            yield read

    def _read(self, dataset, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) uint8 pixels and an (h, w) bool mask of the pixels to classify."""
        window = self.source_window(row, col, height, width)
        resampling = Resampling.average if self.window.width > self.grid.width else Resampling.bilinear
        pixels, data = self._rgb(dataset, window, (height, width), resampling)
        valid = np.ones((height, width), dtype=bool)
        if self.has_mask:
            masks = dataset.read_masks(sorted(set(self.bands)), window=window, out_shape=data.shape,
                                       resampling=Resampling.nearest)
            valid &= (masks > 0).all(axis=0)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        if self.aoi is not None:
            from rasterio.features import geometry_mask

            block = self.grid.transform @ Affine.translation(col, row)
            valid &= geometry_mask([self.aoi], (height, width), block, invert=True)
        pixels[:, ~valid] = 0
        return pixels, valid

    def _rgb(self, dataset, window: Window, shape: tuple[int, int],
             resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
        """The chosen bands as (3, h, w) uint8 (stretched), and the data of each distinct band
        (magnitudes for complex bands)."""
        unique = sorted(set(self.bands))
        data = _real(dataset.read(unique, window=window, out_shape=(len(unique), *shape), resampling=resampling))
        planes = [data[unique.index(band)] for band in self.bands]
        return (np.stack(planes) if self.stretch is None else _stretched(planes, self.stretch)), data

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole working grid at once (small rasters and tests)."""
        with self.reader() as read:
            return read(0, 0, self.grid.height, self.grid.width)

    def preview_pixels(self, height: int, width: int) -> np.ndarray:
        """The working grid decimated to (3, height, width) for a preview image."""
        with open_raster(self.path) as dataset:
            return self._rgb(dataset, self.window, (height, width), Resampling.nearest)[0]


def _real(data: np.ndarray) -> np.ndarray:
    """Complex samples as their magnitude (float32); other data unchanged."""
    return np.abs(data).astype(np.float32) if np.iscomplexobj(data) else data


def _stretched(planes: list[np.ndarray], ranges: np.ndarray) -> np.ndarray:
    out = np.empty((3, *planes[0].shape), dtype=np.uint8)
    for index, (plane, (low, high)) in enumerate(zip(planes, ranges)):
        scaled = (plane.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
        out[index] = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    return out


def _choose_bands(dataset, path: Path, asked: tuple[int, ...] | None) -> tuple[int, int, int]:
    bands = asked or ((1, 2, 3) if dataset.count >= 3 else (1,))
    for band in bands:
        if not 1 <= band <= dataset.count:
            raise UserInputError(f"{{bands}}: {path} has no band {band}; it has bands 1 to {dataset.count}.",
                                 "bands")
    if len({dataset.dtypes[b - 1] for b in bands}) > 1:
        raise UserInputError(f"{{bands}} {','.join(map(str, bands))} of {path} have different data types; "
                             "pick bands of one type.", "bands")
    return tuple(bands) * 3 if len(bands) == 1 else tuple(bands)


def _aoi_window(file_grid: Grid, aoi: BaseGeometry | None, path: Path) -> Window:
    """The AOI's bounding window in whole file pixels: every pixel it touches."""
    if aoi is None:
        return Window(0, 0, file_grid.width, file_grid.height)
    left, bottom, right, top = aoi.bounds
    inverse = ~file_grid.transform
    cols, rows = zip(*(inverse @ corner for corner in ((left, bottom), (left, top), (right, bottom), (right, top))))
    eps = 1e-6  # an edge exactly on a pixel boundary does not take the next pixel
    col0, row0 = max(0, math.floor(min(cols) + eps)), max(0, math.floor(min(rows) + eps))
    col1 = min(file_grid.width, math.ceil(max(cols) - eps))
    row1 = min(file_grid.height, math.ceil(max(rows) - eps))
    if col1 <= col0 or row1 <= row0:
        bounds = file_grid.window_bounds(Window(0, 0, file_grid.width, file_grid.height))
        crs = f", {file_grid.crs.to_string()}" if file_grid.crs else ""
        raise UserInputError(f"{{aoi}} does not intersect {path} (raster bounds "
                             f"{tuple(round(v, 6) for v in bounds)}{crs}); check its coordinates and {{aoi_crs}}.",
                             "aoi", "aoi_crs")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _working_size(file_grid: Grid, window: Window, options: ReadOptions, path: Path) -> tuple[int, int]:
    """(height, width) of the working grid: the window, resampled for ``gsd`` / ``resize_long_side``."""
    if options.resize_long_side is not None:
        scale = max(window.width, window.height) / options.resize_long_side
    elif options.gsd is not None:
        if file_grid.crs is None:
            raise UserInputError(f"{{gsd}} needs a georeferenced raster but {path} has no CRS; "
                                 "use {resize_long_side} instead.", "gsd", "resize_long_side")
        native = file_grid.ground_sampling_distance()
        if not math.isfinite(native):
            raise UserInputError(f"{{gsd}} needs a CRS in metres or degrees but {path} has a local CRS; "
                                 "use {resize_long_side} instead.", "gsd", "resize_long_side")
        scale = options.gsd / native
    else:
        return int(window.height), int(window.width)
    return max(1, round(window.height / scale)), max(1, round(window.width / scale))


def _stretch(dataset, bands: tuple[int, ...], dtype: str, asked: tuple[float, ...] | None) -> np.ndarray | None:
    """(3, 2) low/high per band: as asked, else 2-98 percentiles of a decimated read; None for uint8."""
    if asked is not None:
        pairs = np.array(asked, dtype=np.float64).reshape(-1, 2)
        return np.repeat(pairs, 3, axis=0) if len(pairs) == 1 else pairs
    if dtype == "uint8":
        return None
    side = max(dataset.width, dataset.height)
    shape = (max(1, round(dataset.height * min(1.0, SAMPLE_SIDE / side))),
             max(1, round(dataset.width * min(1.0, SAMPLE_SIDE / side))))
    unique = sorted(set(bands))  # decimated reads come from overviews when the file has them
    sample = dataset.read(unique, out_shape=(len(unique), *shape), masked=True, resampling=Resampling.nearest)
    ranges = []
    for band in bands:
        values = _real(sample[unique.index(band)].compressed()).astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            ranges.append((0.0, 1.0))
            continue
        low, high = np.percentile(values, STRETCH_PERCENTILES)
        ranges.append((float(low), float(max(high, low + 1e-9))))
    return np.array(ranges)
