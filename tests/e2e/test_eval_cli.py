"""`rsov eval` as a user runs it: the installed command, tiny weights where the cache keeps them."""
import json
import os
import subprocess

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tests.helpers.checkpoints import save_open_clip_safetensors, tiny_clip
from tests.helpers.rasters import write_scene
from tests.helpers.service import RSOV


def rsov(*args):
    return subprocess.run([RSOV, *map(str, args)], capture_output=True, text=True, env=dict(os.environ), timeout=300)


def cache_tiny_clip(home):
    weights = home / "weights" / "openai-vit-b-16" / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_open_clip_safetensors(tiny_clip(), weights)  # segearth-ov's CLIP, tiny, where the cache keeps it


def write_label(path, values, crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5), nodata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1], count=1,
                       dtype=values.dtype, crs=crs, transform=transform, nodata=nodata) as out:
        out.write(values, 1)
    return path


def test_own_labels_are_scored_against_what_rsov_segment_predicts(isolated_home, tmp_path):
    cache_tiny_clip(isolated_home)
    image = write_scene(tmp_path / "images" / "tile_07.tif", 96, 128)
    rng = np.random.default_rng(4)
    values = rng.choice(np.array([10, 20, 30, 99], dtype=np.uint16), size=(96, 128))  # 99: no class, not scored
    values[:8] = 65535  # nodata
    label = write_label(tmp_path / "labels" / "tile_07.tif", values, nodata=65535)
    classes = "water; forest,trees; road"
    result = rsov("eval", "--labels", label.parent, "--images", image.parent, "--classes", classes,
                  "--class-values", "10,20,30", "--no-upsampler", "--out", tmp_path / "out", "--save-pred")
    assert result.returncode == 0, result.stderr
    segmented = rsov("segment", image, "--classes", classes, "--no-upsampler", "--out-raster", tmp_path / "seg.tif")
    assert segmented.returncode == 0, segmented.stderr
    with rasterio.open(tmp_path / "seg.tif") as src:
        pred = src.read(1)
    with rasterio.open(tmp_path / "out" / "own-labels-segearth-ov" / "pred" / "tile_07.tif") as src:
        assert (src.read(1) == pred).all()  # --save-pred keeps the engine's class raster
    scored = np.isin(values, [10, 20, 30])
    truth = np.select([values == 10, values == 20, values == 30], [0, 1, 2])
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (truth[scored], pred[scored]), 1)
    report = json.loads((tmp_path / "out" / "own-labels.json").read_text())
    assert report["results"][0]["confusion_matrix"] == expected.tolist()
    iou = [expected[i, i] / (expected[i].sum() + expected[:, i].sum() - expected[i, i]) for i in range(3)]
    assert report["results"][0]["scores"]["miou"] == pytest.approx(float(np.mean(iou)))
    assert "own labels all, 1 images: mIoU" in result.stdout
    assert "| water |" in (tmp_path / "out" / "own-labels.md").read_text()


def test_a_label_on_another_grid_is_read_on_the_images_grid(isolated_home, tmp_path):
    cache_tiny_clip(isolated_home)
    image = write_scene(tmp_path / "scene.tif", 64, 64)
    coarse = np.array([[1, 2], [2, 1]], dtype=np.uint8).repeat(16, 0).repeat(16, 1)  # 1 m pixels, same area
    label = write_label(tmp_path / "scene_label.tif", coarse, transform=from_origin(500000.0, 4650000.0, 1.0, 1.0))
    result = rsov("eval", "--labels", label, "--images", image, "--classes", "a; b", "--class-values", "1,2",
                  "--no-upsampler", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "own-labels.json").read_text())
    assert np.sum(report["results"][0]["confusion_matrix"]) == 64 * 64  # every image pixel has its label pixel


def test_bad_own_label_input_is_one_sentence(isolated_home, tmp_path):
    image = write_scene(tmp_path / "scene.tif", 32, 32)
    result = rsov("eval", "--labels", tmp_path / "missing.tif", "--images", image, "--classes", "a; b")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "--labels" in result.stderr and "does not exist" in result.stderr
    result = rsov("eval", "--labels", image, "--images", image, "--classes", "a; b", "--class-values", "1")
    assert "--class-values gives 1 values for 2 classes" in result.stderr
    result = rsov("eval", "--dataset", "nowhere", "--root", tmp_path)
    assert "unknown --dataset 'nowhere'" in result.stderr


def write_chn6_cug(root, count, size=160):
    """CHN6-CUG in the authors' converted layout: val/image_cvt/*.jpg + val/label_cvt/*.png (0/1)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for number in range(count):
        for folder in ("image_cvt", "label_cvt"):
            (root / "val" / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            root / "val" / "image_cvt" / f"cd{number:03d}.jpg")
        label = np.zeros((size, size), np.uint8)
        label[:, size // 2 + number:] = 1
        Image.fromarray(label).save(root / "val" / "label_cvt" / f"cd{number:03d}.png")


def confusion(path):
    return json.loads(path.read_text())["results"][0]["confusion_matrix"]


def test_a_killed_benchmark_run_resumes_to_the_same_scores(isolated_home, tiny_files, tmp_path):
    cache_tiny_clip(isolated_home)
    root = tmp_path / "data" / "CHN6-CUG"
    write_chn6_cug(root, 10)
    common = ["eval", "--dataset", "chn6-cug", "--root", root, "--upsampler-weights", tiny_files["simfeatup"]]
    whole = rsov(*common, "--out", tmp_path / "whole", "--save-pred")
    assert whole.returncode == 0, whole.stderr
    assert "CHN6-CUG val, 10 images: foreground IoU" in whole.stdout

    state = tmp_path / "killed" / "chn6-cug-segearth-ov" / "state.json"
    process = subprocess.Popen([RSOV, *map(str, common), "--out", tmp_path / "killed", "--quiet"],
                               env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = []
        while process.poll() is None and not done:
            if state.exists():
                done = json.loads(state.read_text())["done"]
        process.kill()
    finally:
        process.wait()
    assert 1 <= len(done) < 10, "the run was not stopped part-way"
    assert not (tmp_path / "killed" / "chn6-cug-segearth-ov.json").exists()  # no report from a killed run

    resumed = rsov(*common, "--out", tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "of 10 images already scored" in resumed.stderr
    assert confusion(tmp_path / "killed" / "chn6-cug-segearth-ov.json") == confusion(
        tmp_path / "whole" / "chn6-cug-segearth-ov.json")

    other = rsov("eval", "--dataset", "chn6-cug", "--root", root, "--no-upsampler", "--out", tmp_path / "killed")
    assert other.returncode != 0 and "made with other settings (model)" in other.stderr and "--overwrite" in other.stderr

    rescored = rsov("eval", "--dataset", "chn6-cug", "--root", root, "--out", tmp_path / "rescored",
                    "--predictions", tmp_path / "whole" / "chn6-cug-segearth-ov" / "pred")
    assert rescored.returncode == 0, rescored.stderr
    assert confusion(tmp_path / "rescored" / "chn6-cug-predictions.json") == confusion(
        tmp_path / "whole" / "chn6-cug-segearth-ov.json")


def test_a_suite_runs_the_data_sets_it_finds_with_the_papers_numbers_beside(isolated_home, tmp_path):
    cache_tiny_clip(isolated_home)
    write_chn6_cug(tmp_path / "data" / "chn6-cug", 2, size=64)  # folder names match without regard to case
    result = rsov("eval", "--suite", "segearth-ov-table3", "--root", tmp_path / "data", "--no-upsampler",
                  "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "out" / "segearth-ov-table3.md").read_text()
    assert "| CHN6-CUG | val | 2 | IoU (foreground) |" in table and "| 35.4 |" in table
    assert "| whu-aerial | – | 0 |" in table  # not found: listed, not run
    report = json.loads((tmp_path / "out" / "segearth-ov-table3.json").read_text())
    [chn6] = report["results"]
    assert chn6["paper"] == 35.4 and chn6["value"] == pytest.approx(100 * chn6["scores"]["foreground_iou"])
    assert "whu-aerial" in report["skipped"]
