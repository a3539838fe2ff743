"""The exported CLIP is what the backend runs: `load_clip(path, quick_gelu=True)`, `rsov segment` and `rsov classify`."""
from dataclasses import replace

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

from backend import cli
from backend.models.clip_loading import load_clip
from training.farslip.config import load_farslip_config
from training.farslip.train import train
from tests.helpers.checkpoints import TINY, save_open_clip_checkpoint, tiny_clip
from tests.training.farslip.conftest import write_config


def _optical_scene(path, size=64):
    """Three-band uint8 pixels in UTM 33N."""
    pixels = np.random.default_rng(0).integers(0, 256, (3, size, size), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 1.0, 1.0)) as out:
        out.write(pixels)
    return path


def test_the_exported_clip_loads_with_quickgelu_and_segments_with_the_farslip_preset(tmp_path, shards, monkeypatch):
    monkeypatch.setenv("RSOV_HOME", str(tmp_path / "home"))
    start = save_open_clip_checkpoint(tiny_clip(TINY, seed=6), tmp_path / "tiny.pt")  # 224 pixels, 77 tokens
    config = load_farslip_config(write_config(tmp_path / "run.yaml", 1, shards["train"], start, tmp_path / "run",
                                              data={"local_crops": 2}, model={"long_text": True},
                                              train={"max_steps": 1, "batch_size": 4}))
    checkpoint = train(config).exported
    assert checkpoint == tmp_path / "run" / "farslip1.pt"
    payload = torch.load(checkpoint, weights_only=True)
    assert (payload["name"], payload["epoch"]) == ("farslip1", 0)

    clip, arch = load_clip(checkpoint, quick_gelu=True)
    assert arch == replace(TINY, context_length=248)  # LongCLIP's text tower
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["module"]
    for key, value in clip.state_dict().items():
        assert torch.equal(value, trained[f"clip.{key}"]), key
    initial, _ = load_clip(start, quick_gelu=True)
    assert not torch.equal(clip.visual.conv1.weight, initial.visual.conv1.weight)  # it trained
    assert torch.equal(clip.positional_embedding[:20], initial.positional_embedding[:20])  # LongCLIP's fixed ones

    scene, out = _optical_scene(tmp_path / "scene.tif"), tmp_path / "classes.tif"
    code = cli.main(["segment", str(scene), "--model", "farslip1-vit-b-16", "--clip-weights", str(checkpoint),
                     "--classes", "building; road; water", "--out-raster", str(out), "--device", "cpu", "--quiet"])
    assert code == 0
    with rasterio.open(out) as classes:
        assert (classes.width, classes.height) == (64, 64)
        assert set(np.unique(classes.read(1))) <= {0, 1, 2}

    table = tmp_path / "scenes.csv"
    code = cli.main(["classify", str(scene), "--model", "farslip1-vit-b-16", "--clip-weights", str(checkpoint),
                     "--classes", "building; road; water", "--top-k", "3", "--out", str(table), "--device", "cpu",
                     "--quiet"])
    assert code == 0
    rows = table.read_text().splitlines()
    assert rows[0].split(",") == ["file", "rank", "class", "probability"] and len(rows) == 4
    assert sum(float(row.split(",")[-1]) for row in rows[1:]) <= 1 + 1e-6
