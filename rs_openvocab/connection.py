"""The one backend the plugin talks to: a URL + token, or a service it started itself.

The dock and the Processing algorithm share it. ``connect()`` blocks (call it from a task);
it checks the service answers, that the token is right and that its version is the plugin's.
"""
from __future__ import annotations

import atexit
import configparser
import threading
from dataclasses import dataclass
from pathlib import Path

from rs_openvocab import settings
from rs_openvocab.client import BackendClient, BackendError
from rs_openvocab.translation import tr
from rs_openvocab.local_backend import LocalBackend


def plugin_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parent / "metadata.txt", encoding="utf-8")
    return parser.get("general", "version", fallback="?")


@dataclass
class Backend:
    client: BackendClient
    health: dict

    @property
    def device_text(self) -> str:
        """'NVIDIA H100 (cuda:0)' or 'CPU', for the status line."""
        active = self.health.get("device", "cpu")
        for device in self.health.get("devices", []):
            if device.get("name") == active and active != "cpu":
                return f"{device.get('description') or active} ({active})"
        return "CPU"

    @property
    def version_warning(self) -> str | None:
        mine, theirs = plugin_version(), self.health.get("version", "?")
        if mine.split("+")[0] == theirs.split("+")[0]:
            return None
        return tr("The backend is version {0} and the plugin {1}; update the one that is older so that both "
                  "match.").format(theirs, mine)


class Connection:
    """Holds the current backend; thread-safe, as the dock and Processing both use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.backend: Backend | None = None
        self.local: LocalBackend | None = None

    def connect(self, mode: str | None = None, url: str | None = None, token: str | None = None,
                python: str | None = None) -> Backend:
        """Connect as the settings say (or as given), starting a service from ``python`` if asked."""
        mode = mode or settings.backend_mode()
        with self._lock:
            if mode == "python":
                python = python or settings.backend_python()
                if not python:
                    raise BackendError(tr("Give the Python of the backend's environment in the plugin's backend "
                                          "settings, or the URL of a running 'rsov serve'."))
                if self.local is None or self.local.python != python or not self._alive():
                    self._stop_local()
                    self.local = LocalBackend(python)
                    client = self.local.start()
                else:
                    client = self.backend.client
            else:
                self._stop_local()
                client = BackendClient(url or settings.backend_url(), token if token is not None
                                       else settings.backend_token())
            backend = Backend(client, client.health())
            self.backend = backend
            return backend

    def _alive(self) -> bool:
        if self.backend is None:
            return False
        try:
            self.backend.client.health()
            return True
        except BackendError:
            return False

    def _stop_local(self) -> None:
        if self.local is not None:
            self.local.stop()
            self.local = None
        self.backend = None

    def close(self) -> None:
        """Stop a service the plugin started (QGIS is closing or the plugin unloads)."""
        with self._lock:
            self._stop_local()


CONNECTION = Connection()
atexit.register(CONNECTION.close)  # qgis_process and crashes of the plugin's code: no service left behind
