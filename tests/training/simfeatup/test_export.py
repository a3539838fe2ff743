"""The exported upsampler is what the engine runs: `rsov segment --upsampler-weights FILE`."""
import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from backend import cli
from backend.models.simfeatup import load_simfeatup
from tests.training.conftest import optical_from_labels, shapes_image
from tests.training.simfeatup.conftest import write_config
from training.common.config import load_config
from training.common.seeding import seed_everything
from training.simfeatup.config import SimFeatUpConfig
from training.simfeatup.model import export_upsampler
from training.simfeatup.train import build_task, train


def _scene(path, size=64):
    """An 8-bit RGB GeoTIFF of coloured shapes in UTM 33N."""
    pixels = optical_from_labels(shapes_image(np.random.default_rng(3), size))
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(pixels)
    return path


def _segment(scene, clip, upsampler, out):
    code = cli.main(["segment", str(scene), "--clip-weights", str(clip), "--upsampler-weights", str(upsampler),
                     "--classes", "red; green; blue", "--out-raster", str(out.with_name(f"classes_{out.name}")),
                     "--out-probs", str(out), "--device", "cpu", "--quiet"])
    assert code == 0
    with rasterio.open(out) as probabilities:
        return probabilities.read()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, image_folders, local_clip):
    """A 4-step run (at a high rate, so the weights move) and the upsampler it started from."""
    folder = tmp_path_factory.mktemp("export")
    config = load_config(write_config(folder / "run.yaml", image_folders["train"], local_clip, folder / "run",
                                      optim={"lr": 1e-2}, train={"max_steps": 4}), SimFeatUpConfig)
    seed_everything(config.train.seed)
    start, _ = build_task(config, torch.device("cpu"))
    untrained = export_upsampler(start.module, folder / "untrained.ckpt", 0)
    result = train(config)
    return result, untrained, folder / "run"


def test_the_checkpoint_has_the_authors_lightning_layout_and_loads_with_load_simfeatup(trained):
    result, _, run = trained
    assert result.exported == run / "simfeatup_jbu_one.ckpt"
    payload = torch.load(result.exported, weights_only=True)
    assert set(payload) == {"epoch", "global_step", "state_dict"} and payload["global_step"] == 4
    assert all(key.startswith(("upsampler.up.", "upsampler.fixup_proj.1.")) for key in payload["state_dict"])
    state = torch.load(run / "last.pt", weights_only=True)["module"]
    upsampler = load_simfeatup(result.exported)
    assert not upsampler.training and upsampler.fixup_proj[1].in_channels == 32
    for key, value in upsampler.state_dict().items():
        assert torch.equal(value, state[f"upsampler.{key}"]), key
    parts = torch.load(run / "simfeatup_training_parts.pt", weights_only=True)
    assert set(parts) == {"epoch", "global_step", "downsampler", "scale_net", "crn"}
    for part in ("downsampler", "scale_net", "crn"):
        for key, value in parts[part].items():
            assert torch.equal(value, state[f"{part}.{key}"]), (part, key)


def test_the_trained_upsampler_changes_what_rsov_segment_computes(trained, local_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("RSOV_HOME", str(tmp_path / "home"))
    result, untrained, _ = trained
    scene = _scene(tmp_path / "scene.tif")
    after = _segment(scene, local_clip, result.exported, tmp_path / "after.tif")
    before = _segment(scene, local_clip, untrained, tmp_path / "before.tif")
    assert after.shape == before.shape == (3, 64, 64)
    assert np.allclose(after.sum(axis=0), 1.0, atol=1e-4)
    assert np.abs(after - before).mean() > 1e-3
