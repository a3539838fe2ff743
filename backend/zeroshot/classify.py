"""``classify`` jobs: zero-shot scene classification of whole images (top-k rows) or of a raster's tiles (a grid).

Each image (or tile) is embedded whole by the CLIP's visual forward and compared with the
class names prompted as segment prompts them; a class's probability is the best of its
synonyms' in softmax(logit scale x cosine) over all synonyms (``scores.class_probabilities``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from backend.errors import UserInputError
from backend.jobs import ClassifyJob
from backend.models.cache import ModelCache
from backend.raster.source import RasterSource
from backend.zeroshot.encoder import load_encoder
from backend.zeroshot.image_embeddings import embed_images, skipped_notes
from backend.zeroshot.outputs import write_csv, write_staged
from backend.zeroshot.scores import class_probabilities, top_k

log = logging.getLogger("rsov")
Progress = Callable[[str, float, float], None]  # (stage, done, total): images or tiles
IMAGE_COLUMNS = ["file", "rank", "class", "probability"]
STAGES = ("loading model", "encoding classes", "classifying", "writing")


@dataclass
class ClassifyResult:
    class_names: list[str]
    unit: str  # "images" or "tiles"
    items: int  # images or tiles classified
    class_counts: list[int]  # the items whose best class each class is
    rows: list[dict]  # images: IMAGE_COLUMNS, top_k rows per image; tiles: tile_grid.COLUMNS and "bounds"
    seconds: float  # classifying (reading, encoding, scoring)
    device: str
    logit_scale: float
    outputs: list[Path]
    encoded: int = 0  # images encoded by the model (the others came from the embedding cache)
    cached: int = 0
    skipped: int = 0  # unreadable images, or tiles without any valid pixel
    crs: str | None = None  # of a grid's bounds
    notes: list[str] = field(default_factory=list)


def classify(job: ClassifyJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             models: ModelCache | None = None) -> ClassifyResult:
    """Validate and run ``job``: its rows, and its ``out`` file renamed into place at the end."""
    config, inputs = job.checked()
    report = progress or (lambda stage, done, total: None)
    total = 0 if isinstance(inputs, RasterSource) else len(inputs)
    report("loading model", 0, total)
    encoder = load_encoder(config, models)
    report("encoding classes", 0, total)
    queries = encoder.class_embeddings(job.classes)
    started = time.perf_counter()

    def step(done: int, count: int) -> None:
        report("classifying", done, count)

    if isinstance(inputs, RasterSource):
        result, write = _classify_tiles(job, inputs, encoder, queries, step, should_stop)
    else:
        result, write = _classify_images(job, inputs, encoder, queries, step, should_stop)
    result.seconds = time.perf_counter() - started
    if job.out is not None:
        report("writing", result.items, result.items)
        write_staged(job.out, write, should_stop)
    return result


def _classify_images(job: ClassifyJob, paths: list[Path], encoder, queries, step, should_stop
                     ) -> tuple[ClassifyResult, Callable[[Path], None]]:
    single = len(paths) == 1 and paths[0] == job.input
    embedded = embed_images(encoder, paths, job.read_options(), job.batch_size, step, should_stop,
                            strict_field="input" if single else None)
    notes = skipped_notes(embedded, job.input, "input")
    names = job.classes.names
    probabilities = class_probabilities(embedded.embeddings, queries, job.classes.query_to_class,
                                        encoder.logit_scale)
    values, indices = top_k(probabilities, job.top_k)
    rows, counts = [], [0] * len(names)
    for path, best, classes in zip(embedded.paths, values.tolist(), indices.tolist()):
        counts[classes[0]] += 1
        rows.extend({"file": str(path), "rank": rank, "class": names[index], "probability": round(value, 6)}
                    for rank, (value, index) in enumerate(zip(best, classes), start=1))
    result = ClassifyResult(names, "images", len(embedded.paths), counts, rows, 0.0, str(encoder.device),
                            encoder.logit_scale, job.outputs, embedded.encoded, embedded.cached,
                            len(embedded.skipped), notes=notes)
    return result, lambda path: write_csv(path, IMAGE_COLUMNS, rows)


def _classify_tiles(job: ClassifyJob, source: RasterSource, encoder, queries, step, should_stop
                    ) -> tuple[ClassifyResult, Callable[[Path], None]]:
    from backend.zeroshot.tile_grid import classify_tiles, write_grid

    notes = [source.describe()]
    log.info("%s", notes[0])
    if source.crs is None:
        notes.append(f"{job.input} has no CRS: the grid is in pixel coordinates.")
        log.warning("%s", notes[-1])
    grid = classify_tiles(encoder, source, job.tile, queries, job.classes.query_to_class, job.classes.names,
                          job.top_k, job.batch_size, step, should_stop)
    if not grid.rows:
        raise UserInputError(f"{job.input} has no valid pixels (all nodata); check its nodata value.", "input")
    names = job.classes.names
    counts = [0] * len(names)
    for row in grid.rows:
        counts[names.index(row["class"])] += 1
    result = ClassifyResult(names, "tiles", len(grid.rows), counts, grid.rows, 0.0, str(encoder.device),
                            encoder.logit_scale, job.outputs, skipped=grid.skipped,
                            crs=source.crs.to_string() if source.crs is not None else None, notes=notes)
    return result, lambda path: write_grid(grid, source.crs, path, layer=job.out.stem)
