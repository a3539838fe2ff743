"""The "rs-openvocab" provider in the Processing toolbox."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from rs_openvocab.translation import tr

ICON = Path(__file__).resolve().parent.parent / "resources" / "icon.svg"


class SegmentationProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "rs_openvocab"

    def name(self) -> str:
        return tr("rs-openvocab")

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def loadAlgorithms(self) -> None:  # noqa: N802
        from rs_openvocab.processing.batch_algorithm import BatchAlgorithm
        from rs_openvocab.processing.segment_algorithm import SegmentAlgorithm

        self.addAlgorithm(SegmentAlgorithm())
        self.addAlgorithm(BatchAlgorithm())
