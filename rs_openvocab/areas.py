"""The area to segment, in the raster's CRS, and its size in pixels before anything runs.

Every area (the whole layer, the map extent, a drawn shape, selected features) is taken in
its own CRS and transformed with the project's transform context, so datum shifts the user
configured apply. The backend gets the area as WKT in the CRS of the raster it reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsGeometry, QgsProject,
                       QgsRasterLayer, QgsRectangle, QgsUnitTypes, QgsVectorLayer)

from rs_openvocab.translation import tr

WHOLE_LAYER, MAP_EXTENT, DRAWN, SELECTED_FEATURES = "layer", "extent", "drawn", "features"


class AreaError(ValueError):
    """The area cannot be used; the message is one sentence for the message bar."""


@dataclass
class Area:
    """A polygon in ``crs``, or None for the whole layer."""

    geometry: QgsGeometry | None
    crs: QgsCoordinateReferenceSystem

    def transformed(self, crs: QgsCoordinateReferenceSystem) -> "Area":
        if self.geometry is None or crs == self.crs:
            return self
        geometry = QgsGeometry(self.geometry)
        if geometry.constGet().nCoordinates() < 200:  # a drawn box: its straight edges bend in the other CRS
            geometry = geometry.densifyByCount(8)
        transform = QgsCoordinateTransform(self.crs, crs, QgsProject.instance().transformContext())
        geometry.transform(transform)
        return Area(geometry, crs)


def crs_reference(crs: QgsCoordinateReferenceSystem) -> str:
    """How the backend (pyproj) is told a CRS: its EPSG/ESRI/IGNF code, else its WKT (user CRSs, local ones)."""
    authid = crs.authid()
    if authid.split(":")[0] in ("EPSG", "ESRI", "IGNF"):
        return authid
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT2_2019)


def from_extent(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem) -> Area:
    return Area(QgsGeometry.fromRect(extent), crs)


def from_selected_features(layer: QgsVectorLayer | None) -> Area:
    if layer is None or layer.geometryType() != 2:
        raise AreaError(tr("Choose a polygon layer for the area."))
    features = list(layer.getSelectedFeatures())
    if not features:
        raise AreaError(tr("Select at least one polygon in layer '{0}' (or choose another area).").format(layer.name()))
    union = QgsGeometry.unaryUnion([f.geometry() for f in features if f.hasGeometry()])
    if union is None or union.isEmpty():
        raise AreaError(tr("The selected features of '{0}' have no geometry.").format(layer.name()))
    return Area(union, layer.crs())


def clipped_to_layer(area: Area, layer: QgsRasterLayer) -> Area:
    """``area`` in the layer's CRS, cut to the layer's extent; an error when they do not overlap."""
    local = area.transformed(layer.crs())
    if local.geometry is None:
        return local
    clipped = local.geometry.intersection(QgsGeometry.fromRect(layer.extent()))
    if clipped is None or clipped.isEmpty() or clipped.area() <= 0:
        raise AreaError(tr("The area does not overlap layer '{0}'; draw it over the layer or choose "
                           "'Whole layer'.").format(layer.name()))
    return Area(clipped, layer.crs())


def metres_per_unit(crs: QgsCoordinateReferenceSystem) -> float | None:
    """Metres per map unit of a projected CRS; None for degrees (their size depends on latitude)."""
    units = crs.mapUnits()
    if units == QgsUnitTypes.DistanceDegrees or units == QgsUnitTypes.DistanceUnknownUnit:
        return None
    return QgsUnitTypes.fromUnitToUnitFactor(units, QgsUnitTypes.DistanceMeters)


def utm_crs(lon: float, lat: float) -> QgsCoordinateReferenceSystem:
    """The WGS 84 UTM zone of a point: where metres mean metres on the ground."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    return QgsCoordinateReferenceSystem(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")


def working_crs(layer_crs: QgsCoordinateReferenceSystem, extent_wgs84: QgsRectangle) -> QgsCoordinateReferenceSystem:
    """Where a rendered layer's ground resolution is in true metres: its own CRS if projected in metres
    (Mercator excepted: its metres stretch with latitude), else the UTM zone of the area."""
    mercator = "+proj=merc" in layer_crs.toProj()
    if layer_crs.mapUnits() == QgsUnitTypes.DistanceMeters and not mercator:
        return layer_crs
    centre = extent_wgs84.center()
    return utm_crs(centre.x(), centre.y())


def pixel_size(layer: QgsRasterLayer, area: Area, gsd: float | None) -> tuple[int, int]:
    """Width and height in pixels the backend will segment for ``area`` of ``layer`` (a file layer), the area
    already cut to the layer (``clipped_to_layer``)."""
    extent = area.geometry.boundingBox() if area.geometry is not None else layer.extent()
    unit_x, unit_y = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
    if gsd:
        scale = metres_per_unit(layer.crs())
        if scale is None:  # degrees: metres at the area's latitude
            scale = 111_320.0 * math.cos(math.radians(extent.center().y()))
            return (max(1, round(extent.width() * scale / gsd)), max(1, round(extent.height() * 110_574.0 / gsd)))
        return max(1, round(extent.width() * scale / gsd)), max(1, round(extent.height() * scale / gsd))
    return max(1, math.ceil(extent.width() / unit_x)), max(1, math.ceil(extent.height() / unit_y))


def estimate_text(width: int, height: int, mp_per_s: float, measured: bool) -> str:
    megapixels = width * height / 1e6
    seconds = megapixels / mp_per_s if mp_per_s > 0 else float("nan")
    if seconds < 90:
        duration = tr("{0:.0f} s").format(max(1.0, seconds))
    elif seconds < 5400:
        duration = tr("{0:.0f} min").format(seconds / 60)
    else:
        duration = tr("{0:.1f} h").format(seconds / 3600)
    basis = tr("measured on this backend") if measured else tr("rough guess until the first run")
    return tr("{0} × {1} px ({2:.2f} MP), about {3} ({4})").format(width, height, megapixels, duration, basis)
