"""The one entry point every face calls: ``run(job)`` segments a raster of any size and writes the outputs."""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from rasterio.transform import Affine

from backend.errors import Cancelled, UserInputError
from backend.prompts import ClassList
from backend.raster.aoi import parse_crs
from backend.raster.io import (CLASS_NODATA, CONFIDENCE_SCALE, Grid, atomic_output, copy_as_cog, label_class_raster,
                               label_probability_raster, open_grid_raster, open_raster, resample_to_grid,
                               write_preview_png)
from backend.raster.source import RasterSource, ReadOptions
from backend.raster.stitching import Progress
from backend.raster.streaming import DEFAULT_STRIP_WIDTH, total_windows
from backend.raster.vectorize import PolygonOptions, polygonize, vector_driver, write_polygons

log = logging.getLogger("rsov")


@dataclass(frozen=True)
class ModelSettings:
    """Everything that decides the model's output; None means "the preset's value"."""

    model: str = "segearth-ov"
    dataset: str | None = None
    clip_weights: str | None = None
    upsampler_weights: str | None = None
    no_upsampler: bool = False
    attention: str | None = None
    attention_blocks: int | None = None
    activation: str | None = None  # "quickgelu" or "gelu"
    gba_lambda: float | None = None
    prob_threshold: float | None = None
    background_index: int | None = None
    window: int | None = None
    stride: int | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: fp32 on CPU, fp16 autocast on CUDA
    batch_size: int = 8
    download: bool = True


@dataclass(frozen=True)
class SegmentJob:
    input: Path
    classes: ClassList
    out_raster: Path | None = None  # class raster (COG, uint8, nodata 255)
    out_probs: Path | None = None  # probability raster (COG, float32, band i = class i)
    out_polygons: Path | None = None  # .gpkg, .shp, .geojson or .fgb
    preview: Path | None = None  # PNG
    overwrite: bool = False
    settings: ModelSettings = field(default_factory=ModelSettings)
    read: ReadOptions = field(default_factory=ReadOptions)
    polygons: PolygonOptions = field(default_factory=PolygonOptions)
    strip_width: int = DEFAULT_STRIP_WIDTH  # columns per strip: bounds memory on very wide rasters


@dataclass
class SegmentResult:
    class_names: list[str]
    pixel_counts: list[int]  # on the working grid
    class_areas_m2: list[float] | None  # None without a CRS
    windows: int
    seconds: float
    megapixels: float
    device: str
    outputs: list[Path]
    polygon_count: int | None = None

    @property
    def megapixels_per_second(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else float("nan")


def _check_folder(path: Path) -> None:
    """The folder of ``path`` exists (or can be made) and takes new files."""
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"output folder {folder} cannot be created ({existing} is a file); "
                             "choose another output path.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserInputError(f"output folder {folder} is not writable ({error.strerror}); "
                             "choose another output path.") from None


def _check_outputs(job: SegmentJob) -> list[Path]:
    if job.out_raster is None and job.out_polygons is None:
        raise UserInputError("no output was asked for; give --out-raster CLASSES.tif and/or --out POLYGONS.gpkg.")
    outputs = [p for p in (job.out_raster, job.out_probs, job.out_polygons, job.preview) if p is not None]
    if len({p.resolve() for p in outputs}) < len(outputs):
        raise UserInputError("two outputs have the same path; give each output its own file name.")
    for path, suffixes in ((job.out_raster, {".tif", ".tiff"}), (job.out_probs, {".tif", ".tiff"}),
                           (job.preview, {".png"})):
        if path is not None and path.suffix.lower() not in suffixes:
            raise UserInputError(f"output {path} must end in {' or '.join(sorted(suffixes))}; rename it.")
    if job.out_polygons is not None:
        vector_driver(job.out_polygons)
    for path in outputs:
        if path.exists() and not job.overwrite:
            raise UserInputError(f"output {path} already exists; pass --overwrite to replace it.")
        _check_folder(path)
    return outputs


def _check_polygon_options(job: SegmentJob, source: RasterSource) -> None:
    options = job.polygons
    for name, value in (("--simplify", options.simplify), ("--min-area", options.min_area),
                        ("--fill-holes", options.fill_holes)):
        if value < 0:
            raise UserInputError(f"{name} {value} is negative; give 0 or more.")
    if source.crs is None and (options.min_area or options.fill_holes or options.out_crs):
        raise UserInputError(f"{source.path} has no CRS, so --min-area, --fill-holes and --out-crs cannot apply; "
                             "georeference the raster first.")
    if options.out_crs is not None:
        parse_crs(options.out_crs, "--out-crs")


GDAL_CACHE_BYTES = 256 * 2**20  # GDAL's default (5 % of RAM) lets written tiles pile up with the raster's size


def run(job: SegmentJob, progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None) -> SegmentResult:
    """Segment ``job.input`` window by window and write the job's outputs, each renamed into place at the end.

    ``progress(done, total)`` is called in megapixels of the working grid; ``should_stop()``
    returning True cancels the run, leaving every output as it was.
    """
    import rasterio

    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": GDAL_CACHE_BYTES}
    with rasterio.Env(**cache):
        return _run(job, progress, should_stop)


def _run(job: SegmentJob, progress: Progress | None, should_stop: Callable[[], bool] | None) -> SegmentResult:
    from backend.segmentor import load_segmentor

    outputs = _check_outputs(job)
    source = RasterSource(job.input, job.read)
    if source.crs is None:
        log.warning("%s has no CRS: outputs are in pixel coordinates.", job.input)
    _check_polygon_options(job, source)
    if job.strip_width < 1:
        raise UserInputError(f"--strip-width {job.strip_width} must be at least 1 pixel.")
    loaded = load_segmentor(job.settings, job.classes)
    started = time.perf_counter()
    work = Grid(source.height, source.width, source.transform, source.crs)
    megapixels = work.height * work.width / 1e6
    if progress is not None:  # report megapixels done rather than windows
        windows_progress, progress = progress, (lambda done, total: windows_progress(megapixels * done / total,
                                                                                     megapixels))
    if source.resampled and not job.read.keep_gsd:
        out = Grid(source.window.height, source.window.width,
                   source.source_transform @ Affine.translation(source.window.col_off, source.window.row_off),
                   source.crs)
    else:
        out = work
    folder = outputs[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".rsov-") as scratch:
        scratch = Path(scratch)
        stats = _infer(job, source, loaded, work, scratch, progress, should_stop)
        if stats.valid_pixels == 0:
            raise UserInputError(f"{job.input} has no valid pixels in the area to segment (all nodata or outside "
                                 "--aoi); choose another area or check the raster's nodata value.")
        rasters = {name: scratch / f"{name}.tif" for name in ("classes", "probs", "confidence")}
        rasters = {name: path for name, path in rasters.items() if path.exists()}
        if out != work:
            for name, path in list(rasters.items()):
                resample_to_grid(path, scratch / f"{name}-out.tif", out)
                rasters[name] = scratch / f"{name}-out.tif"
        polygon_count = None
        if job.out_polygons is not None:
            frame = polygonize(rasters["classes"], rasters["confidence"], job.classes.names, job.polygons, should_stop)
            polygon_count = len(frame)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        with contextlib.ExitStack() as renames:  # every output written first, then all renamed at the end
            def temporary(target: Path) -> Path:
                return renames.enter_context(atomic_output(target))

            if job.out_raster is not None:
                copy_as_cog(rasters["classes"], temporary(job.out_raster), "NEAREST")
            if job.out_probs is not None:
                copy_as_cog(rasters["probs"], temporary(job.out_probs), "AVERAGE")
            if job.out_polygons is not None:
                write_polygons(frame, temporary(job.out_polygons), layer=job.out_polygons.stem)
            if job.preview is not None:
                _write_preview(job, source, rasters["classes"], temporary(job.preview))
    return SegmentResult(job.classes.names, stats.counts.astype(int).tolist(),
                         stats.areas.tolist() if source.crs is not None else None,
                         total_windows(work.height, work.width, loaded.window, loaded.stride, job.strip_width),
                         time.perf_counter() - started, megapixels, str(loaded.device), outputs,
                         polygon_count)


@dataclass
class _Stats:
    counts: np.ndarray
    areas: np.ndarray
    valid_pixels: int = 0


def _infer(job: SegmentJob, source: RasterSource, loaded, grid: Grid, scratch: Path,
           progress: Progress | None, should_stop: Callable[[], bool] | None) -> _Stats:
    """Stream the model over the working grid into scratch rasters: classes, probabilities, confidence."""
    from rasterio.windows import Window

    from backend.models.segearth import classify
    from backend.raster.streaming import stream_logits

    names = job.classes.names
    stats = _Stats(np.zeros(len(names)), np.zeros(len(names)))
    with contextlib.ExitStack() as stack:
        classes_out = stack.enter_context(open_grid_raster(scratch / "classes.tif", grid, 1, "uint8", CLASS_NODATA))
        probs_out = confidence_out = None
        if job.out_probs is not None:
            probs_out = stack.enter_context(
                open_grid_raster(scratch / "probs.tif", grid, len(names), "float32", float("nan")))
        if job.out_polygons is not None:
            confidence_out = stack.enter_context(
                open_grid_raster(scratch / "confidence.tif", grid, 1, "uint16", None))
        blocks = stack.enter_context(contextlib.closing(stream_logits(
            source.reader, grid.height, grid.width, loaded.model, loaded.queries, loaded.window, loaded.stride,
            job.settings.batch_size, loaded.autocast_dtype, job.strip_width, progress, should_stop)))
        for block in blocks:
            classes, probabilities = classify(block.logits, job.classes.query_to_class, loaded.logit_scale,
                                              loaded.prob_threshold, loaded.background_index)
            valid = block.valid
            height, width = valid.shape
            window = Window(block.col, block.row, width, height)
            class_map = classes.cpu().numpy().astype(np.uint8)
            class_map[~valid] = CLASS_NODATA
            classes_out.write(class_map, 1, window=window)
            if probs_out is not None:
                values = probabilities.cpu().numpy().astype(np.float32)
                values[:, ~valid] = np.nan
                probs_out.write(values, window=window)
            if confidence_out is not None:
                best = probabilities.gather(0, classes[None])[0].cpu().numpy()
                confidence_out.write(np.where(valid, np.round(best * CONFIDENCE_SCALE), 0).astype(np.uint16), 1,
                                     window=window)
            row_areas = grid.pixel_areas(block.row, height) if grid.crs is not None else np.ones(height)
            weights = np.broadcast_to(row_areas[:, None], valid.shape)[valid]
            stats.counts += np.bincount(class_map[valid], minlength=len(names))
            stats.areas += np.bincount(class_map[valid], weights=weights, minlength=len(names))
            stats.valid_pixels += int(valid.sum())
        label_class_raster(classes_out, names)
        if probs_out is not None:
            label_probability_raster(probs_out, names)
    return stats


def _write_preview(job: SegmentJob, source: RasterSource, classes_path: Path, target: Path, side: int = 1024) -> None:
    from rasterio.enums import Resampling

    with open_raster(classes_path) as classes:
        scale = min(1.0, side / max(classes.height, classes.width))
        shape = (max(1, round(classes.height * scale)), max(1, round(classes.width * scale)))
        class_map = classes.read(1, out_shape=shape, resampling=Resampling.nearest)
    write_preview_png(target, source.preview_pixels(*shape), class_map, job.classes.names)
