"""Map tools to draw the area: a rectangle (press, drag, release) or a polygon (clicks; right click ends)."""
from __future__ import annotations

from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsMapCanvas, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor


def _band(canvas: QgsMapCanvas) -> QgsRubberBand:
    band = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
    band.setColor(QColor(255, 140, 0, 200))
    band.setFillColor(QColor(255, 140, 0, 40))
    band.setWidth(2)
    return band


class AreaTool(QgsMapTool):
    """Base: emits ``drawn`` with the shape in the canvas CRS; the shape stays shown until cleared."""

    drawn = pyqtSignal(QgsGeometry)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.band = _band(canvas)
        self.setCursor(Qt.CrossCursor)

    def clear(self) -> None:
        self.band.reset(QgsWkbTypes.PolygonGeometry)

    def _finish(self, geometry: QgsGeometry) -> None:
        geometry = geometry.makeValid()  # a bow-tie polygon becomes its two triangles
        if geometry.isEmpty() or geometry.area() <= 0:
            self.clear()
            return
        self.band.setToGeometry(geometry, None)
        self.drawn.emit(geometry)

    def remove(self) -> None:
        """Take the rubber band off the canvas (the plugin unloads)."""
        self.clear()
        self.canvas().scene().removeItem(self.band)
        self.deleteLater()


class RectangleTool(AreaTool):
    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.start: QgsPointXY | None = None

    def canvasPressEvent(self, event) -> None:
        self.start = self.toMapCoordinates(event.pos())

    def canvasMoveEvent(self, event) -> None:
        if self.start is not None:
            self.band.setToGeometry(QgsGeometry.fromRect(QgsRectangle(self.start, self.toMapCoordinates(event.pos()))),
                                    None)

    def canvasReleaseEvent(self, event) -> None:
        if self.start is None:
            return
        rectangle = QgsRectangle(self.start, self.toMapCoordinates(event.pos()))
        self.start = None
        self._finish(QgsGeometry.fromRect(rectangle))


class PolygonTool(AreaTool):
    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.points: list[QgsPointXY] = []

    def canvasReleaseEvent(self, event) -> None:
        if event.button() == Qt.RightButton:
            points, self.points = self.points, []
            if len(points) >= 3:
                self._finish(QgsGeometry.fromPolygonXY([points + [points[0]]]))
            else:
                self.clear()
            return
        self.points.append(self.toMapCoordinates(event.pos()))
        self.band.setToGeometry(QgsGeometry.fromPolylineXY(self.points) if len(self.points) < 3
                                else QgsGeometry.fromPolygonXY([self.points + [self.points[0]]]), None)

    def deactivate(self) -> None:
        self.points = []
        super().deactivate()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Escape:
            self.points = []
            self.clear()
