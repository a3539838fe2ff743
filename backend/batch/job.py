"""``BatchJob``: segment every scene ``inputs`` names into ``out_dir``, one output set per scene.

Each scene is segmented by the ``SegmentJob`` that ``segment_job(scene)`` builds: the batch's
options for every scene are SegmentJob's own (``SCENE_FIELDS``: reading, SAR, polygons, model,
running), with the same names, defaults and checks; the outputs are named after the scene:
``<name>.tif`` (classes), ``<name>.<vector_format>`` (polygons), ``<name>-probs.tif``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import ClassVar

from backend.batch.inputs import Scene, is_remote, list_scenes
from backend.errors import UserInputError
from backend.jobs import Job, SegmentJob, check_output
from backend.prompts import ClassList

# SegmentJob's fields that name one raster's inputs and outputs, or run one raster on a cluster
SEGMENT_ONLY = ("raster", "classes", "out_raster", "out", "out_probs", "preview", "overwrite", "ray", "ray_workers")
SCENE_FIELDS = tuple(each.name for each in fields(SegmentJob) if each.name not in SEGMENT_ONLY)
OUTPUT_OPTIONS = ("vector_format", "probs", "no_polygons")
VECTOR_FORMATS = ("gpkg", "shp", "fgb", "geojson")
MANIFEST_FORMATS = ("csv", "parquet")

# SegmentJob's per-scene options, keyword-only, with SegmentJob's defaults: one list of options for both
SceneOptions = make_dataclass(
    "SceneOptions", [(each.name, each.type, field(default=each.default)) for each in fields(SegmentJob)
                     if each.name in SCENE_FIELDS],
    bases=(Job,), frozen=True, kw_only=True)
SceneOptions.__module__ = __name__  # pickled by name into worker processes


@dataclass(frozen=True)
class BatchJob(SceneOptions):
    """Segment each scene of ``inputs`` into ``classes``; outputs and a manifest in ``out_dir``."""

    kind: ClassVar[str] = "batch"

    inputs: str  # a folder, a glob, a .txt or .csv list of paths or URLs, or a STAC ItemCollection .json
    classes: ClassList  # or "a; b,c" (classes by ';', synonyms by ','), or ["a", "b,c"]
    out_dir: Path
    asset: str | None = None  # STAC: the asset key (default: visual, else each item's one GeoTIFF)
    manifest_format: str = "csv"  # csv or parquet: out_dir/manifest.csv or .parquet
    vector_format: str = "gpkg"  # the polygons: gpkg, shp, fgb or geojson
    probs: bool = False  # also <name>-probs.tif, the probability raster
    no_polygons: bool = False  # the class raster only
    workers: int = 1  # scenes at once on this machine, each in its own process (without ray)
    ray: str | None = None  # scenes on a Ray cluster: auto or HOST:6379 / ray://HOST:10001
    ray_workers: int | None = None  # default: one per GPU, else one per two CPUs

    def __post_init__(self) -> None:
        from backend.jobs import class_list

        super().__post_init__()
        object.__setattr__(self, "classes", class_list(self.classes))

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / f"manifest.{self.manifest_format}"

    @property
    def outputs(self) -> list[Path]:
        """The manifest: the scenes' outputs are beside it, named in it."""
        return [self.manifest_path]

    @property
    def settings(self) -> str:
        """A short hash of what makes each scene's outputs (classes, per-scene and output options): a scene done
        with other settings is run again."""
        values = {"classes": self.classes.synonyms,
                  **{name: getattr(self, name) for name in (*SCENE_FIELDS, *OUTPUT_OPTIONS)}}
        text = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def segment_job(self, scene: Scene) -> SegmentJob:
        """The job that segments ``scene``; it replaces that scene's earlier outputs (the batch owns them)."""
        stem = f"{self.out_dir}/{scene.name}"
        return SegmentJob(scene.source, self.classes, out_raster=f"{stem}.tif",
                          out=None if self.no_polygons else f"{stem}.{self.vector_format}",
                          out_probs=f"{stem}-probs.tif" if self.probs else None, overwrite=True,
                          **{name: getattr(self, name) for name in SCENE_FIELDS})

    def validate(self) -> None:
        """Raise ``UserInputError`` naming the field of the first problem found; nothing is written.

        Each scene's raster is opened when it runs: a bad one fails its row, not the batch.
        """
        self.checked()

    def checked(self) -> list[Scene]:
        """Validate, and return the scenes to segment: those inside ``out_dir`` are left out (outputs never
        replace inputs, and a run's outputs are no scenes of the next)."""
        from backend.raster.source import check_read_options

        self._check_own()
        probe = self.segment_job(Scene("scene", "scene.tif"))
        probe.checked_model()  # classes, model and every per-scene option
        check_read_options(probe.read_options())
        check_output("out_dir", self.manifest_path, [], overwrite=True)
        scenes = [scene for scene in list_scenes(self.inputs, self.asset) if not self._writes_into(scene)]
        if not scenes:
            raise UserInputError(f"{{inputs}} {self.inputs} names only files inside {{out_dir}} {self.out_dir}; "
                                 "give other inputs or another output folder.", "inputs", "out_dir")
        return scenes

    def _check_own(self) -> None:
        for name, allowed in (("vector_format", VECTOR_FORMATS), ("manifest_format", MANIFEST_FORMATS)):
            if getattr(self, name) not in allowed:
                raise UserInputError(f"{{{name}}} {getattr(self, name)!r} is not one of {', '.join(allowed)}; give "
                                     "one of those.", name)
        if self.workers < 1:
            raise UserInputError(f"{{workers}} {self.workers} must be at least 1 process.", "workers")
        from backend.cluster.session import check_address

        check_address(self.ray, self.ray_workers)
        if self.ray is not None and self.workers > 1:
            raise UserInputError("{workers} sets processes on this machine and {ray} runs the scenes on a cluster; "
                                 "give one of the two ({ray_workers} sets the cluster's workers).",
                                 "workers", "ray", "ray_workers")
        if self.manifest_format == "parquet":
            from backend.batch.manifest import import_pyarrow

            import_pyarrow()

    def _writes_into(self, scene: Scene) -> bool:
        """True for a scene file inside ``out_dir`` (an earlier run's output, when the inputs hold out_dir)."""
        if is_remote(scene.source):
            return False
        return Path(scene.source).resolve().is_relative_to(self.out_dir.resolve())
