"""Processing algorithm "Segment raster with text prompts": the dock's run, as parameters."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (QgsGeometry, QgsProcessing, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingLayerPostProcessorInterface,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString, QgsProcessingParameterVectorDestination)

from rs_openvocab.areas import Area, AreaError
from rs_openvocab.client import BackendError, JobCancelled
from rs_openvocab.connection import CONNECTION
from rs_openvocab.translation import tr
from rs_openvocab.layer_info import file_path
from rs_openvocab.rendering import RenderError
from rs_openvocab.results import categorized_renderer
from rs_openvocab.runs import MODALITIES, SPECKLE_FILTERS, RunPlan, execute, imagery_options, layer_input

def number_options() -> tuple:
    """(parameter, request field, label, type, minimum): labels are translated when asked for."""
    integer, double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
    return (
        ("WINDOW", "window", tr("Window size in pixels (0: the preset's)"), integer, 0),
        ("STRIDE", "stride", tr("Stride in pixels (0: the preset's)"), integer, 0),
        ("PROB_THRESHOLD", "prob_threshold", tr("Probability threshold, 0-1 (-1: the preset's)"), double, -1),
        ("GSD", "gsd", tr("Resample to this ground resolution, m (0: native)"), double, 0),
        ("SIMPLIFY", "simplify", tr("Simplify tolerance, pixels"), double, 0),
        ("MIN_AREA", "min_area", tr("Drop polygons smaller than, m²"), double, 0),
        ("FILL_HOLES", "fill_holes", tr("Fill holes smaller than, m²"), double, 0),
    )


class ClassStyler(QgsProcessingLayerPostProcessorInterface):
    """Gives a loaded result layer the categorized style of the dock's results."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        layer.setRenderer(categorized_renderer(self.names))
        layer.triggerRepaint()


STYLERS: list[ClassStyler] = []


class SegmentAlgorithm(QgsProcessingAlgorithm):
    def name(self) -> str:
        return "segment"

    def displayName(self) -> str:  # noqa: N802
        return tr("Segment raster with text prompts")

    def shortHelpString(self) -> str:  # noqa: N802
        return tr("Open-vocabulary segmentation by the rs-openvocab backend: type the classes, one per line "
                  "(synonyms by commas, e.g. building,roof,house), and get polygons with class_name, score and "
                  "area_m2. Layers that are not files (XYZ, WMS) are drawn at the render resolution first. The "
                  "backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.")

    def createInstance(self) -> "SegmentAlgorithm":  # noqa: N802
        return SegmentAlgorithm()

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", tr("Raster layer")))
        self.addParameter(QgsProcessingParameterString("CLASSES", tr("Classes, one per line (synonyms by commas)"),
                                                       multiLine=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", tr("Extent"), optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource("AOI", tr("Area of interest (polygons)"),
                                                              [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterEnum("MODALITY", tr("Imagery"), [tr("auto"), tr("Optical"), tr("SAR")],
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("SPECKLE", tr("Speckle filter (SAR)"),
                                                     [tr("none"), tr("Lee"), tr("refined Lee")], defaultValue=0))
        self.addParameter(QgsProcessingParameterString("MODEL", tr("Model preset"), "segearth-ov"))
        self.addParameter(QgsProcessingParameterString("DATASET_PRESET", tr("Dataset preset (thresholds)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber("RENDER_GSD", tr("Render resolution for non-file layers, m"),
                                                       QgsProcessingParameterNumber.Double, 1.0, minValue=0.01))
        for key, _, label, kind, minimum in number_options():
            self.addParameter(QgsProcessingParameterNumber(key, label, kind, minimum, minValue=minimum))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", tr("Replace existing outputs"), True))
        output = QgsProcessingParameterVectorDestination("OUTPUT", tr("Polygons"), QgsProcessing.TypeVectorPolygon)
        output.setSupportsNonFileBasedOutput(False)  # the backend writes a file: no database table
        self.addParameter(output)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_RASTER", tr("Class raster"), optional=True,
                                                                  createByDefault=False))

    def prepareAlgorithm(self, parameters, context, feedback) -> bool:  # noqa: N802 (main thread)
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        if layer is None:
            raise QgsProcessingException(tr("Choose a raster layer for INPUT."))
        try:
            area = self._area(parameters, context, layer)
            self.area, self.rendering = layer_input(layer, area, self.parameterAsDouble(parameters, "RENDER_GSD",
                                                                                         context))
        except AreaError as error:
            raise QgsProcessingException(str(error)) from None
        self.layer_name = layer.name()
        self.raster = file_path(layer)
        return True

    def _area(self, parameters, context, layer) -> Area:
        source = self.parameterAsSource(parameters, "AOI", context)
        if source is not None:
            geometries = [f.geometry() for f in source.getFeatures() if f.hasGeometry()]
            if not geometries:
                raise AreaError(tr("The area of interest has no polygons."))
            return Area(QgsGeometry.unaryUnion(geometries), source.sourceCrs())
        if parameters.get("EXTENT"):
            extent = self.parameterAsExtent(parameters, "EXTENT", context, layer.crs())
            return Area(QgsGeometry.fromRect(extent), layer.crs())
        return Area(None, layer.crs())

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        classes = [line.strip() for line in self.parameterAsString(parameters, "CLASSES", context).splitlines()
                   if line.strip()]
        if not classes:
            raise QgsProcessingException(tr("Give at least one class in CLASSES, one per line."))
        output = Path(self.parameterAsOutputLayer(parameters, "OUTPUT", context))
        if output.suffix.lower() not in (".gpkg", ".shp", ".geojson", ".fgb"):
            output = output.with_suffix(".gpkg")
        raster_out = self.parameterAsOutputLayer(parameters, "OUTPUT_RASTER", context)
        options = {"model": self.parameterAsString(parameters, "MODEL", context) or "segearth-ov",
                   "overwrite": self.parameterAsBool(parameters, "OVERWRITE", context)}
        dataset = self.parameterAsString(parameters, "DATASET_PRESET", context)
        if dataset:
            options["dataset_preset"] = dataset
        for key, field, _, kind, minimum in number_options():
            number = (self.parameterAsInt if kind == QgsProcessingParameterNumber.Integer
                      else self.parameterAsDouble)(parameters, key, context)
            if number > minimum and not (field == "gsd" and self.rendering is not None):
                options[field] = number
        options.update(imagery_options(MODALITIES[self.parameterAsEnum(parameters, "MODALITY", context)],
                                       SPECKLE_FILTERS[self.parameterAsEnum(parameters, "SPECKLE", context)],
                                       self.rendering is not None))
        plan = RunPlan(self.layer_name, self.raster, self.area, classes, output,
                       Path(raster_out) if raster_out else None, options, self.rendering)
        try:
            backend = CONNECTION.connect()
            feedback.pushInfo(tr("Backend {0}, version {1}, on {2}").format(
                backend.client.url, backend.health.get("version"), backend.device_text))
            result = execute(backend.client, plan, feedback.setProgress, feedback.isCanceled)
        except JobCancelled:
            feedback.reportError(tr("Cancelled; nothing was written."))
            return {}
        except (BackendError, RenderError) as error:
            raise QgsProcessingException(str(error)) from None
        for note in result.get("notes", []):
            feedback.pushInfo(note)
        feedback.pushInfo(tr("{0} polygons, {1:.2f} MP in {2:.1f} s").format(
            result.get("polygon_count") or 0, result["megapixels"], result["seconds"]))
        if context.willLoadLayerOnCompletion(str(output)):  # styled like the dock's layers once QGIS loads it
            styler = ClassStyler([entry["name"] for entry in result["classes"]])
            STYLERS.append(styler)  # Processing keeps only a pointer: the object must outlive this call
            context.layerToLoadOnCompletionDetails(str(output)).setPostProcessor(styler)
        outputs = {"OUTPUT": str(output)}
        if raster_out:
            outputs["OUTPUT_RASTER"] = raster_out
        return outputs
