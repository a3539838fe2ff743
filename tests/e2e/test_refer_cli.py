"""`rsov refer` and `rsov ask` as a user runs them: a tiny random GeoMag checkpoint on a small georeferenced scene."""
import os
import subprocess

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from backend.cli import main
from tests.helpers.geomag import tiny_bert_dir, tiny_geomag_checkpoint
from tests.helpers.rasters import write_scene
from tests.helpers.service import RSOV

PROMPT = "the red roof beside the road"
# an AOI in the scene's UTM coordinates: columns 40-360, rows 20-260 of the 0.5 m grid
AOI = "500020,4649870,500180,4649990"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", 300, 400)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny GeoMag checkpoint with a TMRA classifier (random) so MagCrop runs."""
    from backend.models.geomag.tmra import GranularityClassifier

    folder = tmp_path_factory.mktemp("geomag")
    torch.manual_seed(0)
    classifier = GranularityClassifier(_bert_hidden(folder))
    return tiny_geomag_checkpoint(folder, tmra_state=classifier.state_dict())


def _bert_hidden(folder) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(tiny_bert_dir(folder)).hidden_size


def test_refer_writes_the_mask_on_the_areas_grid_and_polygons_with_the_prompt(scene, checkpoint, tmp_path, capsys):
    out, raster = tmp_path / "mask.gpkg", tmp_path / "mask.tif"
    code = main(["refer", str(scene), "--prompt", PROMPT, "--checkpoint", str(checkpoint), "--aoi", AOI,
                 "--out", str(out), "--out-raster", str(raster), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "task granularity: " in printed and "focus box: " in printed and "EPSG:32633" in printed
    with rasterio.open(raster) as mask, rasterio.open(scene) as source:
        assert (mask.width, mask.height) == (320, 240)  # the AOI's window at the file's resolution
        assert mask.crs == source.crs and mask.transform.c == 500020 and mask.transform.f == 4649990
        target, percent = mask.read(1), mask.read(2)
    assert set(np.unique(target)) <= {0, 1} and percent.max() <= 100
    # band 2 is the probability band 1 was cut from (rounded to whole percent)
    assert (percent[target == 1] >= 50).all() and (percent[target == 0] <= 50).all()
    polygons = gpd.read_file(out)
    assert list(polygons.columns) == ["prompt", "score", "area_m2", "geometry"]
    assert polygons.crs.to_epsg() == 32633
    assert (polygons["prompt"] == PROMPT).all() and polygons["score"].between(0.5, 1).all()
    assert polygons.area.sum() == pytest.approx((target == 1).sum() * 0.25, rel=1e-6)


def test_refer_without_magcrop_reads_the_whole_area_once(scene, checkpoint, tmp_path, capsys):
    raster = tmp_path / "mask.tif"
    assert main(["refer", str(scene), "--prompt", PROMPT, "--checkpoint", str(checkpoint), "--no-magcrop",
                 "--out-raster", str(raster), "--device", "cpu", "--mask-threshold", "0.3"]) == 0
    assert "MagCrop off" in capsys.readouterr().out
    with rasterio.open(raster) as mask:
        assert (mask.width, mask.height) == (400, 300)
        target, percent = mask.read(1), mask.read(2)
    assert (percent[target == 1] >= 30).all() and (percent[target == 0] <= 30).all()


def test_ask_prints_the_answer_the_granularity_and_the_box_as_a_user_runs_it(scene, checkpoint):
    result = subprocess.run([RSOV, "ask", str(scene), "--prompt", "what is in this image?", "--checkpoint",
                             str(checkpoint), "--max-new-tokens", "6", "--device", "cpu"],
                            capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("task granularity: ") and lines[2].startswith("focus box: ")


@pytest.mark.parametrize("args, sentence", [
    (["--prompt", " "], "--prompt is empty"),
    (["--prompt", PROMPT], "no output was asked for"),
    (["--prompt", PROMPT, "--out", "x.gpkg", "--mask-threshold", "1.5"], "--mask-threshold 1.5 must be between"),
    (["--prompt", PROMPT, "--out", "x.txt"], "must end in .gpkg"),
])
def test_refer_bad_input_is_one_sentence(scene, checkpoint, tmp_path, capsys, monkeypatch, args, sentence):
    monkeypatch.chdir(tmp_path)
    assert main(["refer", str(scene), "--checkpoint", str(checkpoint), *args]) == 2
    error = capsys.readouterr().err
    assert sentence in error and error.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_a_geomag_checkpoint_is_named(scene, tmp_path, capsys):
    fake = tmp_path / "weights.safetensors"
    fake.write_bytes(b"not a checkpoint")
    assert main(["refer", str(scene), "--prompt", PROMPT, "--checkpoint", str(fake), "--out",
                 str(tmp_path / "m.gpkg")]) == 2
    error = capsys.readouterr().err
    assert str(fake) in error and error.count("\n") == 1


def test_ask_writes_the_phrases_its_answer_grounds_as_polygons(scene, checkpoint, tmp_path, capsys, monkeypatch):
    from backend.describe.loading import load_geomag

    model = load_geomag(checkpoint, "cpu", "auto", False).model  # into the process's cache, where main() finds it
    answer = model.tokenizer("<p> red roof </p> [SEG] beside <p> the road </p> [SEG].", add_special_tokens=False,
                             return_tensors="pt").input_ids
    end = torch.tensor([[model.tokenizer.eos_token_id]])
    # what a trained model's greedy decoding gives for a grounded description (a random one never emits [SEG])
    monkeypatch.setattr(model.vlm, "generate", lambda **kw: torch.cat([kw["input_ids"], answer, end], 1))
    out = tmp_path / "grounded.gpkg"
    assert main(["ask", str(scene), "--prompt", "describe the image with masks", "--checkpoint", str(checkpoint),
                 "--no-magcrop", "--out", str(out), "--mask-threshold", "0.01", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "red roof beside the road." and "grounded: red roof; the road" in printed
    frame = gpd.read_file(out)
    assert list(frame.columns) == ["prompt", "phrase", "score", "area_m2", "geometry"]
    assert set(frame["phrase"]) == {"red roof", "the road"} and frame.crs.to_epsg() == 32633
    assert frame.union_all().area <= 400 * 300 * 0.25 + 1e-6
