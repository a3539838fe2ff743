"""Layers that are not files (a local XYZ tile folder served by a file:// URL) are drawn, then segmented."""
from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from PIL import Image
from qgis.core import (QgsCoordinateReferenceSystem, QgsGeometry, QgsProject, QgsRasterLayer, QgsRectangle,
                       QgsVectorLayer)

from rs_openvocab.rendering import RenderError, render_to_geotiff
from tests.plugin.conftest import wait_for
from tests.plugin.test_dock import CLASSES, connect, messages

ZOOM = 16
ORIGIN = 20037508.342789244  # Web Mercator half-width, m
TILE_M = 2 * ORIGIN / 2**ZOOM  # one tile's side at this zoom, m
FIRST = (35200, 32760)  # tile x, y: near lon 13.4°, lat 0.04° (UTM 33N)
NORTH = (35200, 19031)  # lat 60°: a Web Mercator metre is half a metre on the ground


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """A tile folder {z}/{x}/{y}.png with 3 × 2 tiles of noise at FIRST and at NORTH: every pixel tells where
    it is."""
    root = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(3)
    mosaic = rng.integers(0, 256, (2 * 256, 3 * 256, 3), dtype=np.uint8)
    for first in (FIRST, NORTH):
        for dy in range(2):
            for dx in range(3):
                folder = root / str(ZOOM) / str(first[0] + dx)
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mosaic[dy * 256:(dy + 1) * 256, dx * 256:(dx + 1) * 256]).save(
                    folder / f"{first[1] + dy}.png")
    return root, mosaic


def xyz_layer(root) -> QgsRasterLayer:
    uri = f"type=xyz&url=file://{root}/{{z}}/{{x}}/{{y}}.png&zmin={ZOOM}&zmax={ZOOM}"
    layer = QgsRasterLayer(uri, "tiles", "wms")
    assert layer.isValid()
    return layer


def tile_bounds(first=FIRST) -> QgsRectangle:
    """The Web Mercator extent of the 3 × 2 tiles starting at tile ``first``."""
    xmin = -ORIGIN + first[0] * TILE_M
    ymax = ORIGIN - first[1] * TILE_M
    return QgsRectangle(xmin, ymax - 2 * TILE_M, xmin + 3 * TILE_M, ymax)


def test_a_tile_layer_is_drawn_onto_the_right_pixels(tiles, tmp_path):
    root, mosaic = tiles
    layer = xyz_layer(root)
    bounds = tile_bounds()
    gsd = TILE_M / 256  # the tiles' own resolution: the drawing must be the tiles themselves
    inner = QgsRectangle(bounds.xMinimum() + 100 * gsd, bounds.yMinimum() + 100 * gsd,
                         bounds.xMinimum() + 400 * gsd, bounds.yMinimum() + 300 * gsd)
    path = render_to_geotiff(layer, inner, QgsCoordinateReferenceSystem("EPSG:3857"), gsd, tmp_path / "drawn.tif")
    with rasterio.open(path) as drawn:
        assert drawn.crs.to_epsg() == 3857 and drawn.shape == (200, 300)
        assert drawn.transform.a == pytest.approx(gsd) and drawn.transform.c == pytest.approx(inner.xMinimum())
        assert drawn.transform.f == pytest.approx(inner.yMaximum())
        pixels = drawn.read().transpose(1, 2, 0)
        assert drawn.dataset_mask().min() == 255
    expected = mosaic[512 - 300:512 - 100, 100:400]
    assert np.mean(np.abs(pixels.astype(int) - expected.astype(int))) < 1.0
    assert not list(tmp_path.glob("*.partial*"))


def test_a_layer_that_draws_nothing_is_refused(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(RenderError, match="drew nothing but one colour"):
        render_to_geotiff(xyz_layer(empty), tile_bounds(), QgsCoordinateReferenceSystem("EPSG:3857"), 5.0,
                          tmp_path / "blank.tif")
    assert not list(tmp_path.glob("blank*"))


@pytest.mark.parametrize("first", [FIRST, NORTH], ids=["equator", "lat60"])
def test_the_dock_segments_a_tile_layer_at_the_chosen_ground_resolution(qgis_iface, project, ready_service, tiles,
                                                                         tmp_path, first):
    import rs_openvocab

    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    try:
        dock = plugin.dock
        layer = xyz_layer(tiles[0])
        QgsProject.instance().addMapLayer(layer)
        dock.layer.setLayer(layer)
        assert not dock.render_gsd.isHidden()
        connect(dock, ready_service)
        dock.render_gsd.setValue(2.0)
        bounds = tile_bounds(first)
        area = QgsRectangle(bounds.xMinimum() + 100, bounds.yMinimum() + 100, bounds.xMinimum() + 500,
                            bounds.yMinimum() + 400)
        dock.set_drawn_area(QgsGeometry.fromRect(area), QgsCoordinateReferenceSystem("EPSG:3857"))
        # 400 × 300 Web Mercator metres are 400 m × 300 m on the ground at the equator, half that at 60°
        scale = math.cos(math.radians(_latitude(area.center().y())))
        width, height = (int(v) for v in dock.size_label.text().split(" px")[0].split(" × "))
        # (UTM's grid turns ~1.4° from north at lon 13.4°: the bounding box grows by a few pixels)
        assert width == pytest.approx(200 * scale, abs=4) and height == pytest.approx(150 * scale, abs=4)
        dock.classes.setPlainText(CLASSES)
        dock.output.setFilePath(str(tmp_path / "tiles.gpkg"))
        dock.run_button.click()
        wait_for(lambda: dock.task is None, what="the run")
        assert not messages(qgis_iface, 2), messages(qgis_iface, 2)
        result = QgsProject.instance().mapLayersByName("tiles")
        polygons = [layer for layer in result if isinstance(layer, QgsVectorLayer)][0]
        assert polygons.crs().authid() == "EPSG:32633" and polygons.featureCount() > 0
        total = sum(f["area_m2"] for f in polygons.getFeatures())
        assert total == pytest.approx(400 * 300 * scale**2, rel=0.05)
    finally:
        plugin.unload()


def _latitude(mercator_y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(mercator_y / 6378137.0)) - math.pi / 2)
