"""The plugin against a real `rsov serve` whose weights cache holds tiny checkpoints of the default preset."""
from __future__ import annotations

import time

import pytest
from qgis.core import QgsApplication, QgsProject

from tests.helpers.checkpoints import (save_open_clip_checkpoint, save_open_clip_safetensors, save_simfeatup_lightning,
                                      tiny_clip, tiny_simfeatup)
from tests.helpers.rasters import write_scene
from tests.helpers.service import RunningService


def put_tiny_weights(home) -> None:
    """The files of the segearth-ov and segearth-ov-sar presets, tiny and random, where the cache keeps them:
    both presets are ready."""
    clip = home / "weights" / "openai-vit-b-16" / "open_clip_model.safetensors"
    upsampler = home / "weights" / "simfeatup-jbu-one-million-aid" / "xclip_jbu_one_million_aid.ckpt"
    sar = home / "weights" / "alignearth-sar-vit-b-16" / "AlignEarth-SAR-ViT-B-16.pt"
    for path in (clip, upsampler, sar):
        path.parent.mkdir(parents=True, exist_ok=True)
    save_open_clip_safetensors(tiny_clip(), clip)
    save_simfeatup_lightning(tiny_simfeatup(), upsampler)
    save_open_clip_checkpoint(tiny_clip(quick_gelu=False, seed=3), sar)


@pytest.fixture(scope="session")
def ready_service(tmp_path_factory):
    home = tmp_path_factory.mktemp("plugin_service")
    put_tiny_weights(home)
    service = RunningService(home, "--output-root", str(tmp_path_factory.getbasetemp()))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    return {"small": write_scene(folder / "small.tif", 200, 240),
            "tall": write_scene(folder / "tall.tif", 2400, 300, seed=1)}


@pytest.fixture(autouse=True)
def fresh_plugin_settings():
    """Nothing the plugin remembered in an earlier test (recent prompts, speeds, backend) leaks into the next."""
    from qgis.core import QgsSettings

    QgsSettings().remove("rs_openvocab")
    yield
    QgsSettings().remove("rs_openvocab")


@pytest.fixture
def project(qgis_new_project):
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def wait_for(condition, timeout: float = 120.0, what: str = "the condition"):
    """Let Qt run (tasks report back through its event loop) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QgsApplication.processEvents()
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
