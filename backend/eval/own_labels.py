"""Scoring prompts on a user's own labelled rasters, through the same engine a big run uses.

Each image is segmented by ``rsov segment``'s path (streaming, the model preset's own
thresholds, the image's own grid) into a class raster; its label raster is read on that grid
(nearest neighbour, reprojected if its CRS or grid differs) and both are added to one
confusion matrix, strip by strip, so memory does not grow with the raster. Label values are
mapped to classes by ``class_values`` (class i has value i by default); other values and
nodata are not scored, nor are pixels the prediction has no data for.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from backend.errors import Cancelled, UserInputError
from backend.eval.datasets.base import IGNORE, Sample, pair_folders
from backend.eval.job import EvalJob
from backend.eval.state import RunState

log = logging.getLogger("rsov")
ROWS_PER_BLOCK = 512


def pair_own_labels(images: Path, labels: Path) -> list[Sample]:
    """(image, label) pairs: two files, or two folders matched by file stem."""
    if images.is_file() != labels.is_file():
        raise UserInputError("give {images} and {labels} both as files or both as folders.", "images", "labels")
    if images.is_file():
        return [Sample(images.stem, images, labels)]
    pairs = pair_folders(images, labels)
    if not pairs:
        raise UserInputError(f"no image in {images} has a label of the same name in {labels}; name each label raster "
                             "after its image (e.g. tile_07.tif in both).", "labels")
    return pairs


def value_table(class_values: tuple[int, ...] | None, count: int) -> dict[int, int]:
    return {value: index for index, value in enumerate(class_values if class_values is not None else range(count))}


def evaluate_own_labels(job: EvalJob, progress, should_stop: Callable[[], bool] | None, models=None):
    from backend.engine import run
    from backend.eval.runner import DatasetResult, EvalReport
    from backend.jobs import SegmentJob
    from backend.prompts import parse_inline_classes

    job.out.mkdir(parents=True, exist_ok=True)
    classes = parse_inline_classes(job.classes)
    samples = pair_own_labels(Path(job.images), Path(job.labels))[:job.limit]
    values = value_table(job.class_values, len(classes))
    model = job.model or "segearth-ov"

    def segment_job(sample: Sample, out_raster: Path) -> SegmentJob:
        return SegmentJob(raster=sample.image, classes=classes, out_raster=out_raster, overwrite=True, model=model,
                          clip_weights=job.clip_weights, upsampler_weights=job.upsampler_weights,
                          no_upsampler=job.no_upsampler, device=job.device, precision=job.precision,
                          batch_size=job.batch_size, offline=job.offline)

    segment_job(samples[0], job.out / "check.tif").model_config()  # the model fields, checked before any work
    fingerprint = {"images": [str(s.image.resolve()) for s in samples], "labels": [str(s.label.resolve()) for s in samples],
                   "classes": classes.names, "class_values": sorted(values.items()), "model": model,
                   "clip_weights": job.clip_weights, "upsampler_weights": job.upsampler_weights,
                   "no_upsampler": job.no_upsampler, "precision": job.precision}
    folder = job.out / f"own-labels-{model}"
    state = RunState.open(folder / "state.json", fingerprint, len(classes), job.overwrite)
    report = progress or (lambda stage, done, total: None)
    finished = set(state.done)
    todo = [s for s in samples if s.id not in finished]
    report("own labels", len(samples) - len(todo), len(samples))
    try:
        for number, sample in enumerate(todo, start=len(samples) - len(todo) + 1):
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(dir=job.out) as scratch:
                target = folder / "pred" / f"{sample.id}.tif" if job.save_pred else Path(scratch) / "classes.tif"
                target.parent.mkdir(parents=True, exist_ok=True)
                run(segment_job(sample, target), None, should_stop, models)
                matrix = score_against_label(target, sample.label, values, len(classes))
            state.matrix.merge(matrix)
            state.add(sample.id, time.perf_counter() - started)
            report("own labels", number, len(samples))
    finally:
        state.save()
    result = DatasetResult("own-labels", "own labels", "all", "GeoTIFF labels", model, len(state.done),
                           state.matrix.scores(classes.names), "miou", None, None, state.seconds, fingerprint,
                           state.matrix.matrix.tolist())
    return EvalReport(f"Own labels ({len(samples)} rasters)", [result])


def score_against_label(prediction: Path, label: Path, values: dict[int, int], num_classes: int):
    """The confusion matrix of a class raster against a label raster read on its grid, strip by strip."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    from backend.eval.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(num_classes)
    table = np.full(65536, IGNORE, dtype=np.uint8)
    for value, index in values.items():
        if value < table.size:
            table[value] = index
    with rasterio.open(prediction) as pred, rasterio.open(label) as truth:
        if truth.count != 1 or np.dtype(truth.dtypes[0]).kind not in "ui" or np.dtype(truth.dtypes[0]).itemsize > 2:
            raise UserInputError(f"{label} is not a label raster: give one band of whole numbers (8 or 16 bit).",
                                 "labels")
        reader, close = _on_grid(truth, pred, label, WarpedVRT, Resampling)
        try:
            for top in range(0, pred.height, ROWS_PER_BLOCK):
                window = Window(0, top, pred.width, min(ROWS_PER_BLOCK, pred.height - top))
                classes = pred.read(1, window=window)
                raw = reader.read(1, window=window, masked=True)
                mapped = table[np.asarray(raw.filled(0), dtype=np.int64).clip(0, table.size - 1)]
                unscored = np.ma.getmaskarray(raw) | (classes == pred.nodata if pred.nodata is not None else False)
                mapped[unscored] = IGNORE
                matrix.update(np.where(unscored, 0, classes), mapped)
        finally:
            close()
    return matrix


def _on_grid(truth, pred, label: Path, WarpedVRT, Resampling):
    """A reader of the label on the prediction's grid, and how to close it."""
    same_grid = truth.width == pred.width and truth.height == pred.height and (
        truth.crs == pred.crs and truth.transform.almost_equals(pred.transform) or truth.crs is None)
    if same_grid:
        return truth, lambda: None
    if truth.crs is None or pred.crs is None:
        raise UserInputError(f"{label} is {truth.width}x{truth.height} pixels without a CRS and its image is "
                             f"{pred.width}x{pred.height}: give a label raster of the image's size, or georeference "
                             "both.", "labels")
    vrt = WarpedVRT(truth, crs=pred.crs, transform=pred.transform, width=pred.width, height=pred.height,
                    resampling=Resampling.nearest)
    return vrt, vrt.close
