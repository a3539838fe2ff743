"""The plugin's entry: a toolbar button and a Plugins-menu entry that open the dock, and the Processing provider."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from rs_openvocab.connection import CONNECTION
from rs_openvocab.translation import install_translator, remove_translator, tr

ICON = Path(__file__).resolve().parent / "resources" / "icon.svg"
MENU = "&rs-openvocab"


class RsOpenVocabPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.translator = None
        self.action: QAction | None = None
        self.dock = None
        self.provider = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name; qgis_process calls it alone)
        from rs_openvocab.processing.provider import SegmentationProvider

        if self.provider is None:
            self.translator = self.translator or install_translator()
            self.provider = SegmentationProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        from rs_openvocab.dock import SegmentDock

        self.translator = self.translator or install_translator()
        self.initProcessing()
        self.action = QAction(QIcon(str(ICON)), tr("Segment with text prompts"), self.iface.mainWindow())
        self.action.setObjectName("RsOpenVocabAction")
        self.action.setCheckable(True)
        self.action.setToolTip(tr("Open-vocabulary segmentation: draw an area, type classes, get polygons"))
        self.dock = SegmentDock(self.iface, self.iface.mainWindow())
        self.dock.setToggleVisibilityAction(self.action)
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToMenu(MENU, self.action)
        QgsApplication.instance().aboutToQuit.connect(CONNECTION.close)

    def unload(self) -> None:
        try:
            QgsApplication.instance().aboutToQuit.disconnect(CONNECTION.close)
        except TypeError:  # initGui never ran (qgis_process)
            pass
        if self.dock is not None:
            self.dock.unload()
            self.iface.removeDockWidget(self.dock)
            self.dock.setParent(None)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removePluginMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.setParent(None)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        CONNECTION.close()
        remove_translator(self.translator)
        self.translator = None
