"""Running a batch: each scene to be done segmented by ``engine.run``, its row saved in the manifest as it ends.

Three ways give the same outputs: in this process (``workers`` 1, the resident models
reused), in ``workers`` processes on this machine (each keeps its model between scenes), or
on a Ray cluster (``ray``: actors that keep the model loaded; a worker that dies is restarted
and its scene run again). A scene that fails, whatever the reason, is a failed row with one
sentence; the batch goes on. A cancel stops between scenes: finished scenes stay recorded.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from backend.batch.inputs import Scene, is_remote
from backend.batch.job import BatchJob
from backend.batch.manifest import DONE, FAILED, Manifest, scene_row
from backend.cluster.session import POLL_SECONDS, RETRIES
from backend.errors import Cancelled, UserInputError, first_line
from backend.jobs import SegmentJob

log = logging.getLogger("rsov")

BROKEN_WAIT_SECONDS = 5.0  # for a broken process pool to fail the futures it held
LOCK_NAME = ".batch.lock"
Record = Callable[[dict], None]


@dataclass
class BatchResult:
    scenes: int  # named by the inputs
    done: int  # segmented by this run
    failed: int
    skipped: int  # done by an earlier run
    seconds: float
    manifest: Path
    where: str  # how the scenes ran: this process, N processes, or the Ray workers
    rows: list[dict] = field(default_factory=list)  # the manifest's rows of the inputs' scenes, in input order

    @property
    def scenes_per_second(self) -> float:
        ran = self.done + self.failed
        return ran / self.seconds if self.seconds > 0 and ran else float("nan")

    @property
    def outputs(self) -> list[Path]:
        return [self.manifest]


def run_batch(job: BatchJob, progress: Callable[[str, float, float], None] | None = None,
              should_stop: Callable[[], bool] | None = None, models=None) -> BatchResult:
    """Segment every scene of ``job`` not done yet; ``progress("segmenting", scenes done, scenes)``."""
    from backend.raster.files import remove_debris

    scenes = job.checked()
    job.out_dir.mkdir(parents=True, exist_ok=True)
    with _only_batch_in(job.out_dir):
        manifest, settings = Manifest.load(job.manifest_path), job.settings
        todo = [scene for scene in scenes if not manifest.finished(scene, job.segment_job(scene).outputs, settings)]
        remove_debris(job.out_dir)  # scratch folders of a batch killed on this host
        skipped, counts = len(scenes) - len(todo), {DONE: 0, FAILED: 0}
        report = progress or (lambda stage, done, total: None)
        report("segmenting", skipped, len(scenes))

        def record(row: dict) -> None:
            manifest.record({**row, "settings": settings})
            counts[row["status"]] += 1
            report("segmenting", skipped + sum(counts.values()), len(scenes))

        started = time.perf_counter()
        try:
            where = _run(job, todo, record, should_stop, models) if todo else "nothing to run"
        finally:
            manifest.order([scene.name for scene in scenes])
            manifest.save()
    rows = [manifest.rows[scene.name] for scene in scenes if scene.name in manifest.rows]
    return BatchResult(len(scenes), counts[DONE], counts[FAILED], skipped, time.perf_counter() - started,
                       job.manifest_path, where, rows)


def _run(job: BatchJob, scenes: list[Scene], record: Record, should_stop, models) -> str:
    if job.ray is not None:
        return _on_ray(job, scenes, record, should_stop)
    if job.workers > 1 and len(scenes) > 1:
        return _in_processes(job, scenes, record, should_stop)
    for scene in scenes:
        _stop_if_asked(should_stop)
        record(run_scene(scene, job.segment_job(scene), should_stop, models))
    return "this process"


def run_scene(scene: Scene, scene_job: SegmentJob, should_stop=None, models=None) -> dict:
    """Segment one scene; its manifest row, done or failed (never an exception but a cancel)."""
    import rasterio

    from backend.engine import run
    from backend.zeroshot.quiet import libraries_quiet

    started = time.perf_counter()
    # a remote scene: no listing of its folder for sidecar files (a request each), unless GDAL is told otherwise
    remote = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"} if is_remote(scene.source) else {}
    try:
        with libraries_quiet(), rasterio.Env(**{name: value for name, value in remote.items()
                                                if name not in os.environ}):
            result = run(scene_job, None, should_stop, models)
    except Cancelled:
        raise
    except UserInputError as error:  # the job's sentence, with the source as given (pathlib folds URLs' //)
        sentence = str(error).replace(str(scene_job.raster), scene.source)
        return scene_row(scene, time.perf_counter() - started, error=sentence)
    except Exception as error:  # noqa: BLE001 - one scene's failure must not stop the batch
        log.debug("scene %s failed", scene.name, exc_info=True)
        kind, first = type(error).__name__, first_line(error, 200)
        return scene_row(scene, time.perf_counter() - started,
                         error=f"internal error ({kind}{': ' + first if first != kind else ''}); run the "
                               "scene alone with rsov segment to see the details.")
    return scene_row(scene, time.perf_counter() - started, result)


def _stop_if_asked(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


@contextlib.contextmanager
def _only_batch_in(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s batch lock: two batches writing one manifest would lose each other's rows."""
    descriptor = os.open(folder / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserInputError(f"{{out_dir}} {folder} is in use by another batch; wait for it to finish, or give "
                                 "another output folder.", "out_dir") from None
        yield
    finally:
        os.close(descriptor)


# -- processes on this machine ---------------------------------------------------------------
_stop_event = None  # a worker process's copy of the batch's stop event


def _start_process(threads: int, stop) -> None:
    import signal

    import torch

    global _stop_event
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle: it sets ``stop``
    torch.set_num_threads(threads)
    _stop_event = stop


def _process_scene(scene: Scene, scene_job) -> dict:
    return run_scene(scene, scene_job, _stop_event.is_set)


def _in_processes(job: BatchJob, scenes: list[Scene], record: Record, should_stop) -> str:
    """The scenes on ``job.workers`` spawned processes; when one dies, the scenes the processes held fail and
    new processes take the rest."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    count = min(job.workers, len(scenes))
    threads = max(1, (os.cpu_count() or 1) // count)
    context = multiprocessing.get_context("spawn")  # no forked copy of this process's threads and GDAL state
    stop = context.Event()
    waiting = list(scenes)
    while waiting:
        with ProcessPoolExecutor(count, mp_context=context, initializer=_start_process,
                                 initargs=(threads, stop)) as pool:
            try:
                _pool_round(job, pool, count, waiting, record, should_stop)
            except BaseException:
                stop.set()  # before the pool waits for its processes: their scenes stop, writing nothing
                raise
    return f"{count} processes of {threads} thread{'s' * (threads > 1)}"


def _pool_round(job: BatchJob, pool, count: int, waiting: list[Scene], record: Record, should_stop) -> None:
    """Scenes from ``waiting`` on ``pool`` until none is left or the pool breaks (a process died)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    running: dict = {}
    while waiting or running:
        while waiting and len(running) < count:  # no more queued than run: a cancel stops soon
            try:
                running[pool.submit(_process_scene, waiting[0], job.segment_job(waiting[0]))] = waiting[0]
            except BrokenProcessPool:  # broken before its futures say so: they do in a moment
                if not running:
                    return
                break
            waiting.pop(0)
        finished, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        _stop_if_asked(should_stop)
        if any(_broken(future) for future in finished):
            # which scene's process died is unknown: each scene that had not finished fails, the others count
            wait(running, timeout=BROKEN_WAIT_SECONDS)  # the pool fails the rest of its futures in a moment
            for future, scene in running.items():
                record(_lost(scene, "a worker process of the batch died") if _broken(future) else future.result())
            return
        for future in finished:
            del running[future]
            record(future.result())


def _broken(future) -> bool:
    """True for a future of a process pool that broke before it finished."""
    from concurrent.futures.process import BrokenProcessPool

    return not future.done() or isinstance(future.exception(), BrokenProcessPool)


def _lost(scene: Scene, what: str) -> dict:
    return scene_row(scene, 0.0, error=f"{what} (out of memory, or killed) while this scene was segmented; run "
                                       "the batch again to retry it, or with fewer workers.")


# -- a Ray cluster ------------------------------------------------------------------------------
class SceneWorker:
    """A Ray actor: scenes one after another, the model loaded by the first and kept."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)

    def run(self, scene: Scene, scene_job) -> dict:
        return run_scene(scene, scene_job)


def _on_ray(job: BatchJob, scenes: list[Scene], record: Record, should_stop) -> str:
    """The scenes on the actors of the cluster named by ``job.ray``, each actor given the next scene when it
    is free. The outputs go straight to ``out_dir``: storage every node mounts."""
    from ray.exceptions import RayError

    from backend.cluster.session import absolute_paths, connect, plan_workers, worker_actor

    ray = connect(job.ray)
    workers = plan_workers(ray, job.ray_workers, job.device)
    actor = worker_actor(ray, SceneWorker, workers)
    idle = [actor.remote(workers.threads) for _ in range(min(workers.count, len(scenes)))]
    actors, waiting, running = list(idle), list(scenes), {}
    try:
        while waiting or running:
            while waiting and idle:
                worker, scene = idle.pop(0), waiting.pop(0)
                running[worker.run.remote(scene, absolute_paths(job.segment_job(scene)))] = (worker, scene)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            _stop_if_asked(should_stop)
            for ref in ready:
                worker, scene = running.pop(ref)
                try:
                    record(ray.get(ref))
                except RayError:  # the worker died more than RETRIES times on it: a new one for the next scene
                    record(_lost(scene, f"the Ray worker running it died {RETRIES + 1} times"))
                    worker = actor.remote(workers.threads)
                    actors.append(worker)
                idle.append(worker)
    finally:
        for each in actors:
            # a scene cut short leaves its scratch folder in out_dir: a later batch removes it when it runs on
            # the host that made it (remove_debris); one made on another node stays, to be removed by hand
            ray.kill(each)
    return workers.describe()

