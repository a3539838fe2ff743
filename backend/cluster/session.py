"""Joining a Ray cluster, and how many model workers it holds. Ray is optional: ``rs-openvocab[cluster]``.

``address`` is what ``--ray`` takes: ``auto`` joins the cluster this machine belongs to (``ray start``
ran here) and otherwise starts a private one on this machine; anything else is a cluster's address
(``HOST:6379``, or ``ray://HOST:10001`` for Ray Client).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

from backend.errors import UserInputError, first_line

log = logging.getLogger("rsov")

LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # workers pass paths, records and polygons, not rasters (spilled if need be)
RETRIES = 3  # restarts of a dead worker, and runs of the task it held
POLL_SECONDS = 0.25  # how often a driver looks at its tasks, progress and cancel
INSTALL_HINT = "install it with: pip install 'rs-openvocab[cluster]'"


def import_ray():
    """The ``ray`` module, or one sentence on how to install it."""
    # Ray's core worker would otherwise install a C++ SIGTERM handler that aborts the process: a stopped
    # `rsov serve` or `rsov segment --ray` must clean up and exit as it does without Ray (read at import)
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise UserInputError("{ray} needs Ray, which is not installed; " + INSTALL_HINT + ".", "ray") from None
    for name in RAY_NOTICE_LOGGERS:
        logging.getLogger(name).addFilter(_without_ray_notices)  # a filter already there is not added again
    return ray


@dataclass(frozen=True)
class Workers:
    """How many model workers to start and what each one reserves."""

    count: int
    gpus: float  # per worker: 1 on a GPU cluster, else 0
    cpus: float  # per worker
    threads: int  # torch threads per worker (CPU workers)

    def actor_options(self) -> dict:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def describe(self, count: int | None = None) -> str:
        """"2 Ray workers on CPU (1 thread each)"; ``count``: those used, if fewer."""
        count = self.count if count is None else count
        kind = "GPU" if self.gpus else f"CPU ({self.threads} thread{'s' * (self.threads > 1)} each)"
        return f"{count} Ray worker{'s' * (count > 1)} on {kind}"


def check_address(address: str | None, workers: int | None) -> None:
    """``--ray`` and ``--ray-workers`` as given, checked without Ray: one sentence naming the fix."""
    import re

    if workers is not None and workers < 1:
        raise UserInputError(f"{{ray_workers}} {workers} must be at least 1.", "ray_workers")
    if address is None:
        if workers is not None:
            raise UserInputError("{ray_workers} is the number of workers on a Ray cluster; give {ray} auto (or the "
                                 "cluster's address) too.", "ray_workers", "ray")
        return
    if address != "auto" and not re.fullmatch(r"(ray://)?[\w.\-\[\]:]+:\d{1,5}", address.strip()):
        raise UserInputError(f"{{ray}} {address!r} is not a cluster address; give auto, HOST:6379 or "
                             "ray://HOST:10001.", "ray")


def _init(ray, **options) -> None:
    """``ray.init``, keeping this process's SIGTERM handler, which Ray replaces with ``sys.exit`` in the main thread
    (the CLI's handler stops a run cleanly and says so)."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(**options)
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


RAY_NOTICES = ("Token authentication is enabled", "SIGTERM handler is not set")
RAY_NOTICE_LOGGERS = ("ray._private.authentication.authentication_token_setup", "ray._private.worker")


def _without_ray_notices(record: logging.LogRecord) -> bool:
    """Drop Ray's notices that say nothing to an rsov user: token authentication is on (Ray's default, and right
    for the clusters rsov starts; the notice invites turning it off), and no SIGTERM handler from a service's job
    thread (the service handles SIGTERM itself). Ray's warning that authentication is off still shows."""
    return not record.getMessage().startswith(RAY_NOTICES)


_joined: list[str] = []  # the address this process joined (the service runs many jobs in one process)


def connect(address: str, local_cpus: int | None = None):
    """Join (or start) the cluster named by ``address``; returns the ``ray`` module.

    Joining the same cluster again is free; ``auto`` takes whichever cluster this process is
    on, also one a script or test started itself. Another address leaves the cluster this
    function joined first (``rsov serve`` keeps one between jobs).
    """
    ray = import_ray()
    check_address(address, None)
    if ray.is_initialized():
        if address == "auto" or address in _joined or not _joined:
            return ray
        ray.shutdown()
    _joined.clear()
    _joined.append(address)
    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address == "auto":
        try:
            _init(ray, address="auto", **options)
            log.info("joined the Ray cluster on this machine")
            return ray
        except ConnectionError:
            pass  # none runs here: a private one for this process
        _init(ray, num_cpus=local_cpus or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
              **options)
        log.info("started a local Ray cluster with %s CPUs", int(ray.cluster_resources().get("CPU", 0)))
        return ray
    try:
        _init(ray, address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        _joined.clear()
        raise UserInputError(f"{{ray}} {address} cannot be reached ({first_line(error)}); start the cluster with "
                             "'ray start --head' (docs/scale.md) or give --ray auto.", "ray") from None
    return ray


def leave() -> None:
    """Leave the cluster this process joined, stopping the private one it started; nothing if Ray never ran.

    Call it from the thread that joined: Ray's local processes are killed outright when the thread that started
    them ends (Linux's parent-death signal is per thread), which orphans their agents.
    """
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    _joined.clear()


def plan_workers(ray, asked: int | None, device: str = "auto") -> Workers:
    """``asked`` workers (default: one per GPU, else one per two CPUs), sharing the cluster's resources."""
    check_address(None if asked is None else "auto", asked)
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    if gpus and device != "cpu":
        count = asked or gpus
        if count > gpus:
            raise UserInputError(f"{{ray_workers}} {count} is more than the cluster's {gpus} GPUs; give at most "
                                 f"{gpus}, or {{device}} cpu.", "ray_workers", "device")
        return Workers(count, 1.0, 1.0 if cpus >= count else 0.0, 1)
    if cpus < 1:
        raise UserInputError("the Ray cluster has no CPU or GPU to run on; add a node with 'ray start'.", "ray")
    count = asked or max(1, cpus // 2)
    if count > cpus:
        raise UserInputError(f"{{ray_workers}} {count} is more than the cluster's {cpus} CPUs; give at most {cpus}.",
                             "ray_workers")
    threads = max(1, cpus // count)
    return Workers(count, 0.0, float(threads), threads)


def worker_actor(ray, cls: type, workers: Workers):
    """``cls`` as a Ray actor class holding ``workers``' resources; one that dies is restarted and its task run
    again (``RETRIES`` times)."""
    return ray.remote(cls).options(**workers.actor_options(), max_restarts=RETRIES, max_task_retries=RETRIES)


def absolute_paths(job):
    """A SegmentJob with absolute file paths (raster, outputs, AOI and weights files; GDAL's /vsi paths as they
    are): Ray workers need not share the driver's working folder."""
    import dataclasses
    from pathlib import Path

    from backend.jobs import OUTPUT_FIELDS
    from backend.raster.aoi import is_file

    changes = {name: Path(getattr(job, name)).absolute() for name in ("raster", *OUTPUT_FIELDS)
               if getattr(job, name) is not None and not str(getattr(job, name)).startswith("/vsi")}
    for name in ("aoi", "clip_weights", "upsampler_weights"):
        value = getattr(job, name)
        if value is not None and is_file(value):
            changes[name] = str(Path(value).expanduser().absolute())
    return dataclasses.replace(job, **changes)
