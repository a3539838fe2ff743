"""Which files a request may name: inputs are readable files given by absolute path, outputs stay under
the allowed roots. No request can make the service write, replace or delete a file outside them."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from backend.errors import UserInputError
from backend.jobs import SegmentJob
from backend.raster.aoi import is_file
from backend.weights import REGISTRY


class PathPolicy:
    """Resolves a job's paths and checks them against the roots its outputs may go under."""

    def __init__(self, output_roots: tuple[Path, ...], home: Path) -> None:
        self.output_roots = tuple(root.expanduser().resolve() for root in output_roots)
        self.home = home.expanduser().resolve()

    def roots_for(self, raster: Path) -> tuple[Path, ...]:
        """``--output-root`` folders, or by default the input's folder and ``RSOV_HOME``."""
        return self.output_roots or (raster.parent, self.home)

    def admit(self, job: SegmentJob) -> SegmentJob:
        """``job`` with every path absolute and resolved; UserInputError for a path it may not use."""
        changes: dict[str, object] = {"raster": _input_file("raster", job.raster)}
        if job.aoi is not None and is_file(job.aoi):
            changes["aoi"] = str(_input_file("aoi", Path(job.aoi)))
        for name in ("clip_weights", "upsampler_weights"):
            value = getattr(job, name)
            if value is not None and value not in REGISTRY:
                changes[name] = str(_input_file(name, Path(value)))
        roots = self.roots_for(changes["raster"])
        for name in ("out_raster", "out_probs", "out", "preview"):
            path = getattr(job, name)
            if path is not None:
                changes[name] = _output_file(name, path, roots)
        return dataclasses.replace(job, **changes)


def _absolute(name: str, path: Path) -> Path:
    if not path.is_absolute():
        raise UserInputError(f"{{{name}}} {str(path)!r} is not an absolute path; the service resolves no relative "
                             "paths, give the full path on the service's machine.", name)
    return path


def _input_file(name: str, path: Path) -> Path:
    resolved = _absolute(name, path).resolve()
    if not resolved.is_file():
        raise UserInputError(f"{{{name}}} {path} is not a file on the service's machine; give an existing file "
                             "(or upload it with POST /v1/uploads).", name)
    if not os.access(resolved, os.R_OK):
        raise UserInputError(f"{{{name}}} {path} cannot be read by the service; make it readable.", name)
    return resolved


def _output_file(name: str, path: Path, roots: tuple[Path, ...]) -> Path:
    resolved = _absolute(name, path).resolve()  # through every link: a link that leads out is refused
    if not any(resolved.is_relative_to(root) for root in roots):
        raise UserInputError(f"{{{name}}} {path} is outside the folders this service may write to "
                             f"({', '.join(map(str, roots))}); write under one of them, or start the service "
                             "with --output-root.", name)
    return resolved
