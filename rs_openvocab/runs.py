"""One segmentation run as a value, and the QgsTask that carries it out without blocking QGIS.

``RunPlan`` is everything the dock or the Processing algorithm decided, already in the
raster's CRS. ``execute`` does the work in any thread (render if needed, upload if the
backend is remote, submit, follow, fetch the result); ``SegmentTask`` wraps it for the task
manager, and delivers the outcome through a plain callback: the task's own C++ object is
gone once the task manager is done with it.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsCoordinateTransformContext,
                       QgsGeometry, QgsMapLayer, QgsProject, QgsRasterLayer, QgsRectangle, QgsTask,
                       QgsVectorFileWriter, QgsVectorLayer)

from rs_openvocab.areas import Area, clipped_to_layer, crs_reference, working_crs
from rs_openvocab.client import BackendClient, BackendError, JobCancelled, follow_job
from rs_openvocab.translation import tr
from rs_openvocab.layer_info import file_path
from rs_openvocab.rendering import RenderCancelled, render_to_geotiff
from rs_openvocab.results import ResultError, short_prompt, write_vector


@dataclass
class Rendering:
    """A layer to draw into a GeoTIFF first: a clone made in the main thread."""

    layer: QgsMapLayer
    extent: QgsRectangle
    crs: QgsCoordinateReferenceSystem
    gsd: float


@dataclass
class RunPlan:
    """A segment run (the classes named); ``DescribePlan`` is a refer run on the same layer, area and outputs."""

    kind: ClassVar[str] = "segment"

    layer_name: str
    raster: Path | None  # a file the backend reads, or None with ``rendering``
    area: Area  # in the CRS of what the backend reads
    classes: list[str]  # one class per entry, synonyms by commas (segment)
    output: Path  # the polygons: .gpkg (or .shp, .geojson, .fgb)
    class_raster: Path | None = None  # the raster too: classes (segment) or the mask (refer), GeoTIFF
    options: dict = field(default_factory=dict)  # more request fields: model, window, prob_threshold, ...
    rendering: Rendering | None = None

    def job_fields(self) -> dict:
        """The request fields of this kind of run (the raster, area and outputs aside)."""
        return {"kind": "segment", "classes": list(self.classes)}

    def request(self, raster: str, out: str, out_raster: str | None) -> dict:
        body = {**self.job_fields(), "raster": raster, "out": out, **self.options}
        if out_raster:
            body["out_raster"] = out_raster
        if self.area.geometry is not None:
            body["aoi"] = self.area.geometry.asWkt(8)
            body["aoi_crs"] = crs_reference(self.area.crs)
        return body

    def task_title(self) -> str:
        return tr("Segmenting {0}").format(self.layer_name)

    def nothing_found(self) -> str:
        """The sentence for a run that found no polygons (a remote backend sends none back to write)."""
        return tr("The backend found no polygons of these classes in the area; nothing was written.")


@dataclass
class DescribePlan(RunPlan):
    """A refer run: the mask of what ``prompt`` describes, by the GeoMag ``checkpoint`` (a path the backend reads)."""

    kind: ClassVar[str] = "refer"

    prompt: str = ""
    checkpoint: str = ""

    def job_fields(self) -> dict:
        return {"kind": "refer", "prompt": self.prompt, "checkpoint": self.checkpoint}

    def task_title(self) -> str:
        return tr("Finding “{0}” in {1}").format(short_prompt(self.prompt), self.layer_name)

    def nothing_found(self) -> str:
        return tr("The model found nothing that “{0}” describes in the area; nothing was written.").format(
            short_prompt(self.prompt))


MODALITIES = ("auto", "optical", "sar")
SPECKLE_FILTERS = ("none", "lee", "refined-lee")


def imagery_options(modality: str, speckle: str, rendered: bool) -> dict:
    """Request fields for the kind of imagery: a file is converted by the backend (SAR: dB, stretch,
    speckle filter); a drawn layer is already the 8-bit image QGIS shows, its grey in band 1 for SAR."""
    options = {} if modality == "auto" else {"modality": modality}
    if rendered:
        if modality == "sar":
            options["bands"] = [1]
    elif speckle != "none" and modality != "optical":
        options["speckle"] = speckle
    return options


def layer_input(layer: QgsRasterLayer, area: Area, render_gsd: float,
                clone: bool = True) -> tuple[Area, Rendering | None]:
    """The area in the CRS of what the backend reads, and how to draw the layer first if it is not a file.

    A file goes by its path in its own CRS; anything else is drawn in a CRS whose metres are
    ground metres (see ``working_crs``), ``clone``d here in the main thread for the task's.
    """
    if file_path(layer) is not None:
        return clipped_to_layer(area, layer), None
    whole = area.geometry is None
    local = Area(QgsGeometry.fromRect(layer.extent()), layer.crs()) if whole else clipped_to_layer(area, layer)
    to_wgs84 = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem("EPSG:4326"),
                                      QgsProject.instance().transformContext())
    crs = working_crs(layer.crs(), to_wgs84.transformBoundingBox(local.geometry.boundingBox()))
    target = local.transformed(crs)
    rendering = Rendering(layer.clone() if clone else layer, target.geometry.boundingBox(), crs, render_gsd)
    return (Area(None, crs) if whole else target), rendering


@dataclass
class RunOutcome:
    plan: RunPlan
    result: dict | None = None
    error: BackendError | None = None
    cancelled: bool = False


def execute(client: BackendClient, plan: RunPlan, on_progress: Callable[[float], None],
            is_cancelled: Callable[[], bool]) -> dict:
    """Run ``plan`` to the end; the job's result. Raises BackendError/JobCancelled; leaves no partial file."""
    scratch = Path(tempfile.mkdtemp(prefix="rs-openvocab-"))
    uploaded = None
    try:
        raster = plan.raster
        share = 0.0
        if plan.rendering is not None:
            share = 10.0
            render = plan.rendering
            try:
                raster = render_to_geotiff(render.layer, render.extent, render.crs, render.gsd,
                                           scratch / "layer.tif", lambda p: on_progress(p * share / 100), is_cancelled)
            except RenderCancelled:
                raise JobCancelled(tr("The run was cancelled; nothing was written.")) from None
        if client.is_local:
            out = str(plan.output)
            out_raster = str(plan.class_raster) if plan.class_raster else None
            plan.output.parent.mkdir(parents=True, exist_ok=True)
        else:  # the service cannot see our disk: send the pixels, take the polygons back as GeoJSON
            uploaded = client.upload(raster)
            remote = Path(uploaded["path"])
            raster, out, out_raster = remote, str(remote.with_name(plan.output.name)), None
        body = plan.request(str(raster), out, out_raster)
        outcome = follow_job(client, body, lambda p, _: on_progress(share + p * (100 - share) / 100), is_cancelled)
        if not client.is_local:
            _write_polygons(outcome.result, plan.output, plan.area.crs, plan.nothing_found())
        return outcome.result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if uploaded:
            try:
                client.remove_upload(uploaded["id"])
            except BackendError:
                pass


def _write_polygons(result: dict, target: Path, crs: QgsCoordinateReferenceSystem, nothing_found: str) -> None:
    """A remote job's polygons (GeoJSON, lon/lat) into the local file ``target``, in ``crs``; BackendError with
    ``nothing_found`` when there are none."""
    if result.get("polygons_omitted") or result.get("polygons") is None:
        raise BackendError(tr("The remote backend found more polygons than it sends back; raise its "
                              "--max-polygons, or run on a smaller area."))
    if not result["polygons"].get("features"):
        raise BackendError(nothing_found)
    folder = Path(tempfile.mkdtemp(prefix="rs-openvocab-"))
    try:
        source = folder / "polygons.geojson"
        source.write_text(json.dumps(result["polygons"]), encoding="utf-8")
        layer = QgsVectorLayer(str(source), target.stem, "ogr")
        driver = QgsVectorFileWriter.driverForExtension(target.suffix) or "GPKG"
        write_vector(layer, target, driver, crs, QgsCoordinateTransformContext())  # not the project's: a thread
        del layer
    except ResultError as error:
        raise BackendError(str(error)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class SegmentTask(QgsTask):
    """``execute`` (of a segment or a describe plan) in the task manager: progress bar, cancel button, outcome to ``on_finished``."""

    def __init__(self, client: BackendClient, plan: RunPlan, on_finished: Callable[[RunOutcome], None]) -> None:
        super().__init__(plan.task_title(), QgsTask.CanCancel)
        self.client, self.plan, self.on_finished = client, plan, on_finished
        self.outcome = RunOutcome(plan)

    def run(self) -> bool:
        try:
            self.outcome.result = execute(self.client, self.plan, self.setProgress, self.isCanceled)
            return True
        except JobCancelled:
            self.outcome.cancelled = True
        except BackendError as error:
            self.outcome.error = error
        except Exception as error:  # a bug or the disk: one sentence up, the traceback to the log
            self.outcome.error = BackendError(tr("The run failed: {0}").format(error), detail=traceback.format_exc())
        return False

    def finished(self, ok: bool) -> None:  # main thread
        if not ok and self.isCanceled() and self.outcome.error is None:
            self.outcome.cancelled = True
        self.on_finished(self.outcome)


class CallTask(QgsTask):
    """A short backend call (connect, download weights) off the main thread; ``on_finished(value, error)``."""

    def __init__(self, description: str, call: Callable[[], object],
                 on_finished: Callable[[object, BackendError | None], None], flags=QgsTask.CanCancel) -> None:
        super().__init__(description, flags)
        self.call, self.on_finished = call, on_finished
        self.value, self.error = None, None

    def run(self) -> bool:
        try:
            self.value = self.call()
            return True
        except BackendError as error:
            self.error = error
        except Exception as error:
            self.error = BackendError(str(error), detail=traceback.format_exc())
        return False

    def finished(self, ok: bool) -> None:
        if not ok and self.error is None:  # cancelled before it ran
            self.error = BackendError(tr("Cancelled."))
        self.on_finished(self.value, self.error)
