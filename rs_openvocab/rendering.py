"""Layers the backend cannot read by path (XYZ/WMS basemaps, layers of other providers), as a GeoTIFF.

The layer is drawn as the map draws it, block by block at the chosen ground resolution, into
a tiled GeoTIFF with its geotransform and CRS; pixels the layer leaves transparent become the
file's mask, so the backend skips them. Memory stays at one block whatever the area's size.
Runs in a task's thread on a clone of the layer made in the main thread.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

from osgeo import gdal
from qgis.core import (QgsCoordinateReferenceSystem, QgsMapLayer, QgsMapRendererCustomPainterJob, QgsMapSettings,
                       QgsRectangle)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor, QImage, QPainter

from rs_openvocab.translation import tr

BLOCK = 1024  # pixels per side of one rendered block
MAX_PIXELS = 40_000 * 40_000
VALID = bytes([0] + [255] * 255)  # alpha -> mask: any opacity is data


class RenderError(RuntimeError):
    pass


class RenderCancelled(RenderError):
    pass


def render_size(extent: QgsRectangle, gsd: float) -> tuple[int, int]:
    width, height = (math.ceil(side / gsd - 1e-6) for side in (extent.width(), extent.height()))  # 512.0000001 is 512
    if width * height > MAX_PIXELS:
        raise RenderError(tr("Rendering {0} × {1} px is too much; choose a smaller area or a coarser "
                             "resolution.").format(width, height))
    return max(1, width), max(1, height)


def render_to_geotiff(layer: QgsMapLayer, extent: QgsRectangle, crs: QgsCoordinateReferenceSystem, gsd: float,
                      path: Path, on_progress: Callable[[float], None] = lambda _: None,
                      is_cancelled: Callable[[], bool] = lambda: False) -> Path:
    """Draw ``layer`` over ``extent`` (in ``crs``) at ``gsd`` map units per pixel into ``path``."""
    width, height = render_size(extent, gsd)
    partial = path.with_name(path.name + ".partial")
    driver = gdal.GetDriverByName("GTiff")
    dataset = driver.Create(str(partial), width, height, 3, gdal.GDT_Byte,
                            ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "PHOTOMETRIC=RGB"])
    try:
        top = extent.yMaximum()  # the grid hangs from the top-left corner, as GDAL's does
        dataset.SetGeoTransform((extent.xMinimum(), gsd, 0.0, top, 0.0, -gsd))
        dataset.SetProjection(crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED_GDAL))
        previous = gdal.GetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
        gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")  # one file, no .msk beside it
        try:
            dataset.CreateMaskBand(gdal.GMF_PER_DATASET)
        finally:
            gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", previous)
        mask = dataset.GetRasterBand(1).GetMaskBand()
        blocks = [(row, col) for row in range(0, height, BLOCK) for col in range(0, width, BLOCK)]
        painted = False
        for done, (row, col) in enumerate(blocks):
            if is_cancelled():
                raise RenderCancelled(tr("Cancelled."))
            w, h = min(BLOCK, width - col), min(BLOCK, height - row)
            block = QgsRectangle(extent.xMinimum() + col * gsd, top - (row + h) * gsd,
                                 extent.xMinimum() + (col + w) * gsd, top - row * gsd)
            rgba = _render_block(layer, block, crs, w, h)
            for band in range(3):
                dataset.GetRasterBand(band + 1).WriteRaster(col, row, w, h, bytes(rgba[band::4]))
            mask.WriteRaster(col, row, w, h, bytes(rgba[3::4]).translate(VALID))
            painted = painted or _has_content(rgba)
            on_progress(100.0 * (done + 1) / len(blocks))
        dataset.FlushCache()
    except BaseException:
        dataset = None
        _remove(partial)
        raise
    dataset = None
    if not painted:
        _remove(partial)
        raise RenderError(tr("Layer '{0}' drew nothing but one colour over the area: its tiles could not be "
                             "fetched or it has no data there.").format(layer.name()))
    os.replace(partial, path)
    return path


def _render_block(layer: QgsMapLayer, extent: QgsRectangle, crs: QgsCoordinateReferenceSystem, width: int,
                  height: int) -> bytearray:
    """RGBA bytes (not premultiplied) of one block."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(crs)
    settings.setOutputSize(QSize(width, height))
    settings.setExtent(extent)
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    settings.setOutputDpi(96)
    settings.setFlag(QgsMapSettings.Antialiasing, False)
    settings.setFlag(QgsMapSettings.RenderMapTile, True)
    image = QImage(width, height, QImage.Format_RGBA8888)
    image.fill(0)
    painter = QPainter(image)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    job.renderSynchronously()
    painter.end()
    errors = job.errors()
    if errors:
        raise RenderError(tr("Layer '{0}' could not be drawn: {1}").format(layer.name(), errors[0].message))
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    stride = image.bytesPerLine()
    raw = bytes(bits)
    if stride == width * 4:
        return bytearray(raw)
    return bytearray(b"".join(raw[r * stride:r * stride + width * 4] for r in range(height)))


def _has_content(rgba: bytearray) -> bool:
    """More than one colour among the opaque pixels (a blank or failed tile is one flat colour)."""
    step = 4 * max(1, len(rgba) // 4 // 20_000)  # about 20 000 pixels, all of them in a small block
    return len({bytes(rgba[i:i + 3]) for i in range(0, len(rgba), step) if rgba[i + 3]}) > 1


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
