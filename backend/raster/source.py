"""A raster as the model sees it: three uint8 bands and a validity mask, read block by block.

The *working grid* is the area of interest (its bounding window, in whole source pixels),
optionally resampled on read to another ground sampling distance. Every block read from it
uses the same band selection and the same per-band stretch, computed once per raster.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from rasterio.windows import Window

from backend.errors import UserInputError
from backend.raster.io import geod_of, open_raster

STRETCH_PERCENTILES = (2.0, 98.0)
SAMPLE_SIDE = 1024  # the long side of the decimated read the stretch percentiles come from

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
    keep_gsd: bool = False  # write outputs on the resampled grid instead of the input's


def parse_bands(text: str) -> tuple[int, ...]:
    try:
        bands = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserInputError(f"--bands {text!r} is not a list of band numbers; give e.g. 4,3,2 or 1.") from None
    if len(bands) not in (1, 3):
        raise UserInputError(f"--bands {text!r} names {len(bands)} bands; give three (R,G,B order) or one.")
    return bands


def parse_stretch(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserInputError(f"--stretch {text!r} is not a list of numbers; give MIN,MAX or MIN,MAX per band.") from None
    if len(values) not in (2, 6) or any(low >= high for low, high in zip(values[::2], values[1::2])):
        raise UserInputError(f"--stretch {text!r} must be MIN,MAX (MIN < MAX) for all bands, or three such pairs.")
    return values


def _open(path: Path):
    if not path.exists():
        raise UserInputError(f"input raster {path} does not exist; check the path.")
    try:
        return open_raster(path)
    except RasterioIOError as error:
        raise UserInputError(
            f"input raster {path} cannot be read ({str(error).splitlines()[0][:120]}); "
            "give a GeoTIFF or another image GDAL opens."
        ) from None


def ground_sampling_distance(crs: CRS, transform: Affine, width: int, height: int) -> float:
    """Metres per pixel at the raster's centre (geodesic for geographic CRSs)."""
    if crs.is_projected:
        return math.sqrt(abs(transform.a * transform.e - transform.b * transform.d)) * crs.linear_units_factor[1]
    geod = geod_of(crs)
    x, y = transform @ (width / 2, height / 2)
    x1, y1 = transform @ (width / 2 + 1, height / 2)
    x2, y2 = transform @ (width / 2, height / 2 + 1)
    return math.sqrt(geod.inv(x, y, x1, y1)[2] * geod.inv(x, y, x2, y2)[2])


class RasterSource:
    """An opened input: validated options, the working grid and the stretch, ready to read."""

    def __init__(self, path: str | Path, options: ReadOptions = ReadOptions()):
        self.path = Path(path)
        self.options = options
        self._inspect()
        self.transform = (self.source_transform @ Affine.translation(self.window.col_off, self.window.row_off)
                          @ Affine.scale(self.window.width / self.width, self.window.height / self.height))

    def _inspect(self) -> None:
        options = self.options
        with _open(self.path) as dataset:
            try:
                dataset.read(1, window=Window(0, 0, 1, 1))
            except RasterioIOError as error:
                raise UserInputError(f"input raster {self.path} cannot be read ({str(error).splitlines()[0][:120]}); "
                                     "the file may be truncated or corrupt.") from None
            self.crs: CRS | None = dataset.crs
            if dataset.crs is None and (dataset.transform != Affine.identity() or dataset.gcps[0]):
                raise UserInputError(f"input raster {self.path} has a geotransform but no CRS; assign one, e.g. "
                                     "gdal_edit.py -a_srs EPSG:32633 FILE.")
            self.source_transform = dataset.transform
            self.bands = self._bands(dataset)
            self.dtype = dataset.dtypes[self.bands[0] - 1]
            self.has_mask = any(MaskFlags.all_valid not in dataset.mask_flag_enums[band - 1] for band in self.bands)
            self.aoi = None
            if options.aoi is not None:
                from backend.raster.aoi import load_aoi

                self.aoi = load_aoi(options.aoi, options.aoi_layer, options.aoi_crs, dataset.crs)
            self.window = self._aoi_window(dataset)
            self.scale = self._scale(dataset)
            self.height = max(1, round(self.window.height / self.scale))
            self.width = max(1, round(self.window.width / self.scale))
            self.stretch = self._stretch(dataset)

    # -- validation and set-up ------------------------------------------------------------
    def _bands(self, dataset) -> tuple[int, int, int]:
        bands = self.options.bands or ((1, 2, 3) if dataset.count >= 3 else (1,))
        for band in bands:
            if not 1 <= band <= dataset.count:
                raise UserInputError(f"--bands: {self.path} has no band {band}; it has bands 1 to {dataset.count}.")
        if len({dataset.dtypes[b - 1] for b in bands}) > 1:
            raise UserInputError(f"--bands {bands} of {self.path} have different data types; pick bands of one type.")
        return tuple(bands) * 3 if len(bands) == 1 else tuple(bands)

    def _aoi_window(self, dataset) -> Window:
        full = Window(0, 0, dataset.width, dataset.height)
        if self.aoi is None:
            return full
        left, bottom, right, top = self.aoi.bounds
        inverse = ~dataset.transform
        cols, rows = zip(*(inverse @ corner for corner in ((left, bottom), (left, top), (right, bottom), (right, top))))
        eps = 1e-6  # an edge exactly on a pixel boundary does not take the next pixel
        col0, row0 = max(0, math.floor(min(cols) + eps)), max(0, math.floor(min(rows) + eps))
        col1 = min(dataset.width, math.ceil(max(cols) - eps))
        row1 = min(dataset.height, math.ceil(max(rows) - eps))
        if col1 <= col0 or row1 <= row0:
            raise UserInputError(f"--aoi does not intersect {self.path} (raster bounds {tuple(round(v, 6) for v in dataset.bounds)}"
                                 f"{', ' + dataset.crs.to_string() if dataset.crs else ''}); check its coordinates "
                                 "and --aoi-crs.")
        return Window(col0, row0, col1 - col0, row1 - row0)

    def _scale(self, dataset) -> float:
        """Working pixel size / source pixel size."""
        options = self.options
        if options.gsd is not None and options.resize_long_side is not None:
            raise UserInputError("--gsd and --resize-long-side both resample the input; give only one.")
        if options.resize_long_side is not None:
            if options.resize_long_side < 16:
                raise UserInputError(f"--resize-long-side {options.resize_long_side} is too small; "
                                     "give at least 16 pixels.")
            return max(self.window.width, self.window.height) / options.resize_long_side
        if options.gsd is None:
            return 1.0
        if options.gsd <= 0:
            raise UserInputError(f"--gsd {options.gsd} must be a positive number of metres.")
        if dataset.crs is None:
            raise UserInputError(f"--gsd needs a georeferenced raster but {self.path} has no CRS; "
                                 "use --resize-long-side instead.")
        native = ground_sampling_distance(dataset.crs, dataset.transform, dataset.width, dataset.height)
        return options.gsd / native

    def _stretch(self, dataset) -> np.ndarray | None:
        """(3, 2) low/high per band, or None when uint8 passes through unchanged."""
        if self.options.stretch is not None:
            pairs = np.array(self.options.stretch, dtype=np.float64).reshape(-1, 2)
            return np.repeat(pairs, 3, axis=0) if len(pairs) == 1 else pairs
        if self.dtype == "uint8":
            return None
        side = max(dataset.width, dataset.height)
        shape = (max(1, round(dataset.height * min(1.0, SAMPLE_SIDE / side))),
                 max(1, round(dataset.width * min(1.0, SAMPLE_SIDE / side))))
        unique = sorted(set(self.bands))  # decimated reads come from overviews when the file has them
        sample = dataset.read(unique, out_shape=(len(unique), *shape), masked=True, resampling=Resampling.nearest)
        ranges = []
        for band in self.bands:
            values = sample[unique.index(band)].compressed().astype(np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                ranges.append((0.0, 1.0))
                continue
            low, high = np.percentile(values, STRETCH_PERCENTILES)
            ranges.append((float(low), float(max(high, low + 1e-9))))
        return np.array(ranges)

    # -- reading --------------------------------------------------------------------------
    @property
    def resampled(self) -> bool:
        return (self.height, self.width) != (self.window.height, self.window.width)

    def source_window(self, row: int, col: int, height: int, width: int) -> Window:
        """The (possibly fractional) source window under a block of the working grid."""
        fy, fx = self.window.height / self.height, self.window.width / self.width
        return Window(self.window.col_off + col * fx, self.window.row_off + row * fy, width * fx, height * fy)

    def block_transform(self, row: int, col: int) -> Affine:
        return self.transform @ Affine.translation(col, row)

    @contextlib.contextmanager
    def reader(self) -> Iterator[BlockReader]:
        """A block reader with its own dataset handle (one per thread)."""
        dataset = open_raster(self.path)

        def read(row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            return self._read(dataset, row, col, height, width)

        with dataset:
            yield read

    def _read(self, dataset, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) uint8 pixels and an (h, w) bool mask of the pixels to classify."""
        window = self.source_window(row, col, height, width)
        resampling = Resampling.average if self.scale > 1 else Resampling.bilinear
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

            valid &= geometry_mask([self.aoi], (height, width), self.block_transform(row, col), invert=True)
        pixels[:, ~valid] = 0
        return pixels, valid

    def _rgb(self, dataset, window: Window, shape: tuple[int, int],
             resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
        """The chosen bands as (3, h, w) uint8 (stretched), and the raw data of each distinct band."""
        unique = sorted(set(self.bands))
        data = dataset.read(unique, window=window, out_shape=(len(unique), *shape), resampling=resampling)
        planes = [data[unique.index(band)] for band in self.bands]
        return (np.stack(planes) if self.stretch is None else self._stretched(planes)), data

    def _stretched(self, planes: list[np.ndarray]) -> np.ndarray:
        out = np.empty((3, *planes[0].shape), dtype=np.uint8)
        for index, (plane, (low, high)) in enumerate(zip(planes, self.stretch)):
            scaled = (plane.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
            out[index] = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
        return out

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole working grid at once (small rasters and tests)."""
        with self.reader() as read:
            return read(0, 0, self.height, self.width)

    def preview_pixels(self, height: int, width: int) -> np.ndarray:
        """The working grid decimated to (3, height, width) for a preview image."""
        with open_raster(self.path) as dataset:
            return self._rgb(dataset, self.window, (height, width), Resampling.nearest)[0]
