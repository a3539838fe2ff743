"""The dock's "Describe the target" mode: a sentence and a GeoMag checkpoint instead of classes and a model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from qgis.core import (Qgis, QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsGeometry,
                       QgsPalettedRasterRenderer, QgsProject, QgsRectangle, QgsSingleSymbolRenderer, QgsVectorLayer)

import rs_openvocab
from rs_openvocab import settings
from rs_openvocab.client import BackendClient
from rs_openvocab.connection import Backend
from rs_openvocab.dock import SegmentDock
from rs_openvocab.runs import DescribePlan, RunPlan
from tests.plugin.conftest import wait_for
from tests.helpers.service import RunningService
from tests.plugin.test_dock import (_own_address, add_raster, connect, connect_with, messages,
                                    run_and_wait)

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "the red circle on the left"
# the western half of the small scene (UTM 33N, 0.5 m): 60 m x 100 m
UTM_AREA = QgsRectangle(500000.0, 4650000.0 - 100.0, 500060.0, 4650000.0)


@pytest.fixture
def plugin(qgis_iface, project):
    qgis_iface.messageBar().clear_messages()
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()


class NoCalls(BackendClient):
    """A local backend that must not be asked anything."""

    calls: list

    def _call(self, method, route, body=None, size=None):
        self.calls.append((method, route))
        raise AssertionError(f"the dock called the backend: {method} {route}")


def offline_backend() -> Backend:
    client = NoCalls("http://127.0.0.1:1", "token")
    client.calls = []
    return Backend(client, {"version": "0", "device": "cpu"})


def describe(dock, sentence: str, checkpoint) -> None:
    dock.job.setCurrentIndex(dock.job.findData("refer"))
    dock.sentence.setText(sentence)
    dock.checkpoint.setFilePath(str(checkpoint))


def draw_in_lon_lat(dock, rectangle: QgsRectangle) -> None:
    """``rectangle`` (UTM 33N) drawn on a map in lon/lat, as a user on a WGS 84 project draws it."""
    drawn = QgsGeometry.fromRect(rectangle)
    drawn.transform(QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32633"),
                                           QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance()))
    dock.set_drawn_area(drawn, QgsCoordinateReferenceSystem("EPSG:4326"))


def test_describe_mode_swaps_the_classes_for_a_sentence_and_a_checkpoint(plugin, scenes, tmp_path):
    dock = plugin.dock
    assert dock.job.currentData() == "segment" and not dock.classes.isHidden() and dock.sentence.isHidden()
    dock.job.setCurrentIndex(dock.job.findData("refer"))
    assert dock.describing()
    assert dock.classes.isHidden() and dock.recent.isHidden() and dock.dataset.isHidden()
    assert dock.model.parentWidget().isHidden() and dock.modality.isHidden() and dock.window.isHidden()
    assert not dock.sentence.isHidden() and not dock.checkpoint.isHidden() and not dock.no_magcrop.isHidden()
    assert not dock.threshold.isHidden() and not dock.simplify.isHidden()  # shared by both modes
    assert dock.class_raster.text() == "Also add the mask raster"
    assert dock.sentence.placeholderText() == "the small boat beside the second pier"
    dock.layer.setLayer(add_raster(scenes["small"]))
    assert dock.size_label.text() == "240 × 200 px (0.05 MP)"  # the size only: the model reads at its own size
    dock.job.setCurrentIndex(dock.job.findData("segment"))
    assert not dock.classes.isHidden() and dock.sentence.isHidden() and dock.checkpoint.isHidden()
    assert dock.class_raster.text() == "Also add the class raster" and "about" in dock.size_label.text()


def test_the_request_carries_the_sentence_the_checkpoint_and_the_drawn_area_as_segment_sends_it(plugin, scenes,
                                                                                                  tmp_path):
    checkpoint = tmp_path / "geomag.safetensors"
    checkpoint.write_bytes(b"not read by the dock")
    dock = plugin.dock
    dock.backend = offline_backend()
    dock.layer.setLayer(add_raster(scenes["small"]))
    draw_in_lon_lat(dock, UTM_AREA)
    dock.classes.setPlainText("building")
    dock.models = [{"name": "segearth-ov", "modality": "optical", "ready": True, "description": "", "weights": []}]
    dock._fill_models()
    segment = dock.plan()
    describe(dock, "  the small boat\nbeside the   second pier ", checkpoint)
    dock.threshold.setValue(0.3)
    dock.no_magcrop.setChecked(True)
    dock.class_raster.setChecked(True)
    dock.output.setFilePath(str(tmp_path / "boat.gpkg"))
    plan = dock.plan()
    assert isinstance(plan, DescribePlan) and plan.kind == "refer" and type(segment) is RunPlan
    body = plan.request("/data/scene.tif", "/out/boat.gpkg", "/out/boat_mask.tif")
    area = {key: body.pop(key) for key in ("aoi", "aoi_crs")}
    assert body == {"kind": "refer", "prompt": "the small boat beside the second pier",
                    "checkpoint": str(checkpoint), "raster": "/data/scene.tif", "out": "/out/boat.gpkg",
                    "out_raster": "/out/boat_mask.tif", "mask_threshold": pytest.approx(0.3), "no_magcrop": True}
    segmented = segment.request("/data/scene.tif", "/out/x.gpkg", None)
    assert area == {"aoi": segmented["aoi"], "aoi_crs": segmented["aoi_crs"]}  # the one area path
    assert area["aoi_crs"] == "EPSG:32633"  # the drawn lon/lat area, in the raster's CRS
    assert QgsGeometry.fromWkt(area["aoi"]).boundingBox().width() == pytest.approx(60, abs=0.5)
    assert plan.raster == Path(scenes["small"]) and plan.output == tmp_path / "boat.gpkg"
    assert plan.class_raster == tmp_path / "boat_mask.tif"
    assert dock.backend.client.calls == []


@pytest.mark.parametrize("sentence, checkpoint, refusal", [
    ("   ", "geomag.safetensors", "Describe the target in a sentence"),
    (SENTENCE, "", "Choose a GeoMag checkpoint file"),
    (SENTENCE, "missing.safetensors", "is not a file"),
])
def test_an_empty_sentence_or_a_missing_checkpoint_is_refused_in_one_sentence(plugin, scenes, tmp_path, sentence,
                                                                             checkpoint, refusal):
    (tmp_path / "geomag.safetensors").write_bytes(b"weights")
    dock = plugin.dock
    dock.backend = offline_backend()
    dock.layer.setLayer(add_raster(scenes["small"]))
    describe(dock, sentence, tmp_path / checkpoint if checkpoint else "")
    dock.run_button.click()
    assert dock.task is None and dock.backend.client.calls == []
    warnings = messages(dock.iface, Qgis.Warning)
    assert len(warnings) == 1 and refusal in warnings[0] and "\n" not in warnings[0], warnings
    assert not QgsApplication.taskManager().activeTasks()


@pytest.fixture(scope="module")
def geomag_checkpoint(tmp_path_factory) -> Path:
    """A tiny random GeoMag checkpoint with a granularity classifier (MagCrop runs), built in a child process:
    torch stays out of the QGIS test process."""
    folder = tmp_path_factory.mktemp("geomag")
    code = ("import sys; from pathlib import Path; "
            "from backend.models.geomag.tmra import GranularityClassifier; "
            "from tests.helpers.geomag import tiny_bert_dir, tiny_geomag_checkpoint; "
            "import torch; from transformers import AutoConfig; "
            "folder = Path(sys.argv[1]); torch.manual_seed(0); "
            "hidden = AutoConfig.from_pretrained(tiny_bert_dir(folder)).hidden_size; "
            "print(tiny_geomag_checkpoint(folder, tmra_state=GranularityClassifier(hidden).state_dict()))")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def test_a_described_target_becomes_a_layer_named_after_the_sentence(plugin, ready_service, scenes,
                                                                     geomag_checkpoint, tmp_path):
    dock = plugin.dock
    dock.layer.setLayer(add_raster(scenes["small"]))
    connect(dock, ready_service)
    draw_in_lon_lat(dock, UTM_AREA)
    describe(dock, SENTENCE, geomag_checkpoint)
    dock.threshold.setValue(0.01)  # a random model's probabilities hover near 0.5: its focus box is the mask
    dock.class_raster.setChecked(True)
    dock.output.setFilePath(str(tmp_path / "described" / "circle.gpkg"))
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: logged.append(text))
    run_and_wait(dock)
    assert not messages(dock.iface, Qgis.Critical), messages(dock.iface, Qgis.Critical)
    assert dock.progress.value() == 100 and dock.run_button.isEnabled()

    polygons = QgsProject.instance().mapLayersByName(SENTENCE)
    assert len(polygons) == 1 and isinstance(polygons[0], QgsVectorLayer)
    polygons = polygons[0]
    assert polygons.source().startswith(str(tmp_path / "described" / "circle.gpkg"))
    assert {"prompt", "score", "area_m2"} <= set(polygons.fields().names())
    assert polygons.crs().authid() == "EPSG:32633"
    assert polygons.featureCount() > 0
    assert all(feature["prompt"] == SENTENCE and 0 <= feature["score"] <= 1 for feature in polygons.getFeatures())
    extent = polygons.extent()  # inside the drawn area
    assert extent.xMaximum() <= UTM_AREA.xMaximum() + 1 and extent.yMinimum() >= UTM_AREA.yMinimum() - 1
    renderer = polygons.renderer()
    assert isinstance(renderer, QgsSingleSymbolRenderer) and 0 < renderer.symbol().color().alpha() < 255
    assert polygons.attributeDisplayName(polygons.fields().indexOf("prompt")) == "Described target"
    mask = QgsProject.instance().mapLayersByName(SENTENCE + " mask")
    assert len(mask) == 1 and isinstance(mask[0].renderer(), QgsPalettedRasterRenderer)
    assert (tmp_path / "described" / "circle_mask.tif").is_file()
    reopened = QgsVectorLayer(str(tmp_path / "described" / "circle.gpkg"), "again")  # the style is in the file
    assert isinstance(reopened.renderer(), QgsSingleSymbolRenderer)

    job = ready_service.client.get("/v1/jobs").json()[0]  # what the service was asked, newest first
    request = job["request"]
    assert job["kind"] == "refer" and job["state"] == "done"
    assert request["prompt"] == SENTENCE and request["checkpoint"] == str(geomag_checkpoint)
    assert request["aoi_crs"] == "EPSG:32633" and request["raster"] == str(scenes["small"])
    assert QgsGeometry.fromWkt(request["aoi"]).boundingBox().width() == pytest.approx(60, abs=0.5)
    assert request["out_raster"] == str(tmp_path / "described" / "circle_mask.tif")
    assert request["mask_threshold"] == pytest.approx(0.01) and "classes" not in request and "model" not in request
    assert any(text.startswith("MagCrop: ") for text in logged), logged  # the backend's notes, in the log
    assert settings.geomag_checkpoint() == str(geomag_checkpoint) and settings.run_kind() == "refer"
    again = SegmentDock(dock.iface)  # the next session's dock opens in describe mode with the checkpoint
    try:
        assert again.describing() and again.checkpoint.filePath() == str(geomag_checkpoint)
    finally:
        again.unload()
        again.deleteLater()


def test_the_service_refusal_is_shown_as_its_sentence(plugin, ready_service, scenes, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"these are not safetensors")
    dock = plugin.dock
    dock.layer.setLayer(add_raster(scenes["small"]))
    connect(dock, ready_service)
    describe(dock, SENTENCE, broken)
    dock.output.setFilePath(str(tmp_path / "broken.gpkg"))
    dock.run_button.click()
    wait_for(lambda: dock.task is None, what="the run")
    errors = messages(dock.iface, Qgis.Critical)  # the service's sentence names the file
    assert len(errors) == 1 and str(broken) in errors[0] and "\n" not in errors[0], errors
    assert not QgsProject.instance().mapLayersByName(SENTENCE) and not (tmp_path / "broken.gpkg").exists()


def test_a_remote_backend_sends_the_described_target_back_as_polygons(plugin, scenes, geomag_checkpoint, tmp_path):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    service = RunningService(tmp_path / "home", "--host", "0.0.0.0")
    try:
        dock = plugin.dock
        dock.layer.setLayer(add_raster(scenes["small"], "remote"))
        connect_with(dock, mode="url", url=service.url.replace("0.0.0.0", address), token=service.token)
        assert not dock.backend.client.is_local
        describe(dock, SENTENCE, geomag_checkpoint)  # the service's machine is this one: the path reads there
        dock.threshold.setValue(0.01)
        dock.no_magcrop.setChecked(True)
        dock.output.setFilePath(str(tmp_path / "local" / "remote.gpkg"))
        run_and_wait(dock)
        assert not messages(dock.iface, Qgis.Critical), messages(dock.iface, Qgis.Critical)
        polygons = QgsProject.instance().mapLayersByName(SENTENCE)[0]
        assert polygons.source().startswith(str(tmp_path / "local" / "remote.gpkg"))
        assert polygons.featureCount() > 0 and polygons.crs().authid() == "EPSG:32633"
        assert {feature["prompt"] for feature in polygons.getFeatures()} == {SENTENCE}
        assert isinstance(polygons.renderer(), QgsSingleSymbolRenderer)
        assert service.client.get("/v1/jobs").json()[0]["request"]["no_magcrop"] is True
        assert not list((tmp_path / "home").rglob("*.tif"))  # the upload was removed once the job ended
    finally:
        service.stop()
