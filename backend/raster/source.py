"""A raster as the model sees it: three uint8 bands and a validity mask, read block by block.

The *working grid* is the area of interest (its bounding window, in whole source pixels),
optionally resampled on read to another ground sampling distance. Every block read from it
uses the same band selection and the same per-band stretch, computed once per raster.
Optical bands are stretched as they are; SAR bands go through ``sar.SarConversion``
(intensity, speckle filter, dB, stretch), each block read with the halo its filter needs.
Complex bands (SAR SLC) are read as their magnitude.
"""
from __future__ import annotations

import contextlib
import dataclasses
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

from backend.errors import UserInputError, first_line
from backend.raster.files import open_raster
from backend.raster.grid import Grid
from backend.raster.sar import (MODALITIES, SAR_SCALES, SarConversion, band_names, default_sar_bands,
                                detect_modality, detect_scale, to_intensity)
from backend.raster.speckle import DEFAULT_WINDOW, SPECKLE_FILTERS, estimate_looks

STRETCH_PERCENTILES = (2.0, 98.0)
SAMPLE_SIDE = 1024  # the long side of the decimated read the stretch percentiles come from
MIN_LONG_SIDE = 16
LOOKS_SAMPLE = 256  # side of the full-resolution windows the speckle's looks are estimated from
MAX_SPECKLE_WINDOW = 31

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
    modality: str = "auto"  # optical, sar, or auto: from the file
    model_modality: str = "optical"  # what auto picks where the file alone cannot tell
    sar_scale: str = "auto"  # power, amplitude, db, or auto: from the file
    speckle: str = "none"  # none, lee or refined-lee (SAR only)
    speckle_window: int = DEFAULT_WINDOW
    speckle_looks: float | None = None  # None: estimated from the raster


def check_read_options(options: ReadOptions) -> None:
    """Refuse read options that make no sense whatever the raster."""
    for name, choices in (("modality", MODALITIES), ("sar_scale", SAR_SCALES), ("speckle", SPECKLE_FILTERS)):
        if getattr(options, name) not in choices:
            raise UserInputError(f"{{{name}}} {getattr(options, name)!r} is not one of {', '.join(choices)}.", name)
    window = options.speckle_window
    if not (3 <= window <= MAX_SPECKLE_WINDOW and window % 2):
        raise UserInputError(f"{{speckle_window}} {window} must be an odd number of pixels from 3 to "
                             f"{MAX_SPECKLE_WINDOW} (7 is usual).", "speckle_window")
    looks = options.speckle_looks
    if looks is not None and not (math.isfinite(looks) and looks > 0):
        raise UserInputError(f"{{speckle_looks}} {looks} must be a positive number of looks "
                             "(1 for single-look data).", "speckle_looks")
    if options.bands is not None:
        if len(options.bands) not in (1, 2, 3) or min(options.bands) < 1:
            raise UserInputError(f"{{bands}} {','.join(map(str, options.bands))} must be three band numbers "
                                 "(R,G,B order, from 1), one, or two for SAR (co-pol,cross-pol); e.g. 4,3,2 or 1.",
                                 "bands")
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


def _open(path: Path):
    remote = str(path).startswith("/vsi")  # a URL or an archive member: GDAL alone can tell whether it is there
    if not remote and not path.exists():
        raise UserInputError(f"input raster {path} does not exist; check the path.", "raster")
    try:
        return open_raster(path)
    except RasterioError as error:
        fix = "check the address and that GDAL can reach it" if remote else "give a GeoTIFF or another image GDAL opens"
        raise UserInputError(f"input raster {path} cannot be read ({first_line(error, 120)}); {fix}.", "raster") from None


@dataclass(frozen=True)
class RasterSource:
    """An opened input: its bands, the working grid and the stretch, ready to read block by block.

    Build it with ``RasterSource.open``; every attribute is settled there, once.
    """

    path: Path
    bands: tuple[int, ...]  # optical: R, G, B; SAR: the polarisation bands (``sar.bands``)
    dtype: str
    has_mask: bool
    aoi: BaseGeometry | None
    file_grid: Grid  # the whole file
    window: Window  # the area of interest in whole file pixels
    grid: Grid  # the working grid: the window, resampled on read if asked
    stretch: np.ndarray | None  # optical: (3, 2) low/high per band; None: uint8 passes through
    modality: str = "optical"
    modality_reason: str = ""
    sar: SarConversion | None = None  # how SAR bands become pixels (None: optical)

    @classmethod
    def open(cls, path: str | Path, options: ReadOptions = ReadOptions()) -> RasterSource:
        path = Path(path)
        check_read_options(options)
        with _open(path) as dataset:
            try:
                dataset.read(1, window=Window(0, 0, 1, 1))
            except RasterioError as error:
                raise UserInputError(f"input raster {path} cannot be read ({first_line(error, 120)}); "
                                     "the file may be truncated or corrupt.", "raster") from None
            if dataset.crs is None and (dataset.transform != Affine.identity() or dataset.gcps[0]):
                raise UserInputError(f"input raster {path} has a geotransform but no CRS; assign one, e.g. "
                                     "gdal_edit.py -a_srs EPSG:32633 FILE.", "raster")
            file_grid = Grid(dataset.height, dataset.width, dataset.transform, dataset.crs)
            choice = detect_modality(dataset, path, options.modality, options.model_modality)
            _check_modality_options(options, choice.modality, path)
            bands = _choose_bands(dataset, path, options.bands, choice.modality)
            aoi = None
            if options.aoi is not None:
                from backend.raster.aoi import load_aoi

                aoi = load_aoi(options.aoi, options.aoi_layer, options.aoi_crs, dataset.crs)
            window = _aoi_window(file_grid, aoi, path)
            height, width = _working_size(file_grid, window, options, path)
            dtype = dataset.dtypes[bands[0] - 1]
            has_mask = any(MaskFlags.all_valid not in dataset.mask_flag_enums[band - 1] for band in bands)
            source = cls(path, bands, dtype, has_mask, aoi, file_grid, window,
                         file_grid.subgrid(window, height, width), None, choice.modality, choice.reason)
            if choice.modality == "sar":
                source = dataclasses.replace(source, sar=source._sar_conversion(dataset, options))
            else:
                source = dataclasses.replace(source, stretch=source._optical_stretch(dataset, options.stretch))
        return source

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

    def describe(self) -> str:
        """One line for the user: the modality chosen and how the bands become the model's pixels."""
        if self.sar is not None:
            return f"SAR ({self.modality_reason}): {self.sar.describe()}"
        single = len(set(self.bands)) == 1
        bands = ",".join(map(str, self.bands[:1] if single else self.bands))
        ranges = [] if self.stretch is None else self.stretch[:1] if single else self.stretch
        how = "stretched " + ", ".join(f"{low:.4g}…{high:.4g}" for low, high in ranges) if len(ranges) else "as they are"
        return f"optical ({self.modality_reason}): bands {bands} ({self.dtype}) {how}"

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
                                     f"({first_line(error, 120)}); the file may be truncated or corrupt: copy or "
                                     "download it again.", "raster") from None

        with dataset:
            yield read

    def _read(self, dataset, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) uint8 pixels and an (h, w) bool mask of the pixels to classify.

        A SAR block is read with the halo its speckle filter needs (within the working grid),
        so each pixel sees the same neighbourhood whatever block it is read in.
        """
        halo = self.sar.halo if self.sar is not None else 0
        top, left = max(0, row - halo), max(0, col - halo)
        bottom, right = min(self.grid.height, row + height + halo), min(self.grid.width, col + width + halo)
        data, valid = self._data(dataset, self.source_window(top, left, bottom - top, right - left),
                                 (bottom - top, right - left), self._resampling())
        pixels = self._pixels(data, valid)
        core = (slice(row - top, row - top + height), slice(col - left, col - left + width))
        pixels, valid = pixels[:, core[0], core[1]], valid[core]
        return self._masked(pixels, valid, self.grid.transform @ Affine.translation(col, row))

    def read_resampled(self, row: int, col: int, height: int, width: int, out_height: int,
                       out_width: int) -> tuple[np.ndarray, np.ndarray]:
        """A block of the working grid read at (out_height, out_width) in one go: (3, h, w) uint8 and validity.

        For a model that sees an area at its own input size (GDAL averages when reducing). A SAR
        block is filtered on the pixels read, without the halo the streamed reads take.
        """
        window = self.source_window(row, col, height, width)
        resampling = Resampling.average if window.width > out_width else Resampling.bilinear
        with open_raster(self.path) as dataset:
            data, valid = self._data(dataset, window, (out_height, out_width), resampling)
        transform = self.grid.transform @ Affine.translation(col, row) @ Affine.scale(width / out_width,
                                                                                       height / out_height)
        return self._masked(self._pixels(data, valid), valid, transform)

    def _masked(self, pixels: np.ndarray, valid: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
        """Pixels outside the AOI (on a block whose grid is ``transform``) or without valid data set to 0."""
        if self.aoi is not None:
            from rasterio.features import geometry_mask

            valid &= geometry_mask([self.aoi], valid.shape, transform, invert=True)
        pixels[:, ~valid] = 0
        return pixels, valid

    def _resampling(self) -> Resampling:
        return Resampling.average if self.window.width > self.grid.width else Resampling.bilinear

    def _data(self, dataset, window: Window, shape: tuple[int, int],
              resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
        """The distinct bands' values (magnitudes for complex bands) and where they are valid."""
        unique = sorted(set(self.bands))
        data = _real(dataset.read(unique, window=window, out_shape=(len(unique), *shape), resampling=resampling))
        valid = np.ones(shape, dtype=bool)
        if self.has_mask:
            masks = dataset.read_masks(unique, window=window, out_shape=data.shape, resampling=Resampling.nearest)
            valid &= (masks > 0).all(axis=0)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return data, valid

    def _pixels(self, data: np.ndarray, valid: np.ndarray, filtered: bool = True) -> np.ndarray:
        """(3, h, w) uint8 from ``_data``'s values: stretched optical bands, or converted SAR."""
        unique = sorted(set(self.bands))
        planes = [data[unique.index(band)] for band in self.bands]
        if self.sar is not None:
            return self.sar.to_pixels(planes, valid, filtered)
        return np.stack(planes) if self.stretch is None else _stretched(planes, self.stretch)

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole working grid at once (small rasters and tests)."""
        with self.reader() as read:
            return read(0, 0, self.grid.height, self.grid.width)

    def preview_pixels(self, height: int, width: int) -> np.ndarray:
        """The working grid decimated to (3, height, width) for a preview image (SAR unfiltered)."""
        with open_raster(self.path) as dataset:
            data, valid = self._data(dataset, self.window, (height, width), Resampling.nearest)
            return self._pixels(data, valid, filtered=False)

    # -- constants computed once per raster -----------------------------------------------------
    def _sample(self, dataset) -> tuple[np.ndarray, np.ndarray]:
        """The bands' values and validity over the whole file, decimated to SAMPLE_SIDE (from overviews
        when the file has them): the whole scene, so that an AOI of it keeps the scene's look."""
        whole = Window(0, 0, dataset.width, dataset.height)
        return self._data(dataset, whole, _sample_shape(whole), Resampling.nearest)

    def _optical_stretch(self, dataset, asked: tuple[float, ...] | None) -> np.ndarray | None:
        """(3, 2) low/high per band: as asked, else 2-98 percentiles of the sample; None for uint8."""
        if asked is not None:
            return _given_ranges(asked)
        if self.dtype == "uint8":
            return None
        sample, valid = self._sample(dataset)
        unique = sorted(set(self.bands))
        return np.array([_percentile_range(sample[unique.index(band)][valid]) for band in self.bands])

    def _sar_conversion(self, dataset, options: ReadOptions) -> SarConversion:
        """The conversion of this raster's SAR bands, its constants computed once from samples."""
        sample, sample_valid = self._sample(dataset)
        values = sample[:, sample_valid]
        scale, scale_reason = detect_scale(dataset, self.bands, self.path, values[np.isfinite(values)],
                                           options.sar_scale)
        conversion = SarConversion(self.bands, band_names(dataset, self.bands), scale, scale_reason,
                                   options.speckle, options.speckle_window)
        if options.speckle != "none":
            looks, reason = options.speckle_looks, "as asked"
            if looks is None:
                looks, reason = self._estimated_looks(dataset, conversion)
            conversion = dataclasses.replace(conversion, looks=looks, looks_reason=reason)
        if options.stretch is not None:
            stretch = _given_ranges(options.stretch)
        elif scale == "8-bit" and len(self.bands) == 1:
            stretch = None  # the paired data sets' own 8-bit images, as they are
        else:
            unique = sorted(set(self.bands))
            channels = conversion.channels([sample[unique.index(b)] for b in self.bands], sample_valid, False)
            stretch = np.array([_percentile_range(channel[sample_valid]) for channel in channels])
        return dataclasses.replace(conversion, stretch=stretch)

    def _estimated_looks(self, dataset, conversion: SarConversion) -> tuple[float, str]:
        """Looks of the speckle, from full-resolution windows of the working grid (centre and corners)."""
        if self.dtype.startswith("complex"):
            return 1.0, "single-look complex data"
        side = LOOKS_SAMPLE
        rows = sorted({0, max(0, (self.height - side) // 2), max(0, self.height - side)})
        cols = sorted({0, max(0, (self.width - side) // 2), max(0, self.width - side)})
        estimates = []
        for row in rows:
            for col in cols:
                height, width = min(side, self.height - row), min(side, self.width - col)
                data, valid = self._data(dataset, self.source_window(row, col, height, width), (height, width),
                                         self._resampling())
                intensity = to_intensity(data[sorted(set(self.bands)).index(self.bands[0])], conversion.scale)
                looks = estimate_looks(intensity, valid, conversion.window)
                if looks is not None:
                    estimates.append(looks)
        if not estimates:
            return 1.0, "too few valid pixels to estimate; give the looks"
        return float(np.median(estimates)), "estimated from the raster"


def _sample_shape(window: Window) -> tuple[int, int]:
    """(height, width) of a decimated read of ``window`` whose long side is at most SAMPLE_SIDE."""
    scale = min(1.0, SAMPLE_SIDE / max(window.width, window.height))
    return max(1, round(window.height * scale)), max(1, round(window.width * scale))


def _given_ranges(asked: tuple[float, ...]) -> np.ndarray:
    """(3, 2) low/high per channel from one MIN,MAX pair (for all) or three."""
    pairs = np.array(asked, dtype=np.float64).reshape(-1, 2)
    return np.repeat(pairs, 3, axis=0) if len(pairs) == 1 else pairs


def _percentile_range(values: np.ndarray) -> tuple[float, float]:
    """The 2nd and 98th percentiles of the finite values ((0, 1) without any)."""
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, STRETCH_PERCENTILES)
    return float(low), float(max(high, low + 1e-9))


def _real(data: np.ndarray) -> np.ndarray:
    """Complex samples as their magnitude (float32); other data unchanged."""
    return np.abs(data).astype(np.float32) if np.iscomplexobj(data) else data


def _stretched(planes: list[np.ndarray], ranges: np.ndarray) -> np.ndarray:
    out = np.empty((3, *planes[0].shape), dtype=np.uint8)
    for index, (plane, (low, high)) in enumerate(zip(planes, ranges)):
        scaled = (plane.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
        out[index] = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    return out


def _check_modality_options(options: ReadOptions, modality: str, path: Path) -> None:
    """SAR-only options on a raster read as optical are a mistake worth a sentence."""
    if modality == "sar":
        return
    for name, default in (("speckle", "none"), ("sar_scale", "auto"), ("speckle_looks", None)):
        if getattr(options, name) != default:
            raise UserInputError(f"{{{name}}} applies to SAR but {path} is read as optical; give "
                                 "{modality} sar to read it as SAR.", name, "modality")


def _choose_bands(dataset, path: Path, asked: tuple[int, ...] | None, modality: str) -> tuple[int, ...]:
    """Optical: three bands (one repeated); SAR: the co-pol band, or co-pol and cross-pol."""
    if modality == "sar":
        if asked is not None and len(asked) == 3:
            raise UserInputError(f"{{bands}} {','.join(map(str, asked))}: SAR takes one band (co-pol, e.g. VV) or "
                                 "two (co-pol,cross-pol, e.g. 1,2); give {modality} optical for an RGB rendering.",
                                 "bands", "modality")
        bands = asked or default_sar_bands(dataset)
    else:
        if asked is not None and len(asked) == 2:
            raise UserInputError(f"{{bands}} {','.join(map(str, asked))}: two bands are a SAR dual-pol pair but "
                                 f"{path} is read as optical; give {{modality}} sar, or one or three bands.",
                                 "bands", "modality")
        bands = asked or ((1, 2, 3) if dataset.count >= 3 else (1,))
    for band in bands:
        if not 1 <= band <= dataset.count:
            raise UserInputError(f"{{bands}}: {path} has no band {band}; it has bands 1 to {dataset.count}.",
                                 "bands")
    if len({dataset.dtypes[b - 1] for b in bands}) > 1:
        raise UserInputError(f"{{bands}} {','.join(map(str, bands))} of {path} have different data types; "
                             "pick bands of one type.", "bands")
    if modality == "sar":
        return tuple(bands)
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
