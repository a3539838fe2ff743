"""`rsov classify` and `rsov retrieve` as a user runs them: the installed command on small generated rasters."""
import csv
import os
import subprocess

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.cli import main
from tests.helpers.checkpoints import save_open_clip_safetensors, tiny_clip
from tests.helpers.rasters import write_scene
from tests.helpers.service import RSOV

CLASSES = "water; forest,trees; road"


def rsov(*args):
    return subprocess.run([RSOV, *map(str, args)], capture_output=True, text=True, env=dict(os.environ), timeout=300)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    write_scene(folder / "harbour.tif", 120, 160)
    write_scene(folder / "fields" / "north.tif", 300, 200, seed=2)
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_classify_a_folder_with_the_default_model_into_a_csv(images, isolated_home, tmp_path):
    weights = isolated_home / "weights" / "openai-vit-b-16" / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True)
    save_open_clip_safetensors(tiny_clip(), weights)  # the segearth-ov preset's CLIP, tiny, where the cache keeps it
    out = tmp_path / "classes.csv"
    result = rsov("classify", images, "--classes", CLASSES, "--top-k", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["file"], row["rank"]) for row in rows] == [
        (str(images / "fields" / "north.tif"), "1"), (str(images / "fields" / "north.tif"), "2"),
        (str(images / "harbour.tif"), "1"), (str(images / "harbour.tif"), "2")]
    assert "2 images in" in result.stdout and f"wrote {out}" in result.stdout
    assert "rsov: warning: skipped input raster" in result.stderr and "broken.png" in result.stderr
    assert "Traceback" not in result.stderr and "GDAL signalled" not in result.stderr


def test_classify_a_raster_per_tile_into_a_grid(tiny_files, tmp_path):
    import pyogrio

    raster = tmp_path / "scene.tif"
    with rasterio.open(raster, "w", driver="GTiff", height=600, width=520, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(np.random.default_rng(1).integers(0, 256, (3, 600, 520), dtype=np.uint8))
    grid = tmp_path / "grid.gpkg"
    result = rsov("classify", raster, "--classes", CLASSES, "--tile", "256", "--out", grid,
                  "--clip-weights", tiny_files["open_clip"], "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    polygons = pyogrio.read_dataframe(grid)
    assert len(polygons) == 3 * 3 and polygons.crs == "EPSG:32633"
    assert polygons.total_bounds == pytest.approx([500000, 4650000 - 300, 500000 + 260, 4650000])


def test_retrieve_ranks_a_folder_for_a_text_and_texts_for_an_image(images, tiny_files, tmp_path):
    out = tmp_path / "ranks.csv"
    found = rsov("retrieve", images, "--text", "a harbour with ships", "--top", "1", "--out", out,
                 "--clip-weights", tiny_files["open_clip"])
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].split()[0] == "1" and lines[0].split()[-1].endswith(".tif")
    assert "2 images ranked" in lines[1] and "0 image embeddings from the cache, 2 encoded" in lines[1]
    with open(out, newline="") as handle:
        assert [row["rank"] for row in csv.DictReader(handle)] == ["1"]
    texts = tmp_path / "texts.txt"
    texts.write_text("a harbour\na forest\n", encoding="utf-8")
    ranked = rsov("retrieve", "--image", images / "harbour.tif", "--texts-file", texts, "--quiet",
                  "--clip-weights", tiny_files["open_clip"])
    assert ranked.returncode == 0, ranked.stderr
    ranks = [line.split(maxsplit=3) for line in ranked.stdout.splitlines()]
    assert [rank[0] for rank in ranks] == ["1", "2"] and {rank[3] for rank in ranks} == {"a harbour", "a forest"}
    assert sum(float(rank[2]) for rank in ranks) == pytest.approx(1, abs=2e-4)  # the texts' probabilities


@pytest.mark.parametrize("args,sentence", [
    (["classify", "{images}", "--classes", CLASSES, "--tile", "256"],
     "--tile classifies the tiles of one raster but {images} is a folder; give one raster, or leave out --tile to "
     "classify each image whole."),
    (["classify", "{images}/harbour.tif", "--classes", CLASSES, "--out", "{images}/harbour.tif"],
     "--out {images}/harbour.tif must end in .csv; rename it."),
    (["retrieve", "--text", "ships"],
     "give FOLDER and --text to rank a folder's images for a text, or --image and --texts to rank texts for an "
     "image (one of the two)."),
    (["retrieve", "--image", "{images}/harbour.tif", "--texts-file", "{images}/none.txt"],
     "text file {images}/none.txt does not exist; check the path."),
    (["retrieve", "{images}", "--text", "ships", "--model", "nope"], None),
])
def test_bad_input_is_one_sentence_with_the_flags(images, capsys, args, sentence):
    code = main([arg.format(images=images) for arg in args])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and error.startswith("rsov: error: ")
    if sentence is not None:
        assert error == f"rsov: error: {sentence.format(images=images)}\n"
