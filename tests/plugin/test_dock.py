"""The dock driven as an analyst drives it, against a real backend with tiny weights."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from qgis.core import (Qgis, QgsApplication, QgsCategorizedSymbolRenderer, QgsCoordinateReferenceSystem,
                       QgsCoordinateTransform, QgsGeometry, QgsProject, QgsRasterLayer, QgsRectangle, QgsVectorLayer)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QEvent
from qgis.PyQt.QtWidgets import QApplication

import rs_openvocab
from rs_openvocab import settings
from rs_openvocab.client import BackendClient
from rs_openvocab.connection import Backend, plugin_version
from rs_openvocab.results import class_color
from tests.helpers.fake_hub import FakeHub
from tests.helpers.service import RunningService
from tests.plugin.conftest import put_tiny_weights, wait_for

CLASSES = "background\nbuilding,roof,house\nroad"


@pytest.fixture
def plugin(qgis_iface, project):
    qgis_iface.messageBar().clear_messages()
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()


def connect(dock, service) -> None:
    connect_with(dock, mode="url", url=service.url, token=service.token)


def connect_with(dock, mode: str, url: str = "", token: str = "", python: str = "") -> None:
    """Fill the backend settings and press Connect, as a user does."""
    dock.mode.setCurrentIndex(dock.mode.findData(mode))
    dock.url.setText(url)
    dock.token.setText(token)
    dock.python.setFilePath(python)
    dock.connect_button.click()
    wait_for(lambda: dock.connect_button.isEnabled(), what="connecting")
    assert dock.backend is not None, messages(dock.iface, Qgis.Critical)


def messages(iface, level) -> list[str]:
    return iface.messageBar().get_messages(level)


def add_raster(path, name="scene") -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name)
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def run_and_wait(dock) -> None:
    dock.run_button.click()
    assert dock.task is not None, messages(dock.iface, Qgis.Warning)
    wait_for(lambda: dock.task is None, what="the run")


def test_plugin_loads_and_unloads_without_leftovers(qgis_iface, project):
    before = {w.objectName() for w in QApplication.allWidgets()}
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("rs_openvocab") is not None
    assert registry.algorithmById("rs_openvocab:segment") is not None
    dock, action = plugin.dock, plugin.action
    assert dock.toggleViewAction() is not None and action.isCheckable()
    action.trigger()
    assert not dock.isHidden()  # the mock main window is never shown
    plugin.unload()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)  # the deleteLater()s
    assert registry.providerById("rs_openvocab") is None
    assert sip.isdeleted(dock) and sip.isdeleted(action)
    assert "RsOpenVocabDock" not in {w.objectName() for w in QApplication.allWidgets()} - before


def test_the_plugin_imports_neither_torch_nor_the_backend():
    code = ("import sys; import rs_openvocab, rs_openvocab.plugin, rs_openvocab.dock, rs_openvocab.runs, "
            "rs_openvocab.processing.segment_algorithm; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'backend', 'rasterio', 'numpy'));"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_drawn_area_in_another_crs_becomes_a_styled_layer_and_a_shapefile(plugin, ready_service, scenes, tmp_path):
    dock = plugin.dock
    layer = add_raster(scenes["small"])
    dock.layer.setLayer(layer)
    connect(dock, ready_service)
    assert "CPU" in dock.status_label.text() and ready_service.url in dock.status_label.text()
    assert dock.model.currentData()["name"] == "segearth-ov" and not dock.download_button.isVisible()
    # a rectangle drawn in lon/lat over the western two thirds of the scene (UTM 33N)
    utm = QgsRectangle(500000.0, 4650000.0 - 100.0, 500080.0, 4650000.0)
    drawn = QgsGeometry.fromRect(utm)
    drawn.transform(_transform("EPSG:32633", "EPSG:4326"))
    dock.set_drawn_area(drawn, QgsCoordinateReferenceSystem("EPSG:4326"))
    width, height = map(int, re.match(r"(\d+) × (\d+) px", dock.size_label.text()).groups())
    assert abs(width - 160) <= 1 and abs(height - 200) <= 1, dock.size_label.text()  # 80 m × 100 m at 0.5 m
    dock.classes.setPlainText(CLASSES)
    dock.class_raster.setChecked(True)
    dock.output.setFilePath(str(tmp_path / "out" / "result.gpkg"))
    run_and_wait(dock)
    assert not messages(dock.iface, Qgis.Critical)
    result = QgsProject.instance().mapLayersByName("result")
    assert len(result) == 1
    polygons = result[0]
    assert isinstance(polygons, QgsVectorLayer) and polygons.crs().authid() == "EPSG:32633"
    assert polygons.featureCount() > 0
    assert {"class_name", "score", "area_m2"} <= set(polygons.fields().names())
    extent = polygons.extent()
    assert extent.xMaximum() <= 500080.0 + 1.0 and extent.yMinimum() >= 4650000.0 - 101.0  # the drawn area only
    renderer = polygons.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_name"
    assert [c.value() for c in renderer.categories()] == ["background", "building", "road"]
    assert renderer.categories()[2].symbol().color().name() == class_color("road").name()
    assert QgsProject.instance().mapLayersByName("result classes")[0].renderer().type() == "paletted"
    reopened = QgsVectorLayer(str(tmp_path / "out" / "result.gpkg"), "again")  # the style travels in the file
    assert isinstance(reopened.renderer(), QgsCategorizedSymbolRenderer)
    assert settings.recent_prompts()[0] == CLASSES and dock.recent.itemData(1) == CLASSES
    assert settings.megapixels_per_second("cpu")[1]  # the estimate now uses the measured rate

    dock.export_to(polygons, tmp_path / "export" / "result.shp", "ESRI Shapefile")
    shapefile = QgsVectorLayer(str(tmp_path / "export" / "result.shp"), "shp")
    assert shapefile.isValid() and shapefile.featureCount() == polygons.featureCount()
    assert shapefile.crs().authid() == "EPSG:32633"
    assert isinstance(shapefile.renderer(), QgsCategorizedSymbolRenderer)  # from result.qml beside it
    assert not [p for p in (tmp_path / "export").iterdir() if p.name.startswith(".")]


def _transform(source: str, target: str):
    return QgsCoordinateTransform(QgsCoordinateReferenceSystem(source), QgsCoordinateReferenceSystem(target),
                                  QgsProject.instance())


def start_long_run(dock, service, raster, output) -> None:
    """Run the tall scene and return once it is segmenting (its windows take a few seconds)."""
    dock.layer.setLayer(add_raster(raster, "tall"))
    connect(dock, service)
    dock.classes.setPlainText(CLASSES)
    dock.output.setFilePath(str(output))
    dock.run_button.click()
    wait_for(lambda: dock.progress.value() > 10, what="segmenting to start")


def test_cancel_leaves_no_layer_and_no_file(plugin, ready_service, scenes, tmp_path):
    dock = plugin.dock
    start_long_run(dock, ready_service, scenes["tall"], tmp_path / "cancelled.gpkg")
    dock.cancel_button.click()
    wait_for(lambda: dock.task is None, what="the cancel")
    assert any("cancelled" in m for m in messages(dock.iface, Qgis.Info))
    assert not QgsProject.instance().mapLayersByName("cancelled") and not (tmp_path / "cancelled.gpkg").exists()
    assert dock.run_button.isEnabled()


def test_a_backend_killed_mid_run_gives_a_sentence_and_no_layer(plugin, scenes, tmp_path):
    home = tmp_path / "home"
    put_tiny_weights(home)
    service = RunningService(home, "--output-root", str(tmp_path))
    try:
        dock = plugin.dock
        start_long_run(dock, service, scenes["tall"], tmp_path / "killed.gpkg")
        service.kill()
        wait_for(lambda: dock.task is None, what="the run to fail")
    finally:
        service.stop()
    errors = messages(dock.iface, Qgis.Critical)
    assert len(errors) == 1 and "does not answer" in errors[0] and "\n" not in errors[0], errors
    assert not QgsProject.instance().mapLayersByName("killed") and not (tmp_path / "killed.gpkg").exists()


def test_missing_weights_are_shown_and_downloaded_through_the_backend(plugin, tmp_path):
    with FakeHub() as hub:
        hub.files["ZhenShiL/FarSLIP/FarSLIP2_ViT-B-32.pt"] = b"weights" * 100
        service = RunningService(tmp_path / "home", env={"RSOV_OFFLINE": "0", "HF_HUB_OFFLINE": "0",
                                                         "RSOV_HF_ENDPOINT": hub.url})
        try:
            dock = plugin.dock
            connect(dock, service)
            dock.model.setCurrentIndex(dock.model.findText("farslip2-vit-b-32 (weights missing)"))
            assert dock.model.currentData()["name"] == "farslip2-vit-b-32" and not dock.download_button.isHidden()
            dock.download_button.click()
            wait_for(lambda: dock.model.findText("farslip2-vit-b-32") >= 0, what="the download")
            assert dock.model.currentData()["ready"] and dock.download_button.isHidden()
        finally:
            service.stop()


def test_a_sar_layer_runs_with_the_sar_model_and_a_speckle_filter(plugin, ready_service, scenes, tmp_path):
    path = tmp_path / "s1.tif"
    with rasterio.open(path, "w", driver="GTiff", height=60, width=80, count=2, dtype="float32", crs="EPSG:32633",
                       transform=from_origin(500000, 4650000, 10, 10)) as out:
        out.write(np.random.default_rng(0).gamma(4.0, 0.02, (2, 60, 80)).astype(np.float32))
    dock = plugin.dock
    dock.layer.setLayer(add_raster(scenes["small"], "rgb"))
    assert dock.modality.currentData() == "optical" and not dock.speckle.isEnabled()
    dock.layer.setLayer(add_raster(path, "s1"))
    assert dock.modality.currentData() == "sar" and "SAR" in dock.modality_hint.text()
    connect(dock, ready_service)
    assert dock.model.currentData()["name"] == "segearth-ov-sar" and dock.speckle.isEnabled()
    dock.speckle.setCurrentIndex(dock.speckle.findData("refined-lee"))
    dock.classes.setPlainText("water\nfield")
    dock.output.setFilePath(str(tmp_path / "sar_result.gpkg"))
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: logged.append(text))
    run_and_wait(dock)
    assert not messages(dock.iface, Qgis.Critical)
    assert QgsProject.instance().mapLayersByName("sar_result")[0].featureCount() > 0
    sent = next(text for text in logged if text.startswith("Running on s1"))
    assert "'modality': 'sar'" in sent and "'speckle': 'refined-lee'" in sent
    assert any(text.startswith("SAR (as asked): band 1") and "refined-lee 7×7" in text for text in logged), logged


def test_a_dataset_preset_fills_the_prompts_and_threshold(plugin, ready_service):
    dock = plugin.dock
    connect(dock, ready_service)
    index = dock.dataset.findText("whu-sar")
    dock.dataset.setCurrentIndex(index)
    dock.dataset.activated.emit(index)
    assert dock.class_lines()[-1] == "others" and dock.threshold.value() == 0.0
    assert dock.modality.currentData() == "sar" and dock.model.currentData()["name"] == "segearth-ov-sar"
    index = dock.dataset.findText("openearthmap")
    dock.dataset.setCurrentIndex(index)
    dock.dataset.activated.emit(index)
    assert dock.class_lines()[-1] == "building,roof,house" and dock.threshold.value() == pytest.approx(0.1)


def test_a_version_mismatch_is_named():
    assert Backend(BackendClient("http://127.0.0.1:1", "t"), {"version": plugin_version()}).version_warning is None
    warning = Backend(BackendClient("http://127.0.0.1:1", "t"), {"version": "9.9.9"}).version_warning
    assert "9.9.9" in warning and plugin_version() in warning


def _own_address() -> str | None:
    """This machine's address that is not loopback, if it has one."""
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_a_remote_backend_gets_the_pixels_uploaded_and_sends_polygons_back(plugin, scenes, tmp_path):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    home = tmp_path / "home"
    put_tiny_weights(home)
    service = RunningService(home, "--host", "0.0.0.0")
    try:
        dock = plugin.dock
        dock.layer.setLayer(add_raster(scenes["small"], "remote"))
        connect_with(dock, mode="url", url=service.url.replace("0.0.0.0", address), token=service.token)
        assert not dock.backend.client.is_local
        dock.classes.setPlainText(CLASSES)
        dock.output.setFilePath(str(tmp_path / "local" / "remote.gpkg"))
        run_and_wait(dock)
        assert not messages(dock.iface, Qgis.Critical), messages(dock.iface, Qgis.Critical)
        polygons = [l for l in QgsProject.instance().mapLayersByName("remote") if isinstance(l, QgsVectorLayer)][0]
        assert polygons.featureCount() > 0 and {"class_name", "score", "area_m2"} <= set(polygons.fields().names())
        assert polygons.crs().authid() == "EPSG:32633"  # back from lon/lat into the layer's CRS
        extent = polygons.extent()
        assert 499999 < extent.xMinimum() and extent.xMaximum() < 500121 and 4649899 < extent.yMinimum()
        assert not list(home.rglob("*.tif"))  # the upload was removed once the job ended
    finally:
        service.stop()


def test_unloading_during_a_run_cancels_it_quietly(qgis_iface, project, ready_service, scenes, tmp_path):
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    dock = plugin.dock
    start_long_run(dock, ready_service, scenes["tall"], tmp_path / "unloaded.gpkg")
    task = dock.task
    plugin.unload()  # QGIS closing, or the plugin reloaded, mid-run
    wait_for(lambda: not QgsApplication.taskManager().activeTasks(), what="the task to stop")
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert sip.isdeleted(task) or task.status() in (task.Terminated, task.Complete)
    assert not QgsProject.instance().mapLayersByName("unloaded") and not (tmp_path / "unloaded.gpkg").exists()
