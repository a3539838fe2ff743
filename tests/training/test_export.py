"""The exported student is what the backend runs: `rsov segment --model segearth-ov-sar --clip-weights`."""
import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

from backend import cli
from backend.models.clip_loading import load_clip
from training.alignearth.config import AlignEarthConfig
from training.alignearth.train import train
from training.common.config import load_config
from tests.helpers.checkpoints import TINY
from tests.training.conftest import write_config


def _sar_scene(path, size=64):
    """Single-band float32 power values (gamma speckle) in UTM 33N."""
    power = np.random.default_rng(0).gamma(1.0, 0.05, (1, size, size)).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=1, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 10.0, 10.0)) as out:
        out.write(power)
    return path


def test_the_exported_student_segments_a_sar_raster_with_the_sar_preset(tmp_path, paired_set, tiny_teacher,
                                                                       monkeypatch):
    monkeypatch.setenv("RSOV_HOME", str(tmp_path / "home"))
    config = load_config(write_config(tmp_path / "run.yaml", paired_set["train"], tiny_teacher, tmp_path / "run",
                                      train={"max_steps": 1, "batch_size": 4}), AlignEarthConfig)
    result = train(config)
    checkpoint = result.exported
    assert checkpoint == tmp_path / "run" / "alignearth_sar.pt"

    clip, arch = load_clip(checkpoint, quick_gelu=False)
    assert arch == TINY
    student = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["module"]
    for key, value in clip.visual.state_dict().items():
        assert torch.equal(value, student[f"visual.{key}"]), key
    teacher, _ = load_clip(tiny_teacher, quick_gelu=True)
    assert not torch.equal(clip.visual.conv1.weight, teacher.visual.conv1.weight)  # it trained
    for key, value in teacher.state_dict().items():
        if not key.startswith("visual."):
            assert torch.equal(clip.state_dict()[key], value), key

    scene, out = _sar_scene(tmp_path / "sar.tif"), tmp_path / "classes.tif"
    code = cli.main(["segment", str(scene), "--model", "segearth-ov-sar", "--clip-weights", str(checkpoint),
                     "--no-upsampler", "--classes", "water; field", "--out-raster", str(out), "--device", "cpu",
                     "--quiet"])
    assert code == 0
    with rasterio.open(out) as classes:
        assert (classes.width, classes.height) == (64, 64)
        assert set(np.unique(classes.read(1))) <= {0, 1}
