"""``ask`` jobs: GeoMag answers a sentence about an area in text (caption, question, what is where)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from backend.describe.area import Area
from backend.describe.loading import start
from backend.describe.refer import bounds_of, magcrop_note, mask_polygons, write_mask_rasters
from backend.errors import Cancelled
from backend.jobs import AskJob
from backend.models.cache import ModelCache
from backend.models.geomag.config import Box
from backend.raster.files import Staging, disk_errors, remove_debris

log = logging.getLogger("rsov")
Progress = Callable[[str, float, float], None]


@dataclass
class AskResult:
    prompt: str
    answer: str
    granularity: str | None  # TMRA's choice (None without MagCrop)
    granularity_probabilities: dict[str, float] | None
    focus_bounds: tuple[float, float, float, float]  # PSC's innermost crop, in the raster's CRS (or pixels)
    crops: list[tuple[float, float, float, float]]
    seconds: float
    device: str
    crs: str | None = None
    notes: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)  # grounded phrases, one mask each
    polygon_count: int | None = None  # polygons written to out (None without out)
    outputs: list = field(default_factory=list)


def ask(job: AskJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
        models: ModelCache | None = None) -> AskResult:
    """Validate and run ``job``: the answer, and which granularity and crop MagCrop chose."""
    report = progress or (lambda stage, done, total: None)
    source, pipeline, notes = start(job, report, models)
    started = time.perf_counter()
    report("answering", 0, 1)
    out = pipeline.ask(Area(source), job.prompt, magcrop=not job.no_magcrop, max_new_tokens=job.max_new_tokens)
    grid = source.grid
    if out.focus.granularity is not None:
        notes.append(magcrop_note(out.focus, grid))
    report("answering", 1, 1)
    polygons = None
    if job.out is not None:
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        polygons = _write_grounded(job, source, out.phrases, out.masks, should_stop)
    return AskResult(job.prompt, out.text, out.focus.granularity, out.focus.granularity_probabilities,
                     bounds_of(grid, out.focus.box), [bounds_of(grid, box) for box in out.focus.boxes],
                     time.perf_counter() - started, str(pipeline.device),
                     grid.crs.to_string() if grid.crs else None, notes, out.phrases, polygons, job.outputs)


def _write_grounded(job: AskJob, source, phrases: list[str], masks: list, should_stop) -> int:
    """The answer's grounded masks as polygons (phrase, score, area_m2) in ``job.out``; how many."""
    import pandas as pd

    from backend.raster.vectorize import write_polygons

    remove_debris(job.out.parent)
    grid = source.grid
    whole = Box(0, 0, grid.width, grid.height)  # each mask covers the image the VLM saw: the whole area
    with Staging() as staging:
        scratch = staging.scratch(job.out.parent)
        frames = []
        with disk_errors(job.out):
            for index, (phrase, probability) in enumerate(zip(phrases, masks)):
                mask_path, confidence_path = scratch / f"mask-{index}.tif", scratch / f"confidence-{index}.tif"
                write_mask_rasters(grid, source.aoi, probability, whole, job.mask_threshold, mask_path,
                                   confidence_path, should_stop)
                frame = mask_polygons(mask_path, confidence_path, job.polygon_options(), should_stop)
                frame.insert(0, "phrase", phrase)
                frames.append(frame)
            if not frames:  # no phrase was grounded: an empty layer with the same fields
                import geopandas as gpd

                frames.append(gpd.GeoDataFrame({"phrase": [], "score": [], "area_m2": []}, geometry=[],
                                               crs=grid.crs))
            frame = pd.concat(frames, ignore_index=True)
            frame.insert(0, "prompt", job.prompt)
            write_polygons(frame, staging.path_for(job.out), layer=job.out.stem)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        staging.commit()
    return len(frame)
