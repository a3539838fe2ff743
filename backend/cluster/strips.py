"""One raster's column strips on a Ray cluster: ``rsov segment --ray``.

Each strip is a Ray task run by an actor that keeps the model loaded. The task streams the
strip exactly as one process would (``engine.infer_rasters`` over that strip: the same
windows, sums and order), writes the strip's scratch rasters into the run's scratch folder
(storage every node mounts) and returns its class counts and, in pixel space, its polygons.
The driver stitches the strips into the same scratch rasters one process writes, so the
COGs and polygons that follow are the same. A worker that dies mid-strip is restarted by
Ray and the strip is run again from its start.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backend.cluster.session import POLL_SECONDS, RETRIES
from backend.errors import Cancelled, ClusterError, UserInputError, first_line
from backend.raster.tiling import DEFAULT_STRIP_WIDTH, Strip, plan_strips, window_starts

log = logging.getLogger("rsov")

PENDING_WARNING_SECONDS = 30.0
KILL_WAIT_SECONDS = 10.0
MIN_STRIP_WIDTH = 1024  # narrower strips would repeat too many windows at their edges
ROWS_PER_COPY = 1024


@dataclass
class StripOutput:
    index: int
    folder: Path | None
    stats: object | None  # engine.Stats
    pieces: object | None  # vectorize.BandPieces, or None when the driver polygonises
    error: tuple | None = None  # (class, template, fields) of a UserInputError

    def raise_error(self) -> None:
        if self.error is not None:
            kind, template, fields = self.error
            raise kind(template, *fields)


@dataclass
class OnRay:
    """What a run on the cluster leaves for the engine to finish."""

    stats: object  # engine.Stats over every strip
    strips: list[Strip]
    pieces: list | None  # vectorize.BandPieces per strip, in strip order
    device: str
    notes: list[str]


class StripWorker:
    """A Ray actor: the model loaded once, then strips of one raster on demand."""

    def __init__(self, job, source, threads: int) -> None:
        import torch

        from backend.models.clip_segmentor import load_segmentor

        torch.set_num_threads(threads)
        self.job, self.source, self.error = job, source, None
        try:
            self.config = job.model_config()
            self.segmentor = load_segmentor(self.config)
            self.prompts = self.segmentor.prompt(job.classes)
        except UserInputError as error:  # reported with the first strip, in the user's words
            self.error = (type(error), error.template, error.fields)
        except Exception as error:  # noqa: BLE001 - one sentence for the driver, not a remote traceback
            self.error = (ClusterError, f"a Ray worker could not load the model ({first_line(error)}); see the "
                          "cluster's logs (ray logs).", ())

    def device(self) -> str:
        return str(self.segmentor.device) if self.error is None else "none"

    def run_strip(self, index: int, strip: Strip, scratch: str, tracker, polygons: bool) -> StripOutput:
        """Stream ``strip`` into ``scratch``/strip-INDEX (replaced whole at the end); polygons if asked."""
        from backend.inference.rasters import infer_rasters
        from backend.raster.files import open_raster
        from backend.raster.vectorize import band_pieces

        if self.error is not None:
            return StripOutput(index, None, None, None, self.error)
        folder = Path(scratch) / f"strip-{index}"
        try:
            part = Path(tempfile.mkdtemp(dir=scratch, prefix=f"strip-{index}.part-"))
        except OSError as error:
            return StripOutput(index, None, None, None, (ClusterError, f"a Ray worker on {os.uname().nodename} cannot "
                               f"write to {scratch} ({first_line(error)}); put the outputs on storage every node "
                               "mounts (docs/scale.md).", ()))

        def progress(done: int, total: int) -> None:
            tracker.set.remote(index, done)

        try:
            stats = infer_rasters(self.job, self.source, self.segmentor, self.prompts, self.config, part, progress,
                                  None, [strip])
            pieces = None
            if polygons:
                with open_raster(part / "classes.tif") as classes, open_raster(part / "confidence.tif") as confidence:
                    pieces = band_pieces(classes, confidence, strip.core0, strip.core1, file_col=strip.core0,
                                         width=self.source.grid.width)
        except UserInputError as error:
            shutil.rmtree(part, ignore_errors=True)
            return StripOutput(index, None, None, None, (type(error), error.template, error.fields))
        shutil.rmtree(folder, ignore_errors=True)  # an earlier run of this strip by a worker that then died
        os.replace(part, folder)
        return StripOutput(index, folder, stats, pieces)


class WindowTracker:
    """A Ray actor: windows done per strip, for the driver's one progress bar over all workers."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def set(self, index: int, done: int) -> None:
        self.done[index] = max(self.done.get(index, 0), done)  # a strip run again counts from where it got

    def total(self) -> int:
        return sum(self.done.values())


def cluster_strips(width: int, window: int, stride: int, strip_width: int, workers: int) -> list[Strip]:
    """The job's strips; at the default width, narrower ones (not under ``MIN_STRIP_WIDTH``) so every worker
    gets about two."""
    strips = plan_strips(width, window, stride, strip_width)
    if strip_width == DEFAULT_STRIP_WIDTH and len(strips) < 2 * workers:
        narrow = max(MIN_STRIP_WIDTH, window, math.ceil(width / (2 * workers)))
        if narrow < strip_width:
            strips = plan_strips(width, window, stride, narrow)
    return strips


def run_on_ray(job, source, config, scratch: Path, report: Callable[[str, float, float], None],
               progress: Callable[[int, int], None], should_stop: Callable[[], bool] | None) -> OnRay:
    """Segment ``source`` on the cluster named by ``job.ray`` into ``scratch``'s classes/probs/confidence rasters."""
    from backend.cluster.session import absolute_paths, connect, plan_workers, worker_actor

    ray = connect(job.ray)
    workers = plan_workers(ray, job.ray_workers, config.device)
    job, scratch = absolute_paths(job), scratch.absolute()
    source = dataclasses.replace(source, path=job.raster)
    grid = source.grid
    strips = cluster_strips(grid.width, config.window, config.stride, job.strip_width, workers.count)
    rows = len(window_starts(grid.height, config.window, config.stride))
    total = rows * sum(len(strip.starts) for strip in strips)
    polygons = job.out is not None and source.output_grid(job.keep_gsd) == grid
    count = min(workers.count, len(strips))
    megapixels = grid.height * grid.width / 1e6
    tracker = ray.remote(num_cpus=0)(WindowTracker).remote()
    actor = worker_actor(ray, StripWorker, workers)
    actors = [actor.remote(job, source, workers.threads) for _ in range(count)]
    running: dict = {}
    try:
        device = _first_result(ray, actors[0].device.remote(), should_stop)
        report("segmenting", 0.0, megapixels)
        outputs = _dispatch(ray, actors, running, strips, scratch, tracker, polygons, progress, total, should_stop)
        progress(total, total)
    finally:
        for each in [*actors, tracker]:
            ray.kill(each)
        if running:  # killed mid-strip: let them end before the scratch folder goes
            ray.wait(list(running), num_returns=len(running), timeout=KILL_WAIT_SECONDS)
    for output in outputs.values():
        if not output.folder.is_dir():
            raise ClusterError(f"the Ray workers wrote strip {output.index} to {output.folder}, which this machine "
                               "cannot see; put the outputs on storage every node mounts (docs/scale.md).")
    stats = _stitch(job, grid, strips, [outputs[index] for index in range(len(strips))], scratch)
    width = strips[0].core1 - strips[0].core0
    notes = [f"segmented by {workers.describe(count)} in {len(strips)} column strips of {width} pixels "
             f"(rsov segment --strip-width {width} gives the same output on one machine)"]
    pieces = [outputs[index].pieces for index in range(len(strips))] if polygons else None
    return OnRay(stats, strips, pieces, device, notes)


def _first_result(ray, ref, should_stop: Callable[[], bool] | None):
    """``ray.get(ref)``, cancellable while the cluster has no room for the worker yet."""
    started = time.monotonic()
    warned = False
    while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        if not warned and time.monotonic() - started > PENDING_WARNING_SECONDS:
            warned = True
            log.warning("the Ray workers have not started after %.0f s: the cluster may have no free CPU or GPU "
                        "(ray status shows what is in use).", PENDING_WARNING_SECONDS)
    return _result(ray, ref)


def _result(ray, ref):
    """``ray.get(ref)`` with a worker's failure as one sentence."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as error:
        cause = getattr(error, "cause", None) or error
        raise ClusterError(f"a Ray worker failed ({type(cause).__name__}: {first_line(cause)}); see the cluster's "
                           "logs (ray logs).") from None
    except RayActorError as error:
        raise ClusterError(f"a Ray worker died {RETRIES + 1} times ({first_line(error)}); see the cluster's logs "
                           "(ray logs) for why (often out of memory: give a smaller --strip-width).") from None


def _dispatch(ray, actors: list, running: dict, strips: list[Strip], scratch: Path, tracker, polygons: bool,
              progress: Callable[[int, int], None], total: int,
              should_stop: Callable[[], bool] | None) -> dict[int, StripOutput]:
    """Each strip to the next idle worker until all are done; progress over all of them. ``running`` holds the
    tasks under way (the caller's, to wait for after a cancel)."""
    waiting, idle = list(range(len(strips))), list(actors)
    outputs: dict[int, StripOutput] = {}
    while waiting or running:
        while waiting and idle:
            worker, index = idle.pop(0), waiting.pop(0)
            running[worker.run_strip.remote(index, strips[index], str(scratch), tracker, polygons)] = worker
        ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_SECONDS)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        progress(ray.get(tracker.total.remote()), total)
        for ref in ready:
            idle.append(running.pop(ref))
            output = _result(ray, ref)
            output.raise_error()
            outputs[output.index] = output
    return outputs


def _stitch(job, grid, strips: list[Strip], outputs: list[StripOutput], scratch: Path):
    """The strips' rasters copied into whole-grid scratch rasters (as one process writes them); the summed stats."""
    import contextlib

    import numpy as np
    from rasterio.windows import Window

    from backend.inference.rasters import Stats
    from backend.raster.files import open_raster
    from backend.raster.writers import CLASS_NODATA, label_class_raster, label_probability_raster, open_grid_raster

    names = job.classes.names
    kinds = [("classes", 1, "uint8", CLASS_NODATA)]
    if job.out_probs is not None:
        kinds.append(("probs", len(names), "float32", float("nan")))
    if job.out is not None:
        kinds.append(("confidence", 1, "uint16", None))
    for name, count, dtype, nodata in kinds:
        with open_grid_raster(scratch / f"{name}.tif", grid, count, dtype, nodata) as whole:
            if name == "classes":  # labelled before any pixel, as infer_rasters does
                label_class_raster(whole, names)
            elif name == "probs":
                label_probability_raster(whole, names)
            for strip, output in zip(strips, outputs):
                with open_raster(output.folder / f"{name}.tif") as part:
                    for row in range(0, grid.height, ROWS_PER_COPY):
                        height = min(ROWS_PER_COPY, grid.height - row)
                        data = part.read(window=Window(0, row, part.width, height))
                        whole.write(data, window=Window(strip.core0, row, part.width, height))
        for output in outputs:
            with contextlib.suppress(FileNotFoundError):
                (output.folder / f"{name}.tif").unlink()  # the disk holds one copy at a time
    stats = Stats(np.zeros(len(names)), np.zeros(len(names)))
    for output in outputs:
        stats.add(output.stats)
    return stats
