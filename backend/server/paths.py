"""Which files a request may name: every path absolute, outputs under the allowed roots.

No request can make the service write, replace or delete a file outside those roots, nor
in the service's own folders (its records, weights and caches). Whether inputs exist and
can be read is the job's own validation, with the sentences the CLI gives.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from backend.batch.job import BatchJob
from backend.errors import UserInputError
from backend.jobs import OUTPUT_FIELDS, ClassifyJob, DescribeJob, RetrieveJob, SegmentJob
from backend.raster.aoi import is_file
from backend.weights import REGISTRY

SERVICE_FOLDERS = ("server", "weights", "cache")  # under RSOV_HOME: never an output's place


class PathPolicy:
    """Resolves a job's paths and checks its outputs against the roots they may go under."""

    def __init__(self, output_roots: tuple[Path, ...], home: Path) -> None:
        self.output_roots = tuple(root.expanduser().resolve() for root in output_roots)
        self.home = home.expanduser().resolve()

    def roots_for(self, raster: Path) -> tuple[Path, ...]:
        """``--output-root`` folders, or by default the input's folder and ``RSOV_HOME``."""
        return self.output_roots or (raster.parent, self.home)

    def admit(self, job):
        """``job`` with every path absolute and resolved; UserInputError for a path it may not use."""
        if isinstance(job, (ClassifyJob, RetrieveJob)):
            return self._admit_clip_job(job)
        if isinstance(job, DescribeJob):
            return self._admit_describe_job(job)
        if isinstance(job, BatchJob):
            return self._admit_batch_job(job)
        if not isinstance(job, SegmentJob):
            return job  # no paths: a download writes only into the service's weights cache
        changes: dict[str, object] = {"raster": _resolved("raster", job.raster), **_model_files(job)}
        roots = self.roots_for(changes["raster"])
        for name in OUTPUT_FIELDS:
            path = getattr(job, name)
            if path is not None:
                changes[name] = self._output(name, path, roots)
        return dataclasses.replace(job, **changes)

    def _admit_batch_job(self, job):
        """A batch job: its inputs (a folder, glob, list or STAC file), AOI and weights files, and ``out_dir``."""
        from backend.batch.inputs import base_folder

        inputs = _resolved("inputs", Path(job.inputs))  # a glob's pattern characters are kept as they are
        changes: dict[str, object] = {"inputs": str(inputs), **_model_files(job)}
        roots = self.output_roots or (base_folder(str(inputs)), self.home)
        changes["out_dir"] = self._output("out_dir", job.out_dir, roots)
        return dataclasses.replace(job, **changes)

    def _admit_describe_job(self, job):
        """A refer or ask job: its raster, AOI file, checkpoint and (refer) outputs."""
        changes: dict[str, object] = {"raster": _resolved("raster", job.raster)}
        if job.aoi is not None and is_file(job.aoi):
            changes["aoi"] = str(_resolved("aoi", Path(job.aoi)))
        if job.checkpoint not in REGISTRY:
            changes["checkpoint"] = str(_resolved("checkpoint", Path(job.checkpoint)))
        roots = self.roots_for(changes["raster"])
        for name in ("out", "out_raster"):
            path = getattr(job, name, None)
            if path is not None:
                changes[name] = self._output(name, path, roots)
        return dataclasses.replace(job, **changes)

    def _admit_clip_job(self, job):
        """A classify or retrieve job: its input image or folder, its weights file and ``out``."""
        inputs = {name: _resolved(name, getattr(job, name)) for name in ("input", "folder", "image")
                  if getattr(job, name, None) is not None}
        changes: dict[str, object] = dict(inputs)
        if job.clip_weights is not None and job.clip_weights not in REGISTRY:
            changes["clip_weights"] = str(_resolved("clip_weights", Path(job.clip_weights)))
        if job.out is not None:
            given = next(iter(inputs.values()), None)
            default = (self.home,) if given is None else (given if given.is_dir() else given.parent, self.home)
            changes["out"] = self._output("out", job.out, self.output_roots or default)
        return dataclasses.replace(job, **changes)

    def _output(self, name: str, path: Path, roots: tuple[Path, ...]) -> Path:
        resolved = _resolved(name, path)  # through every link: a link that leads out is refused
        if not any(resolved.is_relative_to(root) for root in roots):
            raise UserInputError(f"{{{name}}} {path} is outside the folders this service may write to "
                                 f"({', '.join(map(str, roots))}); write under one of them, or start the service "
                                 "with --output-root.", name)
        for folder in SERVICE_FOLDERS:
            if resolved.is_relative_to(self.home / folder):
                raise UserInputError(f"{{{name}}} {path} is inside the service's own folder {self.home / folder}; "
                                     "write somewhere else.", name)
        return resolved


def _model_files(job) -> dict[str, str]:
    """A segment or batch job's AOI file and weights files, resolved (registry names stay names)."""
    changes = {}
    if job.aoi is not None and is_file(job.aoi):
        changes["aoi"] = str(_resolved("aoi", Path(job.aoi)))
    for name in ("clip_weights", "upsampler_weights"):
        value = getattr(job, name)
        if value is not None and value not in REGISTRY:
            changes[name] = str(_resolved(name, Path(value)))
    return changes


def _resolved(name: str, path: Path) -> Path:
    if not path.is_absolute():
        raise UserInputError(f"{{{name}}} {str(path)!r} is not an absolute path; the service resolves no relative "
                             "paths, give the full path on the service's machine.", name)
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as error:  # a link loop, a name too long
        raise UserInputError(f"{{{name}}} {path} cannot be resolved ({error}); give another path.", name) from None
