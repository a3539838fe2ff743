"""Open QGIS on a throwaway profile with the plugin installed, the sample raster loaded and the backend connecting.

Run: python tools/qgis_sandbox.py [--folder DIR] [--screenshot PATH] [--timeout S]

Plain: QGIS for a person at a display (backend started from .venv/bin/python). With
--screenshot PATH (headless machines): QGIS runs under Xvfb with tiny random weights in a
temporary RSOV_HOME, segments the sample, saves a PNG of the main window and quits.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from build_plugin import build

if TYPE_CHECKING:
    from qgis.core import Qgis, QgsRasterLayer

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
SAMPLE = ROOT / "resources" / "samples" / "sample.tif"
CLASSES = "background\nbuilding,roof,house\nroad\nwater\ntree,forest"
SCREEN = "1600x1000x24"
AREA = ((0.3, 0.2), (0.8, 0.12), (0.9, 0.55), (0.62, 0.88), (0.25, 0.7))  # the drawn area, as fractions of the sample
PUT_TINY_WEIGHTS = ("import sys; from pathlib import Path; from tests.plugin.conftest import put_tiny_weights; "
                    "put_tiny_weights(Path(sys.argv[1]))")


class SandboxError(RuntimeError):
    pass


# -- outside QGIS: the profile, the weights, the launch -------------------------------------------
def prepare_profile(folder: Path) -> Path:
    """Wipe ``folder``, install the freshly built plugin in its default profile, write its settings; the sample's copy.

    QGIS writes statistics beside a raster it stretches (.aux.xml): it gets a copy, not the repository's file.
    """
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import QSettings

    shutil.rmtree(folder, ignore_errors=True)
    profile = folder / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(build(ROOT / "dist")) as archive:
        archive.extractall(plugins)
    ini = QSettings(str(profile / "QGIS" / "QGIS3.ini"), QSettings.IniFormat)
    for key, value in (("PythonPlugins/rs_openvocab", True),
                       ("rs_openvocab/backend/mode", "python"),
                       ("rs_openvocab/backend/python", str(VENV_PYTHON)),
                       ("app/plugin_installer/checkOnStart", False),  # no plugin repository fetch at start
                       ("migration/firstRunVersionFlag", Qgis.QGIS_VERSION_INT),  # no "Welcome" migration dialog
                       ("app/askToSaveMemoryLayers", False)):  # no "temporary layers" question at exit
        ini.setValue(key, value)
    ini.sync()
    if ini.status() != QSettings.NoError:
        raise SandboxError(f"could not write {ini.fileName()}")
    return Path(shutil.copy2(SAMPLE, folder / SAMPLE.name))


def put_tiny_weights(home: Path) -> None:
    """The default preset's tiny random checkpoints in ``home``'s weights cache (torch: the venv's Python)."""
    if not VENV_PYTHON.is_file():
        raise SandboxError(f"{VENV_PYTHON} is missing; run `make venv` first")
    done = subprocess.run([str(VENV_PYTHON), "-c", PUT_TINY_WEIGHTS, str(home)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxError("could not write tiny weights: " + (done.stderr.strip().splitlines() or ["?"])[-1])


def write_startup(folder: Path, config: dict) -> Path:
    """The script QGIS runs with --code: import this file and drive the plugin with ``config``."""
    script = folder / "startup.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
                      f"import qgis_sandbox\nqgis_sandbox.start_in_qgis({json.dumps(config)!r})\n")
    return script


def qgis_command(folder: Path, script: Path) -> list[str]:
    return ["qgis", "--profiles-path", str(folder), "--profile", "default", "--nologo", "--noversioncheck",
            "--code", str(script)]


def open_for_a_person(folder: Path) -> int:
    """QGIS on the display, the backend started from the venv; returns QGIS's exit code."""
    script = write_startup(folder, {"sample": str(prepare_profile(folder))})
    return subprocess.run(qgis_command(folder, script), cwd=folder).returncode


def take_screenshot(folder: Path, path: Path, timeout_s: float) -> float:
    """Segment the sample with tiny weights in QGIS under Xvfb and save the main window to ``path``; seconds taken."""
    started = time.monotonic()
    sample = prepare_profile(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    outcome, log = folder / "outcome.json", folder / "qgis.log"
    with tempfile.TemporaryDirectory(prefix="rsov-qgis-sandbox-") as temp:  # in the tempdir: a backend output root
        home = Path(temp)
        put_tiny_weights(home)
        config = {"sample": str(sample), "screenshot": str(path), "classes": CLASSES,
                  "output": str(home / "outputs" / "sample_segmented.gpkg"), "outcome": str(outcome),
                  "deadline_s": max(30.0, timeout_s - (time.monotonic() - started) - 30.0)}
        command = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", *qgis_command(folder, write_startup(folder, config))]
        with open(log, "wb") as output:
            process = subprocess.Popen(command, cwd=folder, env={**os.environ, "RSOV_HOME": str(home)},
                                       stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = process.wait(max(1.0, timeout_s - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                _stop_xvfb_run(process)
                code = None
        left_running = _stop_backend(home)
    result = json.loads(outcome.read_text()) if outcome.exists() else None
    if code is None:
        stage = "" if result is None else f" after {result['error'] or 'saving the screenshot'}"
        raise SandboxError(f"QGIS did not finish within {timeout_s:.0f} s{stage}; see {log}")
    if result is None:
        raise SandboxError(f"QGIS exited (code {code}) before the startup script reported; see {log}")
    if result["error"]:
        raise SandboxError(result["error"] + f" (QGIS log: {log})")
    if code != 0:
        raise SandboxError(f"QGIS exited with code {code} after saving the screenshot (a crash at exit?); see {log}")
    if left_running:
        raise SandboxError(f"QGIS quit but the backend it started (pid {left_running}) kept running; stopped it")
    if not path.is_file():
        raise SandboxError(f"QGIS reported success but {path} is missing; see {log}")
    return time.monotonic() - started


def _stop_xvfb_run(process: subprocess.Popen) -> None:
    """Stop QGIS and Xvfb so that xvfb-run cleans up after itself; SIGKILL the whole group if it does not end."""
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(int(child), signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _stop_backend(home: Path) -> int | None:
    """Stop an `rsov serve` still running for ``home`` (it runs in a session of its own); its pid, or None."""
    info = home / "server" / "server.json"
    try:
        pid = int(json.loads(info.read_text())["pid"])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return None
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return pid


# -- inside QGIS (imported by the startup script) -------------------------------------------------
def start_in_qgis(config_json: str) -> None:
    """Load the sample, open the dock, click Connect; with a screenshot path, go on to run and shoot."""
    global DRIVER
    DRIVER = Driver(json.loads(config_json))  # kept alive by the module
    DRIVER.start()


class Driver:
    """Clicks through the dock one step at a time on a polling QTimer, never blocking QGIS's event loop."""

    def __init__(self, config: dict) -> None:
        from qgis.core import QgsApplication
        from qgis.PyQt.QtCore import QTimer
        from qgis.utils import iface

        self.config = config
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.dock = None
        self.stage = "starting"
        self.condition: Callable[[], bool] = lambda: False
        self.then: Callable[[], None] = lambda: None
        self.last_error = ""
        self.rendered = False
        self.timer = QTimer()
        self.timer.setInterval(200)
        self.timer.timeout.connect(self._poll)
        self.watchdog = QTimer()
        self.watchdog.setSingleShot(True)
        self.watchdog.timeout.connect(lambda: self.finish(f"timed out after {config['deadline_s']:.0f} s while "
                                                          f"{self.stage}"))
        QgsApplication.messageLog().messageReceived.connect(self._logged)

    def _logged(self, text: str, tag: str, level: Qgis.MessageLevel) -> None:
        from qgis.core import Qgis

        if tag == "rs-openvocab" and level == Qgis.Critical and text:
            self.last_error = text.splitlines()[0]

    @property
    def shooting(self) -> bool:
        return "screenshot" in self.config

    def start(self) -> None:
        self._guarded(self._open)

    def _open(self) -> None:
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtGui import QGuiApplication
        from qgis.utils import plugins

        if "rs_openvocab" not in plugins:
            raise RuntimeError("the rs_openvocab plugin is not loaded (see the log panel's Python tab)")
        plugin = plugins["rs_openvocab"]
        self.dock = plugin.dock
        layer = self.iface.addRasterLayer(self.config["sample"], "sample")
        if layer is None or not layer.isValid():
            raise RuntimeError(f"QGIS cannot open {self.config['sample']}")
        if self.shooting:
            window = self.iface.mainWindow()
            window.setGeometry(QGuiApplication.primaryScreen().availableGeometry())
            window.activateWindow()  # an inactive QGIS covers the plugin's own message with "Task complete"
            self.watchdog.start(int(self.config["deadline_s"] * 1000))
        plugin.action.trigger()  # the toolbar button: shows the dock
        self.iface.mainWindow().resizeDocks([self.dock], [440], Qt.Horizontal)  # wide enough for its fields
        self.dock.layer.setLayer(layer)
        self.dock.connect_button.click()
        if self.shooting:
            self._wait("connecting to the backend", lambda: self.dock.connect_button.isEnabled(), self._run)

    def _run(self) -> None:
        dock = self.dock
        if dock.backend is None:
            raise RuntimeError("could not connect to the backend: " + (self.last_error or "no reason logged"))
        model = dock.model.currentData()
        if not model or not model["ready"]:
            raise RuntimeError(f"the model {model and model['name']} is not ready (tiny weights missing?)")
        self._draw_area(dock.layer.currentLayer())
        dock.classes.setPlainText(self.config["classes"])
        dock.class_raster.setChecked(True)
        dock.output.setFilePath(self.config["output"])
        dock.run_button.click()
        if dock.task is None:
            raise RuntimeError("Run started nothing: " + self._message_bar_text())
        self._wait("segmenting the sample", lambda: dock.task is None, self._zoom)

    def _draw_area(self, layer: QgsRasterLayer) -> None:
        """A polygon over part of the sample, as if drawn with the dock's polygon tool: the sample shows around it."""
        from qgis.core import QgsGeometry, QgsPointXY

        extent = layer.extent()
        ring = [QgsPointXY(extent.xMinimum() + fx * extent.width(), extent.yMaximum() - fy * extent.height())
                for fx, fy in AREA]
        self.dock.set_drawn_area(QgsGeometry.fromPolygonXY([ring]), layer.crs())

    def _zoom(self) -> None:
        from qgis.core import QgsVectorLayer

        polygons = next((l for l in self.dock.last_result_layers if isinstance(l, QgsVectorLayer)), None)
        if polygons is None:
            raise RuntimeError("the run added no result layer: " + (self.last_error or self._message_bar_text()))
        self.canvas.mapCanvasRefreshed.connect(lambda: setattr(self, "rendered", True))
        self.iface.setActiveLayer(polygons)
        extent = self.canvas.mapSettings().layerExtentToOutputExtent(polygons, polygons.extent())
        extent.scale(1.4)  # the result with some of the sample around it
        self.rendered = False
        self.canvas.setExtent(extent)
        self.canvas.refresh()
        self._wait("rendering the map", lambda: self.rendered and not self.canvas.isDrawing(), self._shoot)

    def _shoot(self) -> None:
        from qgis.PyQt.QtWidgets import QApplication

        QApplication.processEvents()  # the last paint of the canvas and the message bar
        if not self.iface.mainWindow().grab().save(self.config["screenshot"]):
            raise RuntimeError(f"could not save {self.config['screenshot']}")
        self.finish()

    def _message_bar_text(self) -> str:
        item = self.iface.messageBar().currentItem()
        return item.text() if item is not None else "no message shown"

    def _wait(self, stage: str, condition: Callable[[], bool], then: Callable[[], None]) -> None:
        self.stage, self.condition, self.then = stage, condition, then
        self.timer.start()

    def _poll(self) -> None:
        if self._guarded(self.condition):
            self.timer.stop()
            self._guarded(self.then)

    def _guarded(self, step: Callable[[], object]) -> object:
        try:
            return step()
        except Exception as error:  # noqa: BLE001 (any failure ends the run with its one line)
            self.finish(str(error) if isinstance(error, RuntimeError)  # ours: one sentence already
                        else f"{type(error).__name__} while {self.stage}: {error}")
            return None

    def finish(self, error: str = "") -> None:
        """Report to the outer script, then quit QGIS its own way once no task runs (the plugin stops the backend)."""
        from qgis.core import QgsApplication

        self.timer.stop()
        self.watchdog.stop()
        if not self.shooting:
            if error:
                self.iface.messageBar().pushCritical("qgis_sandbox", error)
            return
        if self.stage == "closing QGIS":
            return
        Path(self.config["outcome"]).write_text(json.dumps({"error": error}))
        QgsApplication.taskManager().cancelAll()
        self._wait("closing QGIS", lambda: QgsApplication.taskManager().countActiveTasks() == 0, self._quit)

    def _quit(self) -> None:
        """File ▸ Exit on a clean project: no question asked; QGIS closes the project before tearing down."""
        from qgis.core import QgsProject

        QgsProject.instance().setDirty(False)
        self.iface.actionExit().trigger()


DRIVER: Driver | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT / "build" / "qgis-sandbox",
                        help="the throwaway profiles folder, wiped first (default: build/qgis-sandbox)")
    parser.add_argument("--screenshot", type=Path, metavar="PATH",
                        help="headless: run the sample under Xvfb with tiny weights, save the window as PATH, quit")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds for the whole --screenshot run")
    args = parser.parse_args()
    folder = args.folder.resolve()
    try:
        if args.screenshot is None:
            sys.exit(open_for_a_person(folder))
        seconds = take_screenshot(folder, args.screenshot.resolve(), args.timeout)
    except SandboxError as error:
        sys.exit(f"qgis_sandbox: error: {error}")
    print(f"{args.screenshot} written in {seconds:.0f} s")


if __name__ == "__main__":
    main()
