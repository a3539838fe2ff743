"""The one thread that owns the device: runs jobs in the order they came, keeps models loaded between them."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from backend.errors import Cancelled, UserInputError
from backend.models.cache import ModelCache
from backend.server.store import JobRecord, JobStore

log = logging.getLogger("rsov.serve")
CANCELLED = "cancelled by request; nothing was written."
STOPPED = "the service stopped before this job finished; nothing was written: submit it again."


RATED_STAGES = ("segmenting", "classifying", "encoding images")  # the model's work, measured in the job's unit
MAX_STORED_ROWS = 1000  # rows of a classify or retrieve result kept with its record (the file has them all)


@dataclass
class LiveProgress:
    """Progress of the running job, with the rate and time left of its segmenting (classifying) stage."""

    stage: str = "queued"
    done: float = 0.0  # megapixels
    total: float | None = None
    segmenting_since: float | None = None
    segmenting_until: float | None = None  # the rate stays that of the segmenting stage once it is over
    segmented_at_start: float = 0.0
    unit: str = "MP"  # what done and total count: megapixels, or images or tiles (classify, retrieve)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self, stage: str, done: float, total: float) -> None:
        with self.lock:
            if stage in RATED_STAGES and self.segmenting_since is None:
                self.segmenting_since, self.segmented_at_start = time.monotonic(), done
            if stage not in RATED_STAGES and self.stage in RATED_STAGES:
                self.segmenting_until = time.monotonic()
            self.stage, self.done, self.total = stage, done, total

    def snapshot(self) -> dict:
        with self.lock:
            rate = eta = None
            if self.segmenting_since is not None:
                elapsed = (self.segmenting_until or time.monotonic()) - self.segmenting_since
                if elapsed > 0 and self.done > self.segmented_at_start:
                    rate = (self.done - self.segmented_at_start) / elapsed
                    eta = (self.total - self.done) / rate if self.stage in RATED_STAGES else None
            return {"stage": self.stage, "done_mp": self.done, "total_mp": self.total, "mp_per_s": rate,
                    "eta_s": eta, "unit": self.unit}


class Worker:
    """Runs submitted jobs one at a time through ``engine.run`` with one model cache."""

    def __init__(self, store: JobStore, models: ModelCache, admit: Callable = lambda job: job) -> None:
        """``admit(job)`` checks the job's paths again just before it runs (links may have changed)."""
        self.store = store
        self.models = models
        self.admit = admit
        self._queue: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._cancel: dict[str, threading.Event] = {}
        self._live: dict[str, LiveProgress] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.running: str | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="rsov-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking jobs; the running one stops within a batch of windows and is marked interrupted."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, record: JobRecord, job) -> None:
        with self._lock:
            self._cancel[record.id] = threading.Event()
            self._live[record.id] = LiveProgress(unit=progress_unit(job))
        self.store.add(record)
        self._queue.put((record.id, job))

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; False when it is not waiting or running here."""
        with self._lock:
            event = self._cancel.get(job_id)
            if event is None:
                return False
            event.set()
            if self.running != job_id:  # still queued: cancelled now, the worker skips it
                self._finish(job_id, "cancelled", error=CANCELLED)
            return True

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            event = self._cancel.get(job_id)
            return event is not None and event.is_set()

    def progress(self, job_id: str) -> dict | None:
        with self._lock:
            live = self._live.get(job_id)
        return None if live is None else live.snapshot()

    def queued(self) -> int:
        """Jobs waiting to run."""
        with self._lock:
            return sum(job_id != self.running for job_id in self._cancel)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        from backend.cluster.session import leave

        try:
            self._take_jobs()
        finally:
            leave()  # a Ray cluster a job started here stops before this thread ends (cluster.session.leave)

    def _take_jobs(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id, job = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                cancel = self._cancel.get(job_id)
                if cancel is None or cancel.is_set():
                    continue
                self.running = job_id
            try:
                self._run_one(job_id, job)
            except Exception:  # noqa: BLE001 - e.g. the records' disk is full: the worker carries on
                log.exception("job %s could not be recorded", job_id)
            finally:
                with self._lock:
                    self.running = None
        while True:  # jobs still queued when the service stops
            try:
                job_id, _ = self._queue.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                if job_id in self._cancel:
                    self._finish(job_id, "interrupted", error=STOPPED)

    def _run_one(self, job_id: str, job) -> None:
        from backend.engine import run

        cancel, live = self._cancel[job_id], self._live[job_id]

        def report(stage: str, done: float, total: float) -> None:
            changed = stage != live.stage
            live.report(stage, done, total)
            if changed:  # kept with the record: an interrupted job shows how far it got
                try:
                    self.store.update(job_id, progress=live.snapshot())
                except Exception:  # noqa: BLE001 - a record that cannot be saved must not fail the job
                    log.exception("job %s: progress not saved", job_id)

        try:
            self.store.update(job_id, state="running", started=time.time())
            log.info("job %s: running", job_id)
            job = self.admit(job)
            result = run(job, report, lambda: cancel.is_set() or self._stopping.is_set(), self.models)
            record = result_record(job, result)
        except Cancelled:
            with self._lock:
                if cancel.is_set():
                    self._finish(job_id, "cancelled", error=CANCELLED)
                else:
                    self._finish(job_id, "interrupted", error=STOPPED)
        except UserInputError as error:
            with self._lock:
                self._finish(job_id, "failed", error=error.render(), error_fields=list(error.fields))
        except Exception as error:  # noqa: BLE001 - a job's failure must not stop the service
            log.exception("job %s failed", job_id)
            with self._lock:
                self._finish(job_id, "failed", error=f"internal error ({type(error).__name__}: {error}); the "
                                                     "service's log has the details.")
        else:
            with self._lock:
                self._finish(job_id, "done", result=record)

    def _finish(self, job_id: str, state: str, **values) -> None:
        """Record a final state (the caller holds the lock); the job leaves the live tables."""
        live = self._live.pop(job_id, None)
        self._cancel.pop(job_id, None)
        self.store.update(job_id, state=state, finished=time.time(),
                          progress=live.snapshot() if live is not None else None, **values)
        log.info("job %s: %s%s", job_id, state, f": {values['error']}" if values.get("error") else "")


def progress_unit(job) -> str:
    """What a job's progress counts."""
    if job.kind == "classify":
        return "tiles" if job.tile is not None else "images"
    if job.kind in ("refer", "ask"):
        return "queries"
    if job.kind == "batch":
        return "scenes"
    return "images" if job.kind == "retrieve" else "MP"


def result_record(job, result) -> dict:
    """What a finished job wrote and found, as stored with its record."""
    from backend.engine import DownloadResult
    from backend.zeroshot.classify import ClassifyResult
    from backend.zeroshot.retrieval import RetrieveResult

    if isinstance(result, DownloadResult):
        return {"name": result.name, "path": str(result.path), "bytes": result.bytes, "seconds": result.seconds}
    if isinstance(result, (ClassifyResult, RetrieveResult)):
        return _table_record(job, result)
    if job.kind in ("refer", "ask"):
        return _describe_record(job, result)
    if job.kind == "batch":
        return _batch_record(result)
    files = []
    for role in ("out_raster", "out_probs", "out", "preview"):
        path = getattr(job, role)
        if path is not None:
            files.append({"role": role, "path": str(path), "bytes": path.stat().st_size if path.exists() else None})
    areas = result.class_areas_m2 or [None] * len(result.class_names)
    classes = [{"index": index, "name": name, "synonyms": list(words), "pixels": pixels, "area_m2": area}
               for index, (name, words, pixels, area) in enumerate(zip(result.class_names, job.classes.synonyms,
                                                                        result.pixel_counts, areas))]
    return {"files": files, "classes": classes, "megapixels": result.megapixels, "seconds": result.seconds,
            "mp_per_s": result.megapixels_per_second, "windows": result.windows, "device": result.device,
            "polygon_count": result.polygon_count, "notes": result.notes}


def _table_record(job, result) -> dict:
    """A classify or retrieve result: its file, counts and first rows."""
    files = [{"role": "out", "path": str(path), "bytes": path.stat().st_size if path.exists() else None}
             for path in job.outputs]
    common = {"files": files, "skipped": result.skipped, "encoded": result.encoded, "cached": result.cached,
              "seconds": result.seconds, "device": result.device, "logit_scale": result.logit_scale,
              "notes": result.notes, "rows": [_plain(row) for row in result.rows[:MAX_STORED_ROWS]]}
    if job.kind == "retrieve":
        return {**common, "mode": result.mode, "query": result.query, "ranked": result.ranked}
    classes = [{"name": name, "synonyms": list(words), "count": count}
               for name, words, count in zip(result.class_names, job.classes.synonyms, result.class_counts)]
    return {**common, "unit": result.unit, "classes": classes, "items": result.items, "crs": result.crs,
            "row_count": len(result.rows)}


def _batch_record(result) -> dict:
    """A batch result: its counts, the manifest and its first rows."""
    import math

    speed = result.scenes_per_second
    manifest = {"role": "manifest", "path": str(result.manifest),
                "bytes": result.manifest.stat().st_size if result.manifest.exists() else None}
    return {"files": [manifest], "scenes": result.scenes, "done": result.done, "failed": result.failed,
            "skipped": result.skipped, "seconds": result.seconds, "scenes_per_s": None if math.isnan(speed) else speed,
            "where": result.where, "rows": result.rows[:MAX_STORED_ROWS], "row_count": len(result.rows)}


def _describe_record(job, result) -> dict:
    """A refer or ask result: MagCrop's choices, and the mask's files and figures or the answer."""
    common = {"prompt": result.prompt, "granularity": result.granularity,
              "granularity_probabilities": result.granularity_probabilities,
              "focus_bounds": list(result.focus_bounds), "crops": [list(box) for box in result.crops],
              "crs": result.crs, "seconds": result.seconds, "device": result.device, "notes": result.notes}
    roles = (("out", job.out),) if job.kind == "ask" else (("out_raster", job.out_raster), ("out", job.out))
    files = [{"role": role, "path": str(path), "bytes": path.stat().st_size if path.exists() else None}
             for role, path in roles if path is not None]
    if job.kind == "ask":
        return {**common, "answer": result.answer, "phrases": result.phrases, "files": files,
                "polygon_count": result.polygon_count}
    return {**common, "files": files, "score": result.score, "pixel_count": result.pixel_count,
            "area_m2": result.area_m2, "polygon_count": result.polygon_count}


def _plain(row: dict) -> dict:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in row.items()}
