"""What the plugin reads off a raster layer: is it a file the backend can open, is it radar."""
from __future__ import annotations

import os
from pathlib import Path

from qgis.core import Qgis, QgsRasterLayer

RADAR_TYPES = (Qgis.Float32, Qgis.Float64, Qgis.UInt16, Qgis.Int16, Qgis.CFloat32, Qgis.CFloat64, Qgis.CInt16,
               Qgis.CInt32)


def file_path(layer: QgsRasterLayer) -> Path | None:
    """The local file GDAL reads the layer from (GeoTIFF, VRT, JP2, ...), or None (XYZ, WMS, other providers)."""
    if layer.providerType() != "gdal":
        return None
    path = layer.source().split("|")[0]
    return Path(path) if os.path.isfile(path) else None


def suggested_modality(layer: QgsRasterLayer | None) -> str:
    """'sar' for one or two float or 16-bit bands (a VV/VH or HH/HV image), else 'optical'."""
    if layer is None or not layer.isValid() or layer.bandCount() not in (1, 2):
        return "optical"
    return "sar" if layer.dataProvider().dataType(1) in RADAR_TYPES else "optical"
