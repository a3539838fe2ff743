"""Result layers: polygons with a categorized style, the class raster with its palette, exports;
a described target's mask as one semi-transparent fill named after the sentence, and its mask raster.

A class keeps its colour in every run and every project: the colour comes from the class
name itself. The style is saved into the GeoPackage, so the file opens styled anywhere.
"""
from __future__ import annotations

import shutil
import tempfile
import zlib
from pathlib import Path

from qgis.core import (QgsCategorizedSymbolRenderer, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                       QgsCoordinateTransformContext, QgsFillSymbol, QgsPalettedRasterRenderer, QgsProject,
                       QgsRasterLayer, QgsRendererCategory, QgsSingleSymbolRenderer, QgsVectorFileWriter,
                       QgsVectorLayer)
from qgis.PyQt.QtGui import QColor

from rs_openvocab.translation import tr

CLASS_FIELD = "class_name"
TARGET_COLOR = QColor(255, 0, 200)  # a described target's fill (the backend's mask raster colours it so too)
BACKGROUND_NAMES = ("background", "others", "other", "clutter")


class ResultError(RuntimeError):
    pass


def class_name(line: str) -> str:
    """The name a class line gets in the outputs: its first synonym."""
    return line.split(",")[0].strip()


def short_prompt(prompt: str, limit: int = 60) -> str:
    """``prompt`` on one line, cut at ``limit`` characters (layer names, task titles)."""
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def class_color(name: str) -> QColor:
    """A colour of its own for each class name, the same in every run; background-like classes are grey."""
    if name.lower() in BACKGROUND_NAMES:
        return QColor(128, 128, 128)
    digest = zlib.crc32(name.strip().lower().encode("utf-8"))
    return QColor.fromHsv(digest % 360, 150 + (digest >> 9) % 80, 190 + (digest >> 17) % 50)


def categorized_renderer(names: list[str]) -> QgsCategorizedSymbolRenderer:
    categories = []
    for name in names:
        symbol = QgsFillSymbol.createSimple({"color": class_color(name).name(), "outline_color": "35,35,35,200",
                                             "outline_width": "0.2"})
        symbol.setOpacity(0.75)
        categories.append(QgsRendererCategory(name, symbol, name))
    return QgsCategorizedSymbolRenderer(CLASS_FIELD, categories)


def _opened_polygons(path: Path, title: str, fields: set[str]) -> QgsVectorLayer:
    layer = QgsVectorLayer(str(path), title, "ogr")
    if not layer.isValid():
        raise ResultError(tr("The backend wrote {0}, but QGIS cannot open it.").format(path))
    missing = fields - set(layer.fields().names())
    if missing:
        raise ResultError(tr("{0} lacks the fields {1}; is the backend's version the plugin's?").format(
            path, ", ".join(sorted(missing))))
    return layer


def polygon_layer(path: Path, names: list[str], title: str) -> QgsVectorLayer:
    """The GeoPackage's polygons, styled by class; its style saved as the file's default."""
    layer = _opened_polygons(path, title, {"class_name", "score", "area_m2"})
    layer.setRenderer(categorized_renderer(names))
    layer.saveStyleToDatabase(title, tr("rs-openvocab classes"), True, "")
    return layer


def target_symbol() -> QgsFillSymbol:
    fill = QColor(TARGET_COLOR)
    fill.setAlpha(110)
    return QgsFillSymbol.createSimple({"color": ",".join(map(str, fill.getRgb())),
                                       "outline_color": TARGET_COLOR.name(), "outline_width": "0.4"})


def target_layer(path: Path, title: str) -> QgsVectorLayer:
    """A refer run's polygons (prompt, score, area_m2): one semi-transparent fill, the prompt and score as each
    feature's display name; the style saved as the file's default."""
    layer = _opened_polygons(path, title, {"prompt", "score", "area_m2"})
    layer.setRenderer(QgsSingleSymbolRenderer(target_symbol()))
    layer.setDisplayExpression("\"prompt\" || ' (' || format_number(\"score\", 2) || ')'")
    for name, alias in (("prompt", tr("Described target")), ("score", tr("Score")), ("area_m2", tr("Area (m²)"))):
        layer.setFieldAlias(layer.fields().indexOf(name), alias)
    if path.suffix.lower() == ".gpkg":
        layer.saveStyleToDatabase(title, tr("rs-openvocab described target"), True, "")
    return layer


def mask_raster_layer(path: Path, title: str) -> QgsRasterLayer:
    """A refer run's mask raster: band 1 drawn, the target in the fill's colour, the rest transparent."""
    layer = QgsRasterLayer(str(path), title, "gdal")
    if not layer.isValid():
        raise ResultError(tr("The backend wrote {0}, but QGIS cannot open it.").format(path))
    classes = [QgsPalettedRasterRenderer.Class(1, TARGET_COLOR, title)]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
    renderer.setOpacity(0.6)
    layer.setRenderer(renderer)
    return layer


def class_raster_layer(path: Path, names: list[str], title: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), title, "gdal")
    if not layer.isValid():
        raise ResultError(tr("The backend wrote {0}, but QGIS cannot open it.").format(path))
    classes = [QgsPalettedRasterRenderer.Class(index, class_color(name), name) for index, name in enumerate(names)]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    return layer


def add_result(plan, result: dict, project: QgsProject | None = None) -> list:
    """Open the run's outputs as styled layers in the project (nothing is added if any cannot be opened)."""
    project = project or QgsProject.instance()
    names = [entry["name"] for entry in result["classes"]] or [class_name(line) for line in plan.classes]
    title = plan.output.stem
    layers = [polygon_layer(plan.output, names, title)]
    if plan.class_raster and plan.class_raster.exists():
        layers.append(class_raster_layer(plan.class_raster, names, title + " " + tr("classes")))
    for layer in reversed(layers):
        project.addMapLayer(layer)
    return layers


def add_describe_result(plan, result: dict, project: QgsProject | None = None) -> list:
    """Open a refer run's outputs as layers named after its prompt (nothing is added if any cannot be opened)."""
    project = project or QgsProject.instance()
    title = short_prompt(result.get("prompt") or plan.prompt)
    layers = [target_layer(plan.output, title)]
    if plan.class_raster and plan.class_raster.exists():
        layers.append(mask_raster_layer(plan.class_raster, title + " " + tr("mask")))
    for layer in reversed(layers):
        project.addMapLayer(layer)
    return layers


EXPORT_FORMATS = {  # file filter -> OGR driver
    "ESRI Shapefile (*.shp)": "ESRI Shapefile",
    "GeoPackage (*.gpkg)": "GPKG",
    "GeoJSON (*.geojson)": "GeoJSON",
    "FlatGeobuf (*.fgb)": "FlatGeobuf",
    "KML (*.kml)": "KML",
    "CSV (*.csv)": "CSV",
}


def write_vector(layer: QgsVectorLayer, target: Path, driver: str,
                 crs: QgsCoordinateReferenceSystem | None = None,
                 context: QgsCoordinateTransformContext | None = None) -> Path:
    """Write ``layer`` as ``driver`` (in ``crs`` if given) to ``target`` through a temporary folder beside it,
    then move every part into place: a failed write leaves nothing."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".rs-openvocab-write-", dir=target.parent))
    try:
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName, options.fileEncoding, options.layerName = driver, "UTF-8", target.stem
        context = context or QgsProject.instance().transformContext()
        if crs is not None:
            options.ct = QgsCoordinateTransform(layer.crs(), crs, context)
        error, message, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(folder / target.name), context,
                                                                       options)
        if error != QgsVectorFileWriter.NoError:
            raise ResultError(tr("Could not write {0}: {1}").format(target, message))
        for part in folder.iterdir():  # a shapefile is several files: .shp .shx .dbf .prj .cpg
            shutil.move(str(part), target.parent / part.name)
        return target
    finally:
        shutil.rmtree(folder, ignore_errors=True)
