"""The dock: backend, layer, area, classes and model or a described target, options; Run, Cancel, Export.

Everything slow (connecting, downloading weights, rendering, segmenting) runs in a QgsTask;
the dock only reads widgets, builds a ``RunPlan`` and shows what comes back. Errors are one
sentence in the message bar; the details go to the log panel under the plugin's tab.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from qgis.core import (Qgis, QgsApplication, QgsCoordinateReferenceSystem, QgsCsException, QgsGeometry,
                       QgsMapLayerProxyModel, QgsMessageLog, QgsProject, QgsRasterLayer, QgsVectorLayer)
from qgis.gui import (QgsCollapsibleGroupBox, QgsDockWidget, QgsDoubleSpinBox, QgsFileWidget,
                      QgsMapLayerComboBox, QgsPasswordLineEdit, QgsSpinBox)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                                 QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from rs_openvocab import settings
from rs_openvocab.areas import (DRAWN, MAP_EXTENT, SELECTED_FEATURES, WHOLE_LAYER, Area, AreaError, estimate_text,
                                from_extent, from_selected_features, pixel_size)
from rs_openvocab.client import BackendError, follow_job
from rs_openvocab.connection import CONNECTION, Backend
from rs_openvocab.translation import tr
from rs_openvocab.layer_info import file_path, suggested_modality
from rs_openvocab.map_tools import PolygonTool, RectangleTool
from rs_openvocab.rendering import RenderError, render_size
from rs_openvocab.results import (EXPORT_FORMATS, ResultError, add_describe_result, add_result, short_prompt,
                                  write_vector)
from rs_openvocab.runs import (CallTask, DescribePlan, Rendering, RunOutcome, RunPlan, SegmentTask, imagery_options,
                               layer_input)

LOG_TAG = "rs-openvocab"
SEGMENT, REFER = "segment", "refer"  # the dock's modes: name the classes, describe the target


def log(text: str, level=Qgis.Info) -> None:
    QgsMessageLog.logMessage(text, LOG_TAG, level)


class SegmentDock(QgsDockWidget):
    def __init__(self, iface, parent=None) -> None:
        super().__init__(tr("rs-openvocab segmentation"), parent)
        self.setObjectName("RsOpenVocabDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.backend: Backend | None = None
        self.models: list[dict] = []
        self.datasets: list[dict] = []
        self.drawn: Area | None = None
        self.task: SegmentTask | None = None
        self.calls: list[CallTask] = []
        self.last_result_layers: list = []
        self.tools = {"rectangle": RectangleTool(self.canvas), "polygon": PolygonTool(self.canvas)}
        for tool in self.tools.values():
            tool.drawn.connect(self._area_drawn)
        self._build()
        self._load_settings()
        self._layer_changed()

    # -- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        column = QVBoxLayout(body)

        self.backend_box = QgsCollapsibleGroupBox(tr("Backend"))
        form = QFormLayout(self.backend_box)
        self.status_label = QLabel(tr("Not connected"))
        self.status_label.setWordWrap(True)
        self.mode = QComboBox()
        self.mode.addItem(tr("Start it from a Python environment"), "python")
        self.mode.addItem(tr("Connect to a running rsov serve"), "url")
        self.python = QgsFileWidget()
        self.python.setStorageMode(QgsFileWidget.GetFile)
        self.url = QLineEdit()
        self.token = QgsPasswordLineEdit()
        self.connect_button = QPushButton(tr("Connect"))
        form.addRow(self.status_label)
        form.addRow(tr("Backend"), self.mode)
        form.addRow(tr("Python"), self.python)
        form.addRow(tr("URL"), self.url)
        form.addRow(tr("Token"), self.token)
        form.addRow(self.connect_button)
        column.addWidget(self.backend_box)

        form = QFormLayout()
        self.layer = QgsMapLayerComboBox()
        self.layer.setFilters(QgsMapLayerProxyModel.RasterLayer)
        form.addRow(tr("Raster layer"), self.layer)
        self.render_gsd = QgsDoubleSpinBox()
        self.render_gsd.setRange(0.01, 10000)
        self.render_gsd.setDecimals(2)
        self.render_gsd.setSuffix(" m")
        self.render_gsd.setToolTip(tr("The layer is not a file the backend can read: it is drawn at this ground "
                                      "resolution first."))
        self.render_label = QLabel(tr("Draw at"))
        form.addRow(self.render_label, self.render_gsd)
        self.area = QComboBox()
        for label, key in ((tr("Whole layer"), WHOLE_LAYER), (tr("Current map extent"), MAP_EXTENT),
                           (tr("Drawn on the map"), DRAWN), (tr("Selected features of"), SELECTED_FEATURES)):
            self.area.addItem(label, key)
        form.addRow(tr("Area"), self.area)
        draw_row = QHBoxLayout()
        self.draw_rectangle = QPushButton(tr("Draw rectangle"))
        self.draw_polygon = QPushButton(tr("Draw polygon"))
        draw_row.addWidget(self.draw_rectangle)
        draw_row.addWidget(self.draw_polygon)
        form.addRow(draw_row)
        self.area_layer = QgsMapLayerComboBox()
        self.area_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.area_layer_label = QLabel(tr("Polygon layer"))
        form.addRow(self.area_layer_label, self.area_layer)
        self.size_label = QLabel()
        self.size_label.setWordWrap(True)
        form.addRow(self.size_label)
        column.addLayout(form)

        form = QFormLayout()
        self.job = QComboBox()
        self.job.addItem(tr("Name the classes"), SEGMENT)
        self.job.addItem(tr("Describe the target"), REFER)
        self.job.setToolTip(tr("Name the classes: every pixel gets one of the classes you list. Describe the "
                               "target: a sentence about one thing in the area, and a GeoMag model finds its mask."))
        form.addRow(tr("Find"), self.job)
        self.segment_rows: list[QWidget] = []  # shown when naming the classes
        self.describe_rows: list[QWidget] = []  # shown when describing the target
        self.classes = QPlainTextEdit()
        self.classes.setPlaceholderText(tr("One class per line, synonyms by commas:\nbuilding,roof,house\nroad\n"
                                           "water"))
        self.classes.setMaximumHeight(110)
        self.recent = QComboBox()
        self.dataset = QComboBox()
        self._row(form, self.segment_rows, tr("Classes"), self.classes)
        self._row(form, self.segment_rows, tr("Recent"), self.recent)
        self._row(form, self.segment_rows, tr("Dataset preset"), self.dataset)
        self.sentence = QLineEdit()
        self.sentence.setPlaceholderText(tr("the small boat beside the second pier"))
        self.sentence.setToolTip(tr("One sentence in English about the target in the area; its mask is added as a "
                                    "layer named after it."))
        self.checkpoint = QgsFileWidget()
        self.checkpoint.setStorageMode(QgsFileWidget.GetFile)
        self.checkpoint.setFilter(tr("GeoMag checkpoint (*.safetensors)") + ";;" + tr("All files (*)"))
        self.checkpoint.setToolTip(tr("A GeoMag checkpoint file (training/geomag writes one), as a path the backend "
                                      "can read; its base models come through the backend's weights cache."))
        self._row(form, self.describe_rows, tr("Target"), self.sentence)
        self._row(form, self.describe_rows, tr("GeoMag checkpoint"), self.checkpoint)
        self.modality = QComboBox()
        self.modality.addItem(tr("Optical"), "optical")
        self.modality.addItem(tr("SAR"), "sar")
        self.modality_hint = QLabel()
        self._row(form, self.segment_rows, tr("Imagery"), self.modality)
        self._row(form, self.segment_rows, None, self.modality_hint)
        self.model = QComboBox()
        self.download_button = QPushButton(tr("Download weights"))
        model_row = QWidget()
        model_layout = QHBoxLayout(model_row)
        model_layout.setContentsMargins(0, 0, 0, 0)
        model_layout.addWidget(self.model, 1)
        model_layout.addWidget(self.download_button)
        self._row(form, self.segment_rows, tr("Model"), model_row)
        column.addLayout(form)

        self.advanced = QgsCollapsibleGroupBox(tr("Advanced"))
        self.advanced.setCollapsed(True)
        form = QFormLayout(self.advanced)
        self.window = self._spin(0, 4096, tr("preset"))
        self.stride = self._spin(0, 4096, tr("preset"))
        self.threshold = self._double(0, 1, 2, tr("preset"))
        self.gsd = self._double(0, 10000, 2, tr("native"), " m")
        self.simplify = self._double(0, 100, 1, tr("none"), " px")
        self.min_area = self._double(0, 1e9, 1, tr("none"), " m²")
        self.fill_holes = self._double(0, 1e9, 1, tr("none"), " m²")
        self.speckle = QComboBox()
        self.speckle.addItem(tr("none"), "none")
        self.speckle.addItem(tr("Lee"), "lee")
        self.speckle.addItem(tr("refined Lee"), "refined-lee")
        self.speckle.setToolTip(tr("SAR only: filters speckle before the dB conversion (7 × 7 window)"))
        self.speckle.setEnabled(False)
        self.class_raster = QCheckBox(tr("Also add the class raster"))
        self.no_magcrop = QCheckBox(tr("Read the whole area at once (no MagCrop)"))
        self.no_magcrop.setToolTip(tr("MagCrop lets the model choose a part of the area and read it again at full "
                                      "resolution; without it the area is read once at the model's input size."))
        for label, widget, rows in (
                (tr("Window"), self.window, self.segment_rows), (tr("Stride"), self.stride, self.segment_rows),
                (tr("Probability threshold"), self.threshold, None),
                (tr("Resample to GSD"), self.gsd, self.segment_rows), (tr("Simplify"), self.simplify, None),
                (tr("Minimum area"), self.min_area, None),
                (tr("Fill holes below"), self.fill_holes, self.segment_rows),
                (tr("Speckle filter"), self.speckle, self.segment_rows)):
            self._row(form, rows, label, widget)
        form.addRow(self.class_raster)
        self._row(form, self.describe_rows, None, self.no_magcrop)
        column.addWidget(self.advanced)

        form = QFormLayout()
        self.output = QgsFileWidget()
        self.output.setStorageMode(QgsFileWidget.SaveFile)
        self.output.setFilter("GeoPackage (*.gpkg)")
        self.output.lineEdit().setPlaceholderText(tr("project folder / rs-openvocab / LAYER_TIME.gpkg"))
        form.addRow(tr("Save to"), self.output)
        column.addLayout(form)
        buttons = QHBoxLayout()
        self.run_button = QPushButton(tr("Run"))
        self.cancel_button = QPushButton(tr("Cancel"))
        self.export_button = QPushButton(tr("Export…"))
        for button in (self.run_button, self.cancel_button, self.export_button):
            buttons.addWidget(button)
        column.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        column.addWidget(self.progress)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.job.currentIndexChanged.connect(self._job_changed)
        self.connect_button.clicked.connect(self.connect_backend)
        self.layer.layerChanged.connect(self._layer_changed)
        self.area.currentIndexChanged.connect(self._area_changed)
        self.area_layer.layerChanged.connect(self.update_estimate)
        self.render_gsd.valueChanged.connect(self.update_estimate)
        self.gsd.valueChanged.connect(self.update_estimate)
        self.draw_rectangle.clicked.connect(lambda: self._draw("rectangle"))
        self.draw_polygon.clicked.connect(lambda: self._draw("polygon"))
        self.recent.activated.connect(self._recent_chosen)
        self.dataset.activated.connect(self._dataset_chosen)
        self.modality.currentIndexChanged.connect(self._fill_models)
        self.modality.currentIndexChanged.connect(
            lambda: self.speckle.setEnabled(self.modality.currentData() == "sar"))
        self.model.currentIndexChanged.connect(self._model_changed)
        self.download_button.clicked.connect(self.download_weights)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.export)
        self.canvas.extentsChanged.connect(self._extent_changed)
        self._set_running(False)

    @staticmethod
    def _row(form: QFormLayout, rows: list[QWidget] | None, label: str | None, widget: QWidget) -> None:
        """A row of ``form``; its label and widget are listed in ``rows`` (shown in one mode only) if given."""
        title = QLabel(label) if label is not None else None
        if title is not None:
            form.addRow(title, widget)
        else:
            form.addRow(widget)
        if rows is not None:
            rows.extend(w for w in (title, widget) if w is not None)

    def _spin(self, low: int, high: int, special: str) -> QgsSpinBox:
        box = QgsSpinBox()
        box.setRange(low, high)
        box.setSpecialValueText(special)
        box.setClearValue(low)
        return box

    def _double(self, low: float, high: float, decimals: int, special: str, suffix: str = "") -> QgsDoubleSpinBox:
        box = QgsDoubleSpinBox()
        box.setRange(low, high)
        box.setDecimals(decimals)
        box.setSpecialValueText(special)
        box.setSuffix(suffix)
        box.setClearValue(low)
        return box

    # -- settings -----------------------------------------------------------------------------
    def _load_settings(self) -> None:
        self.mode.setCurrentIndex(max(0, self.mode.findData(settings.backend_mode())))
        self.python.setFilePath(settings.backend_python())
        self.url.setText(settings.backend_url())
        self.token.setText(settings.backend_token())
        self.render_gsd.setValue(settings.value("render_gsd", 1.0, float))
        self.checkpoint.setFilePath(settings.geomag_checkpoint())
        self._fill_recent()
        self._mode_changed()
        self.job.setCurrentIndex(max(0, self.job.findData(settings.run_kind())))
        self._job_changed()

    def _save_backend_settings(self) -> None:
        settings.set_value("backend/mode", self.mode.currentData())
        settings.set_value("backend/python", self.python.filePath())
        settings.set_value("backend/url", self.url.text().strip())
        settings.set_value("backend/token", self.token.text().strip())

    def _fill_recent(self) -> None:
        self.recent.clear()
        self.recent.addItem(tr("— recent class lists —"), None)
        for prompt in settings.recent_prompts():
            self.recent.addItem(" · ".join(prompt.splitlines())[:80], prompt)

    # -- backend ------------------------------------------------------------------------------
    def _mode_changed(self) -> None:
        python = self.mode.currentData() == "python"
        self.python.setEnabled(python)
        self.url.setEnabled(not python)
        self.token.setEnabled(not python)

    # -- what to find -------------------------------------------------------------------------
    def describing(self) -> bool:
        """True in "Describe the target" mode (a refer run), False when naming the classes (a segment run)."""
        return self.job.currentData() == REFER

    def _job_changed(self, *_) -> None:
        describing = self.describing()
        for widget in self.segment_rows:
            widget.setVisible(not describing)
        for widget in self.describe_rows:
            widget.setVisible(describing)
        self.class_raster.setText(tr("Also add the mask raster") if describing else tr("Also add the class raster"))
        self.threshold.setSpecialValueText(tr("default (0.5)") if describing else tr("preset"))
        self.update_estimate()

    def connect_backend(self) -> None:
        """Connect (starting the service if so set) in a task; the models and presets come with it."""
        self._save_backend_settings()
        self.status_label.setText(tr("Connecting…"))
        self.connect_button.setEnabled(False)
        mode, url, token, python = (self.mode.currentData(), self.url.text().strip(), self.token.text().strip(),
                                    self.python.filePath())

        def call():
            backend = CONNECTION.connect(mode, url, token, python)
            return backend, backend.client.models(), backend.client.dataset_presets()

        self._start(CallTask(tr("Connecting to the rs-openvocab backend"), call, self._connected))

    def _connected(self, value, error: BackendError | None) -> None:
        self.connect_button.setEnabled(True)
        if error is not None:
            self.backend = None
            self.status_label.setText(tr("Not connected"))
            self.report(error)
            return
        self.backend, self.models, self.datasets = value
        health = self.backend.health
        self.status_label.setText(tr("Connected: {0} · version {1} · {2}").format(
            self.backend.device_text, health.get("version", "?"), self.backend.client.url))
        warning = self.backend.version_warning
        if warning:
            self.iface.messageBar().pushMessage(LOG_TAG, warning, Qgis.Warning, 10)
        self.dataset.clear()
        self.dataset.addItem(tr("— none —"), None)
        for preset in self.datasets:
            self.dataset.addItem(preset["name"], preset)
        self._fill_models()
        self.update_estimate()

    def _fill_models(self) -> None:
        current = (self.model.currentData() or {}).get("name")
        self.model.blockSignals(True)
        self.model.clear()
        for model in self.models:
            if model["modality"] != self.modality.currentData():
                continue
            label = model["name"] if model["ready"] else tr("{0} (weights missing)").format(model["name"])
            self.model.addItem(label, model)
            self.model.setItemData(self.model.count() - 1, model["description"], Qt.ToolTipRole)
        names = [self.model.itemData(i)["name"] for i in range(self.model.count())]
        self.model.setCurrentIndex(names.index(current) if current in names else 0)
        self.model.blockSignals(False)
        self._model_changed()

    def _model_changed(self) -> None:
        model = self.model.currentData()
        self.download_button.setVisible(bool(model) and not model["ready"])

    def download_weights(self) -> None:
        model = self.model.currentData()
        if not model or self.backend is None:
            return
        missing = [w["name"] for w in model["weights"] if not w["present"]]
        client = self.backend.client
        self.download_button.setEnabled(False)

        def call():
            for name in missing:
                body = {"kind": "download_weights", "name": name}
                follow_job(client, body, lambda *_: None, lambda: False, poll_s=0.5)
            return client.models()

        self._start(CallTask(tr("Downloading weights for {0}").format(model["name"]), call, self._downloaded))

    def _downloaded(self, models, error: BackendError | None) -> None:
        self.download_button.setEnabled(True)
        if error is not None:
            self.report(error)
            return
        self.models = models
        self._fill_models()
        self.iface.messageBar().pushMessage(LOG_TAG, tr("The weights are downloaded."), Qgis.Success, 5)

    # -- layer and area -----------------------------------------------------------------------
    def _layer_changed(self, *_) -> None:
        layer = self.layer.currentLayer()
        is_file = layer is not None and file_path(layer) is not None
        self.render_gsd.setVisible(layer is not None and not is_file)
        self.render_label.setVisible(layer is not None and not is_file)
        suggestion = suggested_modality(layer)
        self.modality.setCurrentIndex(self.modality.findData(suggestion))
        self.modality_hint.setText(tr("Suggested from the layer: {0}").format(
            tr("SAR") if suggestion == "sar" else tr("optical")) if layer is not None else "")
        self._area_changed()

    def _area_changed(self, *_) -> None:
        key = self.area.currentData()
        self.area_layer.setVisible(key == SELECTED_FEATURES)
        self.area_layer_label.setVisible(key == SELECTED_FEATURES)
        if key != DRAWN:
            self._clear_drawing()
        self.update_estimate()

    def _draw(self, kind: str) -> None:
        self.area.setCurrentIndex(self.area.findData(DRAWN))
        self.canvas.setMapTool(self.tools[kind])

    def _area_drawn(self, geometry: QgsGeometry) -> None:
        self.set_drawn_area(geometry, self.canvas.mapSettings().destinationCrs())

    def set_drawn_area(self, geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem) -> None:
        """The area drawn on the map (or given), in ``crs``."""
        self.drawn = Area(QgsGeometry(geometry), crs)
        self.area.setCurrentIndex(self.area.findData(DRAWN))
        self.update_estimate()

    def _clear_drawing(self) -> None:
        for tool in self.tools.values():
            tool.clear()
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)

    def _extent_changed(self) -> None:
        if self.area.currentData() == MAP_EXTENT:
            self.update_estimate()

    def chosen_area(self) -> Area:
        key = self.area.currentData()
        if key == MAP_EXTENT:
            settings_ = self.canvas.mapSettings()
            return from_extent(settings_.visibleExtent(), settings_.destinationCrs())
        if key == DRAWN:
            if self.drawn is None:
                raise AreaError(tr("Draw a rectangle or a polygon on the map first."))
            return self.drawn
        if key == SELECTED_FEATURES:
            return from_selected_features(self.area_layer.currentLayer())
        layer = self.layer.currentLayer()
        return Area(None, layer.crs() if layer else QgsCoordinateReferenceSystem())

    def update_estimate(self, *_) -> None:
        layer = self.layer.currentLayer()
        if layer is None:
            self.size_label.setText(tr("Add a raster layer to the project."))
            return
        describing = self.describing()
        try:
            plan_area, rendering = self._area_for(layer, clone=False)
            if rendering is not None:
                width, height = render_size(rendering.extent, rendering.gsd)
            else:
                width, height = pixel_size(layer, plan_area, None if describing else self.gsd.value() or None)
        except (AreaError, RenderError, ValueError, OverflowError, QgsCsException) as error:
            self.size_label.setText(str(error) or tr("The area cannot be transformed into the layer's CRS."))
            return
        if describing:  # the model reads the area at its own input size (and MagCrop's crops): no rate applies
            self.size_label.setText(tr("{0} × {1} px ({2:.2f} MP)").format(width, height, width * height / 1e6))
            return
        device = self.backend.health.get("device", "cpu") if self.backend else "cpu"
        self.size_label.setText(estimate_text(width, height, *settings.megapixels_per_second(device)))

    def _area_for(self, layer: QgsRasterLayer, clone: bool = True) -> tuple[Area, Rendering | None]:
        return layer_input(layer, self.chosen_area(), self.render_gsd.value(), clone)

    # -- classes ------------------------------------------------------------------------------
    def class_lines(self) -> list[str]:
        return [line.strip() for line in self.classes.toPlainText().splitlines() if line.strip()]

    def _recent_chosen(self, index: int) -> None:
        prompt = self.recent.itemData(index)
        if prompt:
            self.classes.setPlainText(prompt)

    def _dataset_chosen(self, index: int) -> None:
        preset = self.dataset.itemData(index)
        if not preset:
            return
        self.classes.setPlainText("\n".join(preset["classes"]))
        self.threshold.setValue(preset["prob_threshold"])
        self.modality.setCurrentIndex(self.modality.findData(preset["modality"]))

    # -- running ------------------------------------------------------------------------------
    def default_output(self, layer_name: str) -> Path:
        home = QgsProject.instance().homePath() or str(Path.home())
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^\w.-]+", "_", layer_name).strip("_") or "layer"
        return Path(home) / "rs-openvocab" / f"{safe}_{stamp}.gpkg"

    def described_target(self) -> tuple[str, str]:
        """The sentence (on one line) and the GeoMag checkpoint; AreaError with one sentence if either is missing."""
        prompt = " ".join(self.sentence.text().split())
        if not prompt:
            raise AreaError(tr("Describe the target in a sentence (in English), e.g. “the small boat beside the "
                               "second pier”."))
        checkpoint = self.checkpoint.filePath().strip()
        if not checkpoint:
            raise AreaError(tr("Choose a GeoMag checkpoint file (training/geomag writes one)."))
        local = self.backend is None or self.backend.client.is_local  # a remote backend reads its own disk
        if local and not Path(checkpoint).is_file():
            raise AreaError(tr("The GeoMag checkpoint {0} is not a file; choose it again.").format(checkpoint))
        return prompt, checkpoint

    def _output_for(self, name: str) -> tuple[Path, dict]:
        """The polygons' file (the one chosen, else a new one named after ``name``) and the request options
        that follow from it."""
        output = Path(self.output.filePath()) if self.output.filePath() else self.default_output(name)
        if output.suffix.lower() != ".gpkg":
            output = output.with_suffix(".gpkg")
        options = {}
        if output.exists():
            options["overwrite"] = True  # the user chose the file in a save dialog that asked
        return output, options

    def plan(self) -> RunPlan:
        """The run the widgets describe; AreaError/ValueError with one sentence if something is missing."""
        layer = self.layer.currentLayer()
        if layer is None:
            raise AreaError(tr("Choose a raster layer."))
        if self.describing():
            return self._describe_plan(layer)
        classes = self.class_lines()
        if not classes:
            raise AreaError(tr("Type at least one class, one per line (synonyms by commas)."))
        model = self.model.currentData()
        if model is None:
            raise AreaError(tr("Connect to the backend and choose a model."))
        area, rendering = self._area_for(layer)
        output, options = self._output_for(layer.name())
        options["model"] = model["name"]
        dataset = self.dataset.currentData()
        if dataset:
            options["dataset_preset"] = dataset["name"]
        for field, box in (("window", self.window), ("stride", self.stride), ("prob_threshold", self.threshold),
                           ("simplify", self.simplify), ("min_area", self.min_area), ("fill_holes", self.fill_holes)):
            if box.value() > box.minimum():
                options[field] = box.value()
        if self.gsd.value() > 0 and rendering is None:
            options["gsd"] = self.gsd.value()
        options.update(imagery_options(self.modality.currentData(), self.speckle.currentData(), rendering is not None))
        class_raster = output.with_name(output.stem + "_classes.tif") if self.class_raster.isChecked() else None
        return RunPlan(layer.name(), file_path(layer), area, classes, output, class_raster, options, rendering)

    def _describe_plan(self, layer: QgsRasterLayer) -> DescribePlan:
        """A refer run: the same layer, area and outputs as a segment run, a sentence and a checkpoint for the
        classes and the model."""
        prompt, checkpoint = self.described_target()
        area, rendering = self._area_for(layer)
        output, options = self._output_for(f"{layer.name()}_{short_prompt(prompt, 40)}")
        for field, box in (("mask_threshold", self.threshold), ("simplify", self.simplify),
                           ("min_area", self.min_area)):
            if box.value() > box.minimum():
                options[field] = box.value()
        if self.no_magcrop.isChecked():
            options["no_magcrop"] = True
        mask = output.with_name(output.stem + "_mask.tif") if self.class_raster.isChecked() else None
        return DescribePlan(layer.name(), file_path(layer), area, [], output, mask, options, rendering,
                            prompt=prompt, checkpoint=checkpoint)

    def run(self) -> None:
        if self.task is not None:
            return
        if self.backend is None:
            self.iface.messageBar().pushMessage(LOG_TAG, tr("Connect to the backend first (Backend ▸ Connect)."),
                                                Qgis.Warning, 8)
            return
        try:
            plan = self.plan()
        except (AreaError, RenderError, ValueError, OverflowError, QgsCsException) as error:
            self.iface.messageBar().pushMessage(
                LOG_TAG, str(error) or tr("The area cannot be transformed into the layer's CRS."), Qgis.Warning, 8)
            return
        settings.set_value("render_gsd", self.render_gsd.value())
        settings.set_value("run/kind", plan.kind)
        if isinstance(plan, DescribePlan):
            settings.set_value("geomag/checkpoint", plan.checkpoint)
        else:
            settings.remember_prompts("\n".join(plan.classes))
            self._fill_recent()
        request = plan.request("…", str(plan.output), None)
        request["aoi"] = request.get("aoi", "")[:200]  # a detailed polygon would flood the log
        log(tr("Running on {0}: {1}").format(plan.layer_name, request))
        self.task = SegmentTask(self.backend.client, plan, self._run_finished)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self._set_running(True)
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _run_finished(self, outcome: RunOutcome) -> None:
        self.task = None
        self._set_running(False)
        if outcome.cancelled:
            self.progress.setValue(0)
            self.iface.messageBar().pushMessage(LOG_TAG, tr("The run was cancelled; nothing was written."),
                                                Qgis.Info, 5)
            return
        if outcome.error is not None:
            self.progress.setValue(0)
            self.report(outcome.error)
            return
        result = outcome.result
        for note in result.get("notes", []):
            log(note)
        if isinstance(outcome.plan, DescribePlan):
            self._described(outcome.plan, result)
            return
        device = result.get("device", "cpu")
        settings.remember_speed(device, result.get("mp_per_s") or 0)
        try:
            self.last_result_layers = add_result(outcome.plan, result)
        except ResultError as error:
            self.report(BackendError(str(error)))
            return
        self.progress.setValue(100)
        self.iface.messageBar().pushMessage(LOG_TAG, tr("Polygons: {0}, in {1:.1f} s ({2:.2f} MP/s), saved to {3}").format(
            result.get("polygon_count") or 0, result["seconds"], result["mp_per_s"], outcome.plan.output),
            Qgis.Success, 8)
        self.update_estimate()

    def _described(self, plan: DescribePlan, result: dict) -> None:
        """A refer run's mask: the layer named after the sentence, and a line on what was found."""
        try:
            self.last_result_layers = add_describe_result(plan, result)
        except ResultError as error:
            self.report(BackendError(str(error)))
            return
        self.progress.setValue(100)
        prompt, score, count = short_prompt(plan.prompt), result.get("score") or 0.0, result.get("polygon_count") or 0
        if count == 0:
            self.iface.messageBar().pushMessage(LOG_TAG, tr(
                "The model found nothing that “{0}” describes in the area (score {1:.2f}); the layer is empty.").format(
                prompt, score), Qgis.Warning, 8)
            return
        self.iface.messageBar().pushMessage(LOG_TAG, tr("“{0}”: {1} polygons, score {2:.2f}, in {3:.1f} s, saved to "
                                                        "{4}").format(prompt, count, score, result.get("seconds") or 0,
                                                                      plan.output), Qgis.Success, 8)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _start(self, task: CallTask) -> None:
        """Run ``task``; the dock holds it (its Python side must outlive the call) until it reports back."""
        report = task.on_finished

        def finished(value, error) -> None:
            self.calls.remove(task)
            report(value, error)

        task.on_finished = finished
        self.calls.append(task)
        QgsApplication.taskManager().addTask(task)

    # -- export -------------------------------------------------------------------------------
    def export(self) -> None:
        layer = self.iface.activeLayer()
        if not isinstance(layer, QgsVectorLayer):
            layer = next((l for l in self.last_result_layers if isinstance(l, QgsVectorLayer)), None)
        if layer is None:
            self.iface.messageBar().pushMessage(LOG_TAG, tr("Select a result layer to export."), Qgis.Warning, 5)
            return
        path, chosen = QFileDialog.getSaveFileName(self, tr("Export {0}").format(layer.name()), "",
                                                   ";;".join(EXPORT_FORMATS))
        if path:
            self.export_to(layer, Path(path), EXPORT_FORMATS.get(chosen, "ESRI Shapefile"))

    def export_to(self, layer: QgsVectorLayer, path: Path, driver: str) -> None:
        try:
            written = write_vector(layer, path, driver)
        except ResultError as error:
            self.report(BackendError(str(error)))
            return
        if driver != "GPKG":  # a .qml beside the file: QGIS opens it styled (a GeoPackage carries its style)
            layer.saveNamedStyle(str(written.with_suffix(".qml")))
        self.iface.messageBar().pushMessage(LOG_TAG, tr("Exported to {0}").format(written), Qgis.Success, 5)

    # -- messages -----------------------------------------------------------------------------
    def report(self, error: BackendError) -> None:
        """One sentence in the message bar; the details in the log panel's rs-openvocab tab."""
        self.iface.messageBar().pushMessage(LOG_TAG, str(error), Qgis.Critical, 0)
        log(str(error) + (("\n" + error.detail) if error.detail else ""), Qgis.Critical)

    def unload(self) -> None:
        """Cancel what is running and forget it (the dock is going away), take the map tools off the canvas."""
        self._clear_drawing()
        for tool in self.tools.values():
            tool.remove()
        self.tools = {}
        self.canvas.extentsChanged.disconnect(self._extent_changed)
        for task in [self.task, *self.calls]:
            if task is not None:
                task.on_finished = lambda *_: None
                try:
                    task.cancel()
                except RuntimeError:  # the task manager already deleted it
                    pass
        self.task, self.calls = None, []
