"""``ask`` jobs: GeoMag answers a sentence about an area in text (caption, question, what is where)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from backend.describe.area import Area
from backend.describe.loading import load_geomag
from backend.describe.refer import bounds_of, magcrop_note
from backend.jobs import AskJob
from backend.models.cache import ModelCache

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


def ask(job: AskJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
        models: ModelCache | None = None) -> AskResult:
    """Validate and run ``job``: the answer, and which granularity and crop MagCrop chose."""
    checkpoint, source = job.checked()
    report = progress or (lambda stage, done, total: None)
    report("loading model", 0, 1)
    pipeline = load_geomag(checkpoint, job.device, job.precision, not job.offline, models)
    notes = [source.describe()]
    started = time.perf_counter()
    report("answering", 0, 1)
    out = pipeline.ask(Area(source), job.prompt, magcrop=not job.no_magcrop, max_new_tokens=job.max_new_tokens)
    grid = source.grid
    if out.focus.granularity is not None:
        notes.append(magcrop_note(out.focus, grid))
    report("answering", 1, 1)
    return AskResult(job.prompt, out.text, out.focus.granularity, out.focus.granularity_probabilities,
                     bounds_of(grid, out.focus.box), [bounds_of(grid, box) for box in out.focus.boxes],
                     time.perf_counter() - started, str(pipeline.device),
                     grid.crs.to_string() if grid.crs else None, notes)
