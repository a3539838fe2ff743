"""The plugin starts `rsov serve` from the backend's Python itself, and stops it when it unloads."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import rs_openvocab
from rs_openvocab.client import BackendError
from rs_openvocab.local_backend import LocalBackend
from tests.plugin.test_dock import connect_with

VENV_PYTHON = str(Path(sys.executable))


def test_the_dock_starts_the_backend_and_unloading_stops_it(qgis_iface, project, isolated_home):
    plugin = rs_openvocab.classFactory(qgis_iface)
    plugin.initGui()
    try:
        dock = plugin.dock
        connect_with(dock, mode="python", python=VENV_PYTHON)
        from rs_openvocab.connection import CONNECTION

        process = CONNECTION.local.process
        assert process.poll() is None and dock.backend.client.url.startswith("http://127.0.0.1:")
        assert dock.backend.health["version"] and dock.backend.version_warning is None
        assert dock.backend.client.token == (isolated_home / "server" / "token").read_text().strip()
        # a second start for the same RSOV_HOME finds the running one instead of failing
        other = LocalBackend(VENV_PYTHON)
        client = other.start()
        assert client.url == dock.backend.client.url and client.health()["version"]
        assert other.process is None  # not its to stop
    finally:
        plugin.unload()
    assert process.wait(30) == 0  # stopped cleanly by the unload


def test_a_python_that_is_not_a_backend_is_one_sentence(qgis_iface, project, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'No module named backend' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(BackendError, match="could not start: No module named backend"):
        LocalBackend(str(fake)).start(timeout_s=20)
    with pytest.raises(BackendError, match="is not an executable file"):
        LocalBackend(str(tmp_path / "nothing")).start()
