"""Processing algorithm "Segment a folder of scenes": the backend's batch job for a folder of rasters."""
from __future__ import annotations

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputNumber, QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterString)

from rs_openvocab.client import BackendError, JobCancelled, follow_job
from rs_openvocab.connection import CONNECTION
from rs_openvocab.translation import tr

VECTOR_FORMATS = ("gpkg", "shp", "fgb", "geojson")


class BatchAlgorithm(QgsProcessingAlgorithm):
    def name(self) -> str:
        return "batch"

    def displayName(self) -> str:  # noqa: N802
        return tr("Segment a folder of scenes")

    def shortHelpString(self) -> str:  # noqa: N802
        return tr("Segments every raster in a folder and its subfolders on the rs-openvocab backend: a class raster "
                  "and a polygon file per scene, named after it, in the output folder, and manifest.csv with each "
                  "scene's status, classes found and error. Running it again skips the scenes already done. The "
                  "backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.")

    def createInstance(self) -> "BatchAlgorithm":  # noqa: N802
        return BatchAlgorithm()

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("INPUT", tr("Folder of scenes"),
                                                     QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterString("CLASSES", tr("Classes, one per line (synonyms by commas)"),
                                                       multiLine=True))
        self.addParameter(QgsProcessingParameterString("MODEL", tr("Model preset"), "segearth-ov"))
        self.addParameter(QgsProcessingParameterEnum("VECTOR_FORMAT", tr("Polygon format"), list(VECTOR_FORMATS),
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean("PROBS", tr("Also write probability rasters"), False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", tr("Output folder")))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", tr("Manifest")))
        self.addOutput(QgsProcessingOutputNumber("DONE", tr("Scenes done")))
        self.addOutput(QgsProcessingOutputNumber("FAILED", tr("Scenes failed")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        classes = [line.strip() for line in self.parameterAsString(parameters, "CLASSES", context).splitlines()
                   if line.strip()]
        if not classes:
            raise QgsProcessingException(tr("Give at least one class in CLASSES, one per line."))
        out_dir = self.parameterAsString(parameters, "OUTPUT", context)
        body = {"kind": "batch", "inputs": self.parameterAsFile(parameters, "INPUT", context), "classes": classes,
                "out_dir": out_dir, "model": self.parameterAsString(parameters, "MODEL", context) or "segearth-ov",
                "vector_format": VECTOR_FORMATS[self.parameterAsEnum(parameters, "VECTOR_FORMAT", context)],
                "probs": self.parameterAsBool(parameters, "PROBS", context)}
        try:
            backend = CONNECTION.connect()
            feedback.pushInfo(tr("Backend {0}, version {1}, on {2}").format(
                backend.client.url, backend.health.get("version"), backend.device_text))
            outcome = follow_job(backend.client, body, lambda percent, status: feedback.setProgress(percent),
                                 feedback.isCanceled)
        except JobCancelled:
            feedback.reportError(tr("Cancelled; the scenes already done are in the manifest."))
            return {}
        except BackendError as error:
            raise QgsProcessingException(str(error)) from None
        result = outcome.result
        for row in result["rows"]:
            if row.get("error"):
                feedback.reportError(f"{row['scene']}: {row['error']}")
        feedback.pushInfo(tr("{0} scenes: {1} done, {2} failed, {3} skipped in {4:.1f} s").format(
            result["scenes"], result["done"], result["failed"], result["skipped"], result["seconds"]))
        return {"OUTPUT": out_dir, "MANIFEST": result["files"][0]["path"], "DONE": result["done"],
                "FAILED": result["failed"]}
