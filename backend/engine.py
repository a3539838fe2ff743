"""The one entry point every face calls: ``run(job)`` dispatches on the job's kind and runs it.

A segment job streams the model over the raster into scratch rasters beside the outputs,
then writes every output to a staged file and renames them all into place at the end.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from backend.errors import Cancelled, DeviceMemoryError, UserInputError
from backend.inference.rasters import infer_rasters
from backend.jobs import AskJob, ClassifyJob, DownloadWeightsJob, ReferJob, RetrieveJob, SegmentJob
from backend.models.cache import ModelCache
from backend.raster.files import Staging, disk_errors, ensure_free_space, open_raster, remove_debris
from backend.raster.grid import on_the_ground
from backend.raster.source import RasterSource
from backend.raster.tiling import plan_strips, window_starts
from backend.raster.writers import copy_as_cog, resample_to_grid

log = logging.getLogger("rsov")

Progress = Callable[[str, float, float], None]  # (stage, done, total) in megapixels of the working grid
STAGES = ("loading model", "encoding classes", "segmenting", "vectorizing", "writing")
GDAL_CACHE_BYTES = 256 * 2**20  # GDAL's default (5 % of RAM) lets written tiles pile up with the raster's size
COG_GROWTH = 1.5  # a COG copy with overviews is at most about this times its deflated scratch raster


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
    notes: list[str] = field(default_factory=list)  # how the raster was read, and warnings

    @property
    def megapixels_per_second(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else float("nan")


def run(job, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
        models: ModelCache | None = None):
    """Validate and run ``job``, writing its outputs; each output is renamed into place at the end.

    ``progress(stage, done, total)`` reports each of ``STAGES`` as it begins and the
    segmenting stage as it advances, in megapixels of the working grid; ``should_stop()``
    returning True cancels the run, leaving every output as it was. ``models`` keeps loaded
    models between jobs (the process's shared cache by default).
    """
    import rasterio

    runner = _RUNNERS.get(getattr(job, "kind", None))
    if runner is None:
        raise UserInputError(f"unknown job kind {getattr(job, 'kind', type(job).__name__)!r}; "
                             f"use one of {', '.join(_RUNNERS)}.", "kind")
    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": GDAL_CACHE_BYTES}
    with rasterio.Env(**cache):
        return runner(job, progress, should_stop, models)


def _segment(job: SegmentJob, progress: Progress | None, should_stop: Callable[[], bool] | None,
             models: ModelCache | None) -> SegmentResult:
    from backend.models.devices import OUT_OF_MEMORY

    try:
        return _segment_on_device(job, progress, should_stop, models)
    except OUT_OF_MEMORY:  # outside the model calls, which halve their batches themselves
        raise DeviceMemoryError("the device ran out of memory; give a smaller {strip_width} or {batch_size}, "
                                "or {device} cpu.", "strip_width", "batch_size", "device") from None


def _segment_on_device(job: SegmentJob, progress: Progress | None, should_stop: Callable[[], bool] | None,
                       models: ModelCache | None) -> SegmentResult:
    from backend.models.clip_segmentor import load_segmentor
    from backend.models.devices import release_memory

    config, source = job.checked()
    notes = [source.describe()]
    if source.crs is None:
        log.warning("%s has no CRS: outputs are in pixel coordinates.", job.raster)
    mismatch = modality_mismatch(source.modality, config.preset)
    if mismatch:
        notes.append(mismatch)
    for folder in {path.parent for path in job.outputs}:
        remove_debris(folder)
    work = source.grid
    megapixels = work.height * work.width / 1e6
    report = progress or (lambda stage, done, total: None)
    report("loading model", 0.0, megapixels)
    if job.ray is None:
        segmentor = load_segmentor(config, models)
    log.info("%s", notes[0])  # once the model is there: an error is then the only line a failed load prints
    if mismatch:
        log.warning("%s", mismatch)
    if job.ray is None:
        report("encoding classes", 0.0, megapixels)
        prompts = segmentor.prompt(job.classes)
        device = str(segmentor.device)
    strips = plan_strips(work.width, config.window, config.stride, job.strip_width)
    started = time.perf_counter()

    def window_progress(done: int, total: int) -> None:
        report("segmenting", megapixels * done / total, megapixels)

    with Staging() as staging:
        scratch = staging.scratch(job.outputs[0].parent)
        pieces = None
        with disk_errors(job.outputs[0]):
            if job.ray is not None:
                from backend.cluster.strips import run_on_ray

                on_ray = run_on_ray(job, source, config, scratch, report, window_progress, should_stop)
                stats, strips, pieces, device = on_ray.stats, on_ray.strips, on_ray.pieces, on_ray.device
                notes.extend(on_ray.notes)
            else:
                report("segmenting", 0.0, megapixels)
                stats = None
                try:
                    stats = infer_rasters(job, source, segmentor, prompts, config, scratch, window_progress,
                                          should_stop)
                except DeviceMemoryError:
                    if not _make_room(models):
                        raise
                if stats is None:  # out of the handler: the failed attempt's tensors are freed before the retry
                    release_memory()
                    stats = infer_rasters(job, source, segmentor, prompts, config, scratch, window_progress,
                                          should_stop)
        if stats.valid_pixels == 0:
            raise UserInputError(f"{job.raster} has no valid pixels in the area to segment (all nodata or outside "
                                 "{aoi}); choose another area or check the raster's nodata value.", "aoi")
        rasters = {name: scratch / f"{name}.tif" for name in ("classes", "probs", "confidence")}
        rasters = {name: path for name, path in rasters.items() if path.exists()}
        out = source.output_grid(job.keep_gsd)
        if out != work:
            with disk_errors(job.outputs[0]):
                for name, path in list(rasters.items()):
                    resample_to_grid(path, scratch / f"{name}-out.tif", out)
                    rasters[name] = scratch / f"{name}-out.tif"
        frame = None
        if job.out is not None:
            from backend.raster.vectorize import polygonize

            report("vectorizing", megapixels, megapixels)
            bands = [(strip.core0, strip.core1) for strip in strips] if out == work else None
            frame = polygonize(rasters["classes"], rasters["confidence"], job.classes.names, job.polygon_options(),
                               should_stop, bands=bands, pieces=pieces if out == work else None)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        report("writing", megapixels, megapixels)
        _write_outputs(job, source, rasters, frame, staging)
        if should_stop is not None and should_stop():  # the last moment a cancel can keep the targets as they were
            raise Cancelled("cancelled")
        staging.commit()
    windows = len(window_starts(work.height, config.window, config.stride)) * sum(len(strip.starts) for strip in strips)
    return SegmentResult(job.classes.names, stats.counts.astype(int).tolist(),
                         stats.areas.tolist() if on_the_ground(source.crs) else None, windows,
                         time.perf_counter() - started, megapixels, device, job.outputs,
                         None if frame is None else len(frame), notes)


def modality_mismatch(modality: str, preset_name: str) -> str | None:
    """A warning when the raster's modality is not the one the model preset was made for."""
    from backend.models.registry import MODEL_PRESETS, preset_for_modality

    expected = MODEL_PRESETS[preset_name].modality
    if expected == modality:
        return None
    words = {"optical": "optical", "sar": "SAR"}
    return (f"the raster is read as {words[modality]} but the model {preset_name} is made for {words[expected]} "
            f"imagery: choose the model {preset_for_modality(modality)}, or set the modality to {expected} if the "
            f"raster is {words[expected]}.")


def _make_room(models: ModelCache | None) -> bool:
    """Drop every resident model but this job's (the most recently used) from device memory; False if none."""
    from backend.models.cache import shared_cache

    cache = shared_cache() if models is None else models
    if len(cache.keys()) < 2:
        return False
    cache.shrink_to(1)
    log.warning("out of device memory with one window per batch: other resident models were dropped; retrying.")
    return True


def _write_outputs(job: SegmentJob, source: RasterSource, rasters: dict[str, Path], frame,
                   staging: Staging) -> None:
    """Every output into its staged file; nothing replaces a target until ``staging.commit()``."""
    for target, name, overviews in ((job.out_raster, "classes", "NEAREST"), (job.out_probs, "probs", "AVERAGE")):
        if target is not None:
            ensure_free_space(target, int(COG_GROWTH * rasters[name].stat().st_size) + (1 << 16))
            with disk_errors(target):
                copy_as_cog(rasters[name], staging.path_for(target), overviews)
    if job.out is not None:
        from backend.raster.vectorize import write_polygons

        with disk_errors(job.out):
            write_polygons(frame, staging.path_for(job.out), layer=job.out.stem)
    if job.preview is not None:
        with disk_errors(job.preview):
            _write_preview(job, source, rasters["classes"], staging.path_for(job.preview))


def _write_preview(job: SegmentJob, source: RasterSource, classes_path: Path, target: Path, side: int = 1024) -> None:
    from rasterio.enums import Resampling

    from backend.raster.preview import write_preview_png

    with open_raster(classes_path) as classes:
        scale = min(1.0, side / max(classes.height, classes.width))
        shape = (max(1, round(classes.height * scale)), max(1, round(classes.width * scale)))
        class_map = classes.read(1, out_shape=shape, resampling=Resampling.nearest)
    write_preview_png(target, source.preview_pixels(*shape), class_map, job.classes.names)


@dataclass
class DownloadResult:
    name: str
    path: Path
    bytes: int
    seconds: float


def _download(job: DownloadWeightsJob, progress: Progress | None, should_stop: Callable[[], bool] | None,
              models: ModelCache | None) -> DownloadResult:
    from backend.weights import download

    job.validate()
    if progress is not None:
        progress("downloading", 0.0, 0.0)
    started = time.perf_counter()
    path = download(job.name, force=job.force)  # to a temporary file, verified, then renamed into place
    return DownloadResult(job.name, path, path.stat().st_size, time.perf_counter() - started)


def _classify(job: ClassifyJob, progress: Progress | None, should_stop: Callable[[], bool] | None, models: ModelCache | None):
    from backend.zeroshot.classify import classify

    return classify(job, progress, should_stop, models)


def _retrieve(job: RetrieveJob, progress: Progress | None, should_stop: Callable[[], bool] | None, models: ModelCache | None):
    from backend.zeroshot.retrieval import retrieve

    return retrieve(job, progress, should_stop, models)


def _refer(job: ReferJob, progress: Progress | None, should_stop: Callable[[], bool] | None, models: ModelCache | None):
    from backend.describe.refer import refer

    return refer(job, progress, should_stop, models)


def _ask(job: AskJob, progress: Progress | None, should_stop: Callable[[], bool] | None, models: ModelCache | None):
    from backend.describe.ask import ask

    return ask(job, progress, should_stop, models)


def _batch(job, progress: Progress | None, should_stop: Callable[[], bool] | None, models: ModelCache | None):
    """Many scenes (``backend.batch``): progress in scenes, each scene a segment job of its own."""
    from backend.batch.runner import run_batch

    return run_batch(job, progress, should_stop, models)


_RUNNERS = {SegmentJob.kind: _segment, DownloadWeightsJob.kind: _download, ClassifyJob.kind: _classify,
            RetrieveJob.kind: _retrieve, ReferJob.kind: _refer, AskJob.kind: _ask, "batch": _batch}
