"""``refer`` jobs: the mask of what a sentence describes, on the raster's grid, as polygons and a GeoTIFF.

The model's probability covers MagCrop's focus box at the model's resolution; it is sampled
bilinearly onto the area's grid block by block (outside the box: 0), thresholded into the
mask, and the mask's polygons carry the prompt and their mean probability as the score.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.describe.area import Area
from backend.describe.loading import start
from backend.errors import Cancelled
from backend.jobs import ReferJob
from backend.models.cache import ModelCache
from backend.models.geomag.config import Box
from backend.raster.files import Staging, disk_errors, remove_debris
from backend.raster.grid import Grid, on_the_ground
from backend.raster.writers import CLASS_NODATA, CONFIDENCE_SCALE, copy_as_cog, open_grid_raster

log = logging.getLogger("rsov")
Progress = Callable[[str, float, float], None]
STAGES = ("loading model", "reading", "segmenting", "writing")
ROWS_PER_BLOCK = 512
PERCENT = 100  # the mask raster's band 2: probability x this, uint8


@dataclass
class ReferResult:
    prompt: str
    score: float  # the model's confidence in its mask (0 when the mask is empty)
    granularity: str | None  # TMRA's choice (None without MagCrop)
    granularity_probabilities: dict[str, float] | None
    focus_bounds: tuple[float, float, float, float]  # the innermost crop, in the raster's CRS (or pixels)
    crops: list[tuple[float, float, float, float]]  # every MagCrop crop, outermost first
    pixel_count: int  # mask pixels on the area's grid
    area_m2: float | None  # None without a CRS on the ground
    polygon_count: int | None
    seconds: float
    device: str
    outputs: list[Path]
    crs: str | None = None
    notes: list[str] = field(default_factory=list)


def refer(job: ReferJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
          models: ModelCache | None = None) -> ReferResult:
    """Validate and run ``job``; every output is renamed into place at the end."""
    report = progress or (lambda stage, done, total: None)
    source, pipeline, notes = start(job, report, models)
    for folder in {path.parent for path in job.outputs}:
        remove_debris(folder)
    started = time.perf_counter()
    report("segmenting", 0, 1)
    area = Area(source)
    out = pipeline.refer(area, job.prompt, magcrop=not job.no_magcrop)
    if out.focus.granularity is not None:
        notes.append(magcrop_note(out.focus, source.grid))
        log.info("%s", notes[-1])
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")
    report("writing", 1, 1)
    grid = source.grid
    with Staging() as staging:
        scratch = staging.scratch(job.outputs[0].parent)
        mask_path, confidence_path = scratch / "mask.tif", scratch / "confidence.tif"
        with disk_errors(job.outputs[0]):
            pixels = write_mask_rasters(grid, source.aoi, out.probability, out.focus.box, job.mask_threshold,
                                        mask_path, confidence_path, should_stop)
        frame = None
        if job.out is not None:
            frame = mask_polygons(mask_path, confidence_path, job.polygon_options(), should_stop)
            frame.insert(0, "prompt", job.prompt)
            with disk_errors(job.out):
                from backend.raster.vectorize import write_polygons

                write_polygons(frame, staging.path_for(job.out), layer=job.out.stem)
        if job.out_raster is not None:
            with disk_errors(job.out_raster):
                copy_as_cog(mask_path, staging.path_for(job.out_raster), "NEAREST")
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        staging.commit()
    area_m2 = None
    if on_the_ground(grid.crs):
        area_m2 = float(frame["area_m2"].sum()) if frame is not None else None
    return ReferResult(job.prompt, out.score, out.focus.granularity, out.focus.granularity_probabilities,
                       bounds_of(grid, out.focus.box), [bounds_of(grid, box) for box in out.focus.boxes], pixels,
                       area_m2, None if frame is None else len(frame), time.perf_counter() - started,
                       str(pipeline.device), job.outputs, grid.crs.to_string() if grid.crs else None, notes)


def bounds_of(grid: Grid, box: Box) -> tuple[float, float, float, float]:
    from rasterio.windows import Window

    return tuple(round(v, 6) for v in grid.window_bounds(Window(box.x0, box.y0, box.width, box.height)))


def magcrop_note(focus, grid: Grid) -> str:
    chances = ", ".join(f"{name} {p:.2f}" for name, p in (focus.granularity_probabilities or {}).items())
    box = focus.box
    return (f"MagCrop: {focus.granularity}-level task ({chances}); focus on pixels x {box.x0}-{box.x1}, "
            f"y {box.y0}-{box.y1} of the area (bounds {bounds_of(grid, box)})")


def write_mask_rasters(grid: Grid, aoi, probability: np.ndarray, box: Box, threshold: float, mask_path: Path,
                       confidence_path: Path, should_stop: Callable[[], bool] | None = None) -> int:
    """Sample ``probability`` (covering ``box`` of ``grid``) onto the grid: a 2-band mask raster (mask 0/1 with
    255 outside the AOI; probability in percent) and a uint16 confidence raster; the mask's pixel count."""
    from rasterio.features import geometry_mask
    from rasterio.windows import Window
    from scipy.ndimage import map_coordinates

    count = 0
    with open_grid_raster(mask_path, grid, 2, "uint8", CLASS_NODATA) as masks, \
            open_grid_raster(confidence_path, grid, 1, "uint16", None) as confidence:
        masks.set_band_description(1, "mask")  # labels before pixels: a TIFF's colour model is fixed by then
        masks.set_band_description(2, "probability (%)")
        masks.write_colormap(1, {0: (0, 0, 0, 0), 1: (255, 0, 200, 255), CLASS_NODATA: (0, 0, 0, 0)})
        height, width = probability.shape
        cols = np.arange(box.x0, box.x1)
        sample_cols = (cols + 0.5 - box.x0) * width / box.width - 0.5
        for row in range(0, grid.height, ROWS_PER_BLOCK):
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            rows = min(ROWS_PER_BLOCK, grid.height - row)
            block = np.zeros((rows, grid.width), np.float32)
            inside = np.arange(max(row, box.y0), min(row + rows, box.y1))
            if len(inside):
                sample_rows = (inside + 0.5 - box.y0) * height / box.height - 0.5
                rr, cc = np.meshgrid(sample_rows, sample_cols, indexing="ij")
                block[inside[0] - row:inside[-1] + 1 - row, box.x0:box.x1] = map_coordinates(
                    probability, [rr.ravel(), cc.ravel()], order=1, mode="nearest").reshape(rr.shape)
            mask = (block >= threshold).astype(np.uint8)
            if aoi is not None:
                from affine import Affine

                outside = geometry_mask([aoi], (rows, grid.width), grid.transform @ Affine.translation(0, row))
                mask[outside] = CLASS_NODATA
                block[outside] = 0
            count += int((mask == 1).sum())
            window = Window(0, row, grid.width, rows)
            masks.write(np.stack([mask, np.rint(block * PERCENT).astype(np.uint8)]), window=window)
            confidence.write(np.rint(block * CONFIDENCE_SCALE).astype(np.uint16)[None], window=window)
    return count


def mask_polygons(mask_path: Path, confidence_path: Path, options, should_stop=None):
    """The mask's polygons: score (mean probability inside), area_m2."""
    from backend.raster.vectorize import polygonize

    frame = polygonize(mask_path, confidence_path, ["background", "target"], options, should_stop)
    return frame[frame["class_id"] == 1].drop(columns=["class_id", "class_name"]).reset_index(drop=True)
