"""The Processing algorithm through processing.run, and the installable zip through qgis_process."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile

import pytest
from qgis.core import Qgis, QgsApplication, QgsVectorLayer

sys.path.append("/usr/share/qgis/python/plugins")  # Debian's Processing plugin
sys.path.append(os.path.join(os.path.dirname(__file__), "..", "..", "tools"))

QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # the /usr/bin/qgis_process wrapper fails (ENVIRONMENT.md)
CLASSES = "background\nbuilding,roof,house\nroad"
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "tracker",
                     "repository", "tags", "icon", "experimental", "changelog")


@pytest.fixture
def provider(qgis_processing):
    from rs_openvocab.processing.provider import SegmentationProvider

    provider = SegmentationProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    yield provider
    QgsApplication.processingRegistry().removeProvider(provider)


def test_processing_run_segments_an_extent(provider, ready_service, scenes, tmp_path, monkeypatch):
    import processing

    monkeypatch.setenv("RSOV_URL", ready_service.url)
    monkeypatch.setenv("RSOV_TOKEN", ready_service.token)
    result = processing.run("rs_openvocab:segment", {
        "INPUT": str(scenes["small"]), "CLASSES": CLASSES,
        "EXTENT": "500000,500060,4649950,4650000 [EPSG:32633]",
        "MIN_AREA": 1.0, "OUTPUT": str(tmp_path / "polygons.gpkg"), "OUTPUT_RASTER": str(tmp_path / "classes.tif")})
    layer = QgsVectorLayer(result["OUTPUT"], "polygons")
    assert layer.isValid() and layer.featureCount() > 0 and layer.crs().authid() == "EPSG:32633"
    extent = layer.extent()
    assert extent.xMaximum() <= 500060.5 and extent.yMinimum() >= 4649949.5
    assert min(f["area_m2"] for f in layer.getFeatures()) >= 1.0
    assert set(f["class_name"] for f in layer.getFeatures()) <= {"background", "building", "road"}
    assert (tmp_path / "classes.tif").exists()


def test_results_loaded_by_processing_get_the_class_style(provider, ready_service, scenes, tmp_path, monkeypatch,
                                                         project):
    import processing
    from qgis.core import QgsCategorizedSymbolRenderer, QgsProject

    monkeypatch.setenv("RSOV_URL", ready_service.url)
    monkeypatch.setenv("RSOV_TOKEN", ready_service.token)
    processing.runAndLoadResults("rs_openvocab:segment", {"INPUT": str(scenes["small"]), "CLASSES": CLASSES,
                                                         "OUTPUT": str(tmp_path / "styled.gpkg")})
    QgsApplication.processEvents()
    loaded = [layer for layer in QgsProject.instance().mapLayers().values() if isinstance(layer, QgsVectorLayer)]
    assert len(loaded) == 1 and isinstance(loaded[0].renderer(), QgsCategorizedSymbolRenderer)
    assert [c.value() for c in loaded[0].renderer().categories()] == ["background", "building", "road"]


def test_processing_reports_the_backends_sentence(provider, ready_service, scenes, tmp_path, monkeypatch):
    import processing
    from qgis.core import QgsProcessingException

    monkeypatch.setenv("RSOV_URL", ready_service.url)
    monkeypatch.setenv("RSOV_TOKEN", ready_service.token)
    with pytest.raises(QgsProcessingException, match="unknown model .clip-of-mars.; choose one of segearth-ov"):
        processing.run("rs_openvocab:segment", {"INPUT": str(scenes["small"]), "CLASSES": CLASSES,
                                                "MODEL": "clip-of-mars", "OUTPUT": str(tmp_path / "p.gpkg")})
    assert not (tmp_path / "p.gpkg").exists()


def test_the_zip_installs_into_a_fresh_profile_and_runs_in_qgis_process(ready_service, scenes, tmp_path):
    from build_plugin import build

    archive = build(tmp_path / "dist")
    plugins = tmp_path / "config" / "profiles" / "default" / "python" / "plugins"
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        assert all(name.startswith("rs_openvocab/") for name in names) and "rs_openvocab/metadata.txt" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".ts")]
        opened.extractall(plugins)
    metadata = configparser.ConfigParser()
    metadata.read(plugins / "rs_openvocab" / "metadata.txt", encoding="utf-8")
    assert [key for key in REQUIRED_METADATA if not metadata.get("general", key, fallback="").strip()] == []
    assert (plugins / "rs_openvocab" / metadata.get("general", "icon")).is_file()
    minimum = tuple(int(p) for p in metadata.get("general", "qgisMinimumVersion").split("."))
    assert minimum <= (Qgis.QGIS_VERSION_INT // 10000, Qgis.QGIS_VERSION_INT // 100 % 100)
    ini = tmp_path / "config" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nrs_openvocab=true\n")
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "config"), "QT_QPA_PLATFORM": "offscreen",
           "RSOV_URL": ready_service.url, "RSOV_TOKEN": ready_service.token, "PYTHONPATH": ""}
    listed = subprocess.run([QGIS_PROCESS, "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert "* rs_openvocab" in listed.stdout, listed.stdout + listed.stderr  # installed, enabled and loaded
    out = tmp_path / "qgis_process.gpkg"
    done = subprocess.run([QGIS_PROCESS, "run", "rs_openvocab:segment", "--", f"INPUT={scenes['small']}",
                           "CLASSES=background\nbuilding,roof,house", f"OUTPUT={out}"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    layer = QgsVectorLayer(str(out), "from qgis_process")
    assert layer.isValid() and layer.featureCount() > 0


def test_processing_batch_segments_a_folder_and_records_the_bad_scene(provider, ready_service, scenes, tmp_path,
                                                                      monkeypatch):
    import csv
    import shutil

    import processing

    monkeypatch.setenv("RSOV_URL", ready_service.url)
    monkeypatch.setenv("RSOV_TOKEN", ready_service.token)
    folder = tmp_path / "scenes"
    folder.mkdir()
    shutil.copy(scenes["small"], folder / "harbour.tif")
    (folder / "broken.tif").write_bytes(b"not a GeoTIFF")
    out_dir = tmp_path / "results"
    result = processing.run("rs_openvocab:batch", {"INPUT": str(folder), "CLASSES": CLASSES, "VECTOR_FORMAT": 2,
                                                   "OUTPUT": str(out_dir)})
    assert (result["DONE"], result["FAILED"]) == (1, 1)
    layer = QgsVectorLayer(str(out_dir / "harbour.fgb"), "harbour")
    assert layer.isValid() and layer.featureCount() > 0 and layer.crs().authid() == "EPSG:32633"
    with open(result["MANIFEST"], newline="") as manifest:
        rows = {row["scene"]: row for row in csv.DictReader(manifest)}
    assert rows["harbour"]["status"] == "done" and rows["broken"]["status"] == "failed"
    assert "broken.tif" in rows["broken"]["error"]
