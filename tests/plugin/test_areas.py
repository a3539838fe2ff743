"""The area choices: drawn with the map tools, the map extent, selected features, all in the raster's CRS."""
from __future__ import annotations

import pytest
from qgis.core import (QgsCoordinateReferenceSystem, QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsRasterLayer,
                       QgsRectangle, QgsVectorLayer)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt

import rs_openvocab
from rs_openvocab.areas import AreaError
from rs_openvocab.map_tools import PolygonTool, RectangleTool

UTM33 = QgsCoordinateReferenceSystem("EPSG:32633")


@pytest.fixture
def canvas(qgis_iface, project):
    canvas = qgis_iface.mapCanvas()
    canvas.resize(400, 400)
    canvas.setDestinationCrs(UTM33)
    canvas.setExtent(QgsRectangle(500000, 4649880, 500120, 4650000))
    canvas.refresh()
    return canvas


def click(tool, canvas, kind, point: QgsPointXY, button=Qt.LeftButton):
    pixel = canvas.getCoordinateTransform().transform(point).toQPointF().toPoint()
    event = QgsMapMouseEvent(canvas, kind, QPoint(pixel.x(), pixel.y()), button, button, Qt.NoModifier)
    {QEvent.MouseButtonPress: tool.canvasPressEvent, QEvent.MouseMove: tool.canvasMoveEvent,
     QEvent.MouseButtonRelease: tool.canvasReleaseEvent}[kind](event)


def test_the_rectangle_and_polygon_tools_draw_in_map_coordinates(canvas):
    drawn = []
    rectangle = RectangleTool(canvas)
    rectangle.drawn.connect(drawn.append)
    click(rectangle, canvas, QEvent.MouseButtonPress, QgsPointXY(500010, 4649990))
    click(rectangle, canvas, QEvent.MouseMove, QgsPointXY(500030, 4649970))
    click(rectangle, canvas, QEvent.MouseButtonRelease, QgsPointXY(500050, 4649950))
    assert len(drawn) == 1
    box, pixel = drawn[0].boundingBox(), canvas.mapUnitsPerPixel()  # clicks land on whole pixels
    assert box.xMinimum() == pytest.approx(500010, abs=pixel) and box.yMinimum() == pytest.approx(4649950, abs=pixel)
    assert box.width() == pytest.approx(40, abs=2 * pixel) and box.height() == pytest.approx(40, abs=2 * pixel)
    polygon = PolygonTool(canvas)
    polygon.drawn.connect(drawn.append)
    for x, y in ((500000, 4649900), (500100, 4649900), (500100, 4650000)):
        click(polygon, canvas, QEvent.MouseButtonRelease, QgsPointXY(x, y))
    click(polygon, canvas, QEvent.MouseButtonRelease, QgsPointXY(500050, 4649950), Qt.RightButton)
    assert len(drawn) == 2 and drawn[1].area() == pytest.approx(5000, abs=200 * pixel)
    for tool in (rectangle, polygon):
        tool.remove()


def test_every_area_choice_ends_in_the_rasters_crs(qgis_iface, canvas, scenes):
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    try:
        dock = plugin.dock
        raster = QgsRasterLayer(str(scenes["small"]), "scene")
        QgsProject.instance().addMapLayer(raster)
        dock.layer.setLayer(raster)
        dock.classes.setPlainText("road")
        dock.area.setCurrentIndex(dock.area.findData("extent"))
        area, _ = dock._area_for(raster, clone=False)
        assert area.crs == UTM33 and area.geometry.boundingBox().xMaximum() == pytest.approx(500120, abs=1)
        assert dock.size_label.text().startswith("240 × 200 px")  # the extent cut to the layer: 120 m × 100 m

        fields = QgsVectorLayer("Polygon?crs=EPSG:4326", "fields", "memory")
        feature = QgsFeature()
        corner = QgsGeometry.fromRect(QgsRectangle(500020, 4649950, 500060, 4649990))
        corner.transform(_to_wgs84())
        feature.setGeometry(corner)
        fields.dataProvider().addFeatures([feature, QgsFeature()])
        QgsProject.instance().addMapLayer(fields)
        dock.area.setCurrentIndex(dock.area.findData("features"))
        dock.area_layer.setLayer(fields)
        with pytest.raises(AreaError, match="Select at least one polygon"):
            dock.chosen_area()
        fields.selectAll()
        area, _ = dock._area_for(raster, clone=False)
        box = area.geometry.boundingBox()
        assert area.crs == UTM33 and box.xMinimum() == pytest.approx(500020, abs=0.5)
        assert box.yMaximum() == pytest.approx(4649990, abs=0.5)

        dock.set_drawn_area(QgsGeometry.fromRect(QgsRectangle(600000, 4000000, 600010, 4000010)), UTM33)
        with pytest.raises(AreaError, match="does not overlap"):
            dock._area_for(raster, clone=False)
    finally:
        plugin.unload()


def _to_wgs84():
    from qgis.core import QgsCoordinateTransform

    return QgsCoordinateTransform(UTM33, QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())


@pytest.mark.parametrize("crs, kept", [("EPSG:32633", True), ("EPSG:2263", False), ("EPSG:3857", False),
                                       ("EPSG:3395", False), ("EPSG:4326", False)])
def test_layers_are_drawn_where_a_metre_is_a_metre(crs, kept):
    from rs_openvocab.areas import working_crs

    chosen = working_crs(QgsCoordinateReferenceSystem(crs), QgsRectangle(13.3, 52.4, 13.5, 52.6))
    assert chosen == (QgsCoordinateReferenceSystem(crs) if kept else QgsCoordinateReferenceSystem("EPSG:32633"))


def test_a_crs_without_an_authority_code_goes_as_wkt():
    from rs_openvocab.areas import crs_reference

    assert crs_reference(UTM33) == "EPSG:32633"
    custom = QgsCoordinateReferenceSystem.fromProj("+proj=tmerc +lat_0=0 +lon_0=15.5 +k=1 +x_0=0 +y_0=0 "
                                                   "+ellps=GRS80 +units=m +no_defs")
    reference = crs_reference(custom)
    assert reference.startswith(("PROJCRS", "BOUNDCRS")) and "15.5" in reference
