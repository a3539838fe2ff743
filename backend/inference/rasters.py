"""A segmentor streamed over a raster (or some of its column strips) into scratch rasters, with class statistics.

What one process does for the whole working grid and a cluster worker for its strips
(``backend.cluster.strips``); the engine turns the scratch rasters into the outputs.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from backend.jobs import SegmentJob
from backend.raster.files import LOW_SPACE_BYTES, ensure_free_space
from backend.raster.grid import Grid, on_the_ground
from backend.raster.source import RasterSource
from backend.raster.tiling import Strip
from backend.raster.writers import (CLASS_NODATA, CONFIDENCE_SCALE, label_class_raster, label_probability_raster,
                                    open_grid_raster)


@dataclass
class Stats:
    """Pixels and m² of each class, and the valid pixels, in what was segmented."""

    counts: np.ndarray
    areas: np.ndarray
    valid_pixels: int = 0
    block_areas: list[np.ndarray] | None = None  # each block's m², kept to add them up again in the same order

    def add_block(self, counts: np.ndarray, areas: np.ndarray, valid_pixels: int) -> None:
        self.counts += counts
        self.areas += areas
        self.valid_pixels += valid_pixels
        if self.block_areas is not None:
            self.block_areas.append(areas)

    def add(self, other: Stats) -> None:
        """``other``'s blocks after these: the same sums, bit for bit, as if one run had made both."""
        self.counts += other.counts
        for areas in other.block_areas if other.block_areas is not None else [other.areas]:
            self.areas += areas
        self.valid_pixels += other.valid_pixels


def infer_rasters(job: SegmentJob, source: RasterSource, segmentor, prompts, config, scratch: Path,
                  progress: Callable[[int, int], None], should_stop: Callable[[], bool] | None,
                  strips: list[Strip] | None = None) -> Stats:
    """Stream the model over the working grid into scratch rasters: classes, probabilities, confidence.

    Given ``strips`` (consecutive ones, as a cluster worker runs them), the rasters cover only
    their core columns and the statistics keep each block's areas.
    """
    from rasterio.windows import Window

    from backend.inference.streaming import stream_logits

    names = job.classes.names
    grid: Grid = source.grid
    col0 = strips[0].core0 if strips else 0
    out_grid = grid if not strips else grid.subgrid(Window(col0, 0, strips[-1].core1 - col0, grid.height))
    stats = Stats(np.zeros(len(names)), np.zeros(len(names)), block_areas=[] if strips else None)
    with contextlib.ExitStack() as stack:
        classes_out = stack.enter_context(open_grid_raster(scratch / "classes.tif", out_grid, 1, "uint8", CLASS_NODATA))
        label_class_raster(classes_out, names)  # before any pixel: a TIFF's colour model is fixed by then
        probs_out = confidence_out = None
        if job.out_probs is not None:
            probs_out = stack.enter_context(
                open_grid_raster(scratch / "probs.tif", out_grid, len(names), "float32", float("nan")))
            label_probability_raster(probs_out, names)
        if job.out is not None:
            confidence_out = stack.enter_context(
                open_grid_raster(scratch / "confidence.tif", out_grid, 1, "uint16", None))
        blocks = stack.enter_context(contextlib.closing(stream_logits(
            source.reader, grid.height, grid.width, segmentor, prompts, config.window, config.stride,
            job.batch_size, job.strip_width, progress, should_stop, strips)))
        bytes_per_pixel = 1 + (4 * len(names) if probs_out is not None else 0) + (2 if confidence_out is not None else 0)
        for block in blocks:
            classes, probabilities = segmentor.classify(block.logits, prompts)
            valid = block.valid
            height, width = valid.shape
            # GDAL reports a full disk late and only on stderr: stop before a block could not be stored
            ensure_free_space(job.outputs[0], height * width * bytes_per_pixel + LOW_SPACE_BYTES)
            window = Window(block.col - col0, block.row, width, height)
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
            row_areas = grid.pixel_areas(block.row, height) if on_the_ground(grid.crs) else np.ones(height)
            weights = np.broadcast_to(row_areas[:, None], valid.shape)[valid]
            stats.add_block(np.bincount(class_map[valid], minlength=len(names)),
                            np.bincount(class_map[valid], weights=weights, minlength=len(names)), int(valid.sum()))
    return stats
