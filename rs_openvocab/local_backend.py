"""Starting `rsov serve` from the backend's own Python environment, and stopping it with QGIS.

QGIS's Python has no torch; the backend lives in its own environment. Given that
environment's Python, the plugin starts the service on a free loopback port, reads the URL
it prints and the token from the file it names, and stops it when the plugin unloads. If a
service already runs for the same data folder, the plugin connects to that one instead.
"""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from rs_openvocab.client import BackendClient, BackendError
from rs_openvocab.translation import tr

LISTENING = re.compile(r"listening on (http://\S+) \((?:token in (.+?)|the token you gave)\)")
ALREADY_RUNNING = re.compile(r"RSOV_HOME (.+?) \(at (http://\S+)\)")
START_TIMEOUT_S = 120.0
# QGIS's own environment, wrong for the backend's Python and its own PROJ/GDAL data
QGIS_ONLY = ("PYTHONPATH", "PYTHONHOME", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "GDAL_DRIVER_PATH")


class LocalBackend:
    """One `rsov serve` child process (or the one already running for its RSOV_HOME)."""

    def __init__(self, python: str, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"rs-openvocab-backend-{os.getuid()}.log"
        self.log_start = 0
        self.token_given: str | None = None

    def command(self) -> list[str]:
        rsov = Path(self.python).with_name("rsov")
        start = [str(rsov)] if rsov.is_file() else [self.python, "-m", "backend.cli"]
        # the user's own service on loopback: outputs may go wherever the user saves them (the service's
        # own folders stay refused)
        return [*start, "serve", "--host", "127.0.0.1", "--port", "0", "--output-root", "/"]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> BackendClient:
        """Start the service (or find the running one) and return a client for it."""
        python = Path(self.python)
        if not python.is_file() or not os.access(python, os.X_OK):
            raise BackendError(tr("The backend Python {0} is not an executable file; give the python of the "
                                  "environment where rs-openvocab is installed (e.g. .venv/bin/python).").format(
                                      self.python))
        env = {k: v for k, v in os.environ.items() if k not in QGIS_ONLY}
        env.update({"PYTHONUNBUFFERED": "1", **self.env})
        self.token_given = env.get("RSOV_TOKEN")
        with open(self.log_path, "ab") as log:
            self.log_start = log.tell()  # this start's lines only: the log is shared by every start
            self.process = subprocess.Popen(self.command(), env=env, stdout=subprocess.PIPE, stderr=log,
                                            stdin=subprocess.DEVNULL, bufsize=0, start_new_session=True)
        deadline, printed = time.monotonic() + timeout_s, b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:  # raw reads: no line can wait unseen in a buffer that select() does not know of
                printed += os.read(self.process.stdout.fileno(), 65536)
                match = LISTENING.search(printed.decode("utf-8", "replace"))
                if match:
                    token = self.token_given or Path(match.group(2)).read_text().strip()
                    threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
                    return BackendClient(match.group(1), token)
            if self.process.poll() is not None:
                return self._already_running() or self._failed()
        self.stop()
        raise BackendError(tr("The backend did not start within {0:.0f} s; see {1}.").format(timeout_s, self.log_path))

    def _drain(self, stream) -> None:
        """Copy what the service prints after its banner to the log: a full pipe would stop it."""
        with open(self.log_path, "ab") as log:
            while block := stream.read(65536):
                log.write(block)
                log.flush()

    def _already_running(self) -> BackendClient | None:
        match = ALREADY_RUNNING.search(self._log_tail())
        if not match:
            return None
        self.process = None  # not ours to stop
        token_file = Path(match.group(1)) / "server" / "token"
        token = self.token_given or (token_file.read_text().strip() if token_file.exists() else "")
        return BackendClient(match.group(2), token)

    def _failed(self) -> BackendClient:
        tail = self._log_tail().strip().splitlines()
        reason = tail[-1] if tail else f"exit code {self.process.returncode}"
        raise BackendError(tr("The backend could not start: {0}").format(reason), detail="\n".join(tail[-30:]))

    def _log_tail(self, size: int = 8000) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(self.log_start, log.seek(0, os.SEEK_END) - size))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the service this object started (a running job ends as interrupted, writing nothing)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
