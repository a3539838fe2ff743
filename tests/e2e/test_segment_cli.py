"""`rsov segment` as a user runs it: the installed console command on a small GeoTIFF."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

RSOV = str(Path(sys.executable).with_name("rsov"))
CLASSES = "background; building,roof,house; road"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    rows, cols = np.mgrid[0:230, 0:260]
    red = (120 + 80 * np.sin(cols / 17.0)).astype(np.uint8)
    green = (100 + 60 * np.cos(rows / 11.0)).astype(np.uint8)
    blue = ((rows * 3 + cols) % 256).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=230, width=260, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(np.stack([red, green, blue]))
    return path


def rsov(*args, **env):
    return subprocess.run([RSOV, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def expected_probabilities(scene, tiny_files, threshold):
    from backend.inference.slide import normalise_pixels, slide_logits
    from backend.models.clip_loading import load_clip
    from backend.models.simfeatup import load_simfeatup
    from backend.prompts import parse_inline_classes
    from tests.helpers.models import segmentor

    clip, _ = load_clip(tiny_files["torchscript"], quick_gelu=True)
    model = segmentor(clip, load_simfeatup(tiny_files["simfeatup"]), prob_threshold=threshold)
    prompts = model.prompt(parse_inline_classes(CLASSES))
    with rasterio.open(scene) as src:
        image = normalise_pixels(torch.from_numpy(src.read()))
    return model.classify(slide_logits(model, image, prompts), prompts)


def test_segment_writes_georeferenced_classes_and_probabilities(scene, tiny_files, tmp_path, isolated_home):
    out = tmp_path / "out"
    result = rsov("segment", scene, "--classes", CLASSES, "--out-raster", out / "classes.tif",
                  "--out-probs", out / "probs.tif", "--preview", out / "preview.png",
                  "--clip-weights", tiny_files["torchscript"], "--upsampler-weights", tiny_files["simfeatup"],
                  "--prob-threshold", "0.4", "--batch-size", "3")
    assert result.returncode == 0, result.stderr
    assert "building:" in result.stdout and " m²" in result.stdout and "MP/s" in result.stdout
    with rasterio.open(scene) as src, rasterio.open(out / "classes.tif") as classes, \
            rasterio.open(out / "probs.tif") as probs:
        assert classes.crs == src.crs and classes.transform == src.transform
        assert (classes.width, classes.height, classes.dtypes[0]) == (260, 230, "uint8")
        assert classes.tags()["CLASS_NAMES"] == "background;building;road"
        assert classes.tags()["CLASS_1"] == "building"
        colormap = classes.colormap(1)
        assert len({colormap[i] for i in range(3)}) == 3
        assert probs.count == 3 and probs.dtypes[0] == "float32" and probs.crs == src.crs
        assert probs.descriptions == ("background", "building", "road")
        class_map, probabilities = classes.read(1), probs.read()
    assert len(list((isolated_home / "cache" / "text").glob("*.safetensors"))) == 5  # one entry per query, encoded once
    expected_map, expected_probs = expected_probabilities(scene, tiny_files, 0.4)
    np.testing.assert_allclose(probabilities, expected_probs.numpy(), atol=2e-5)
    agree = (class_map == expected_map.numpy()).mean()
    assert agree > 0.999
    best = probabilities.max(axis=0)
    assert np.all(class_map[best < 0.4 - 1e-4] == 0)
    assert np.array_equal(class_map[best > 0.4 + 1e-4], probabilities.argmax(axis=0)[best > 0.4 + 1e-4])
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_output_is_kept_without_overwrite(scene, tiny_files, tmp_path):
    target = tmp_path / "classes.tif"
    target.write_bytes(b"precious")
    result = rsov("segment", scene, "--classes", "water; land", "--out-raster", target,
                  "--clip-weights", tiny_files["open_clip"], "--no-upsampler")
    assert result.returncode == 2
    assert result.stderr.strip() == f"rsov: error: --out-raster {target} already exists; pass --overwrite to replace it."
    assert target.read_bytes() == b"precious"


def test_missing_weights_offline_exit_non_zero_with_one_sentence(scene, tmp_path):
    result = rsov("segment", scene, "--classes", "water; land", "--out-raster", tmp_path / "c.tif")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "put it at" in result.stderr
    assert not (tmp_path / "c.tif").exists()


def test_bad_input_raster_is_named(tmp_path, tiny_files):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    result = rsov("segment", broken, "--classes", "a; b", "--out-raster", tmp_path / "c.tif",
                  "--clip-weights", tiny_files["open_clip"], "--no-upsampler")
    assert result.returncode == 2 and "broken.tif cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_polygons_from_an_aoi_file_with_band_choice(scene, tiny_files, tmp_path):
    import geopandas as gpd
    import pyogrio
    import shapely

    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(500010, 4649900, 500120, 4649960)], crs="EPSG:32633").to_file(aoi)
    out = tmp_path / "buildings.shp"
    result = rsov("segment", scene, "--classes", CLASSES, "--out", out, "--aoi", aoi, "--bands", "3,2,1",
                  "--simplify", "1", "--out-crs", "EPSG:4326", "--clip-weights", tiny_files["open_clip"],
                  "--no-upsampler", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    polygons = pyogrio.read_dataframe(out)
    assert list(polygons.columns) == ["class_id", "class_name", "score", "area_m2", "geometry"]
    assert polygons.crs == "EPSG:4326" and len(polygons) > 0
    assert polygons.area_m2.sum() == pytest.approx(220 * 120 * 0.25, rel=0.02)  # the AOI: 110 m x 60 m
    assert sorted(p.suffix for p in tmp_path.glob("buildings.*")) == [".cpg", ".dbf", ".prj", ".shp", ".shx"]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.tif"
    with rasterio.open(path, "w", driver="GTiff", height=1200, width=1200, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(np.random.default_rng(1).integers(0, 256, (3, 1200, 1200), dtype=np.uint8))
    return path


def start_streaming(big, target, tiny_files, *extra):
    """An rsov run over the big raster, returned once its progress bar is up (it is streaming)."""
    process = subprocess.Popen([RSOV, "segment", big, "--classes", "a; b", "--out-raster", target,
                                "--overwrite", "--batch-size", "1", "--clip-weights", tiny_files["open_clip"],
                                "--no-upsampler", *extra], stderr=subprocess.PIPE, text=True)
    seen = ""
    while "segmenting" not in seen:
        char = process.stderr.read(1)
        assert char, f"rsov ended before streaming: {seen}"
        seen += char
    return process


@pytest.mark.parametrize("signal_name,code,words", [("SIGINT", 130, "interrupted; nothing was written"),
                                                    ("SIGTERM", 143, "terminated; nothing was written")])
def test_ctrl_c_or_sigterm_leaves_the_existing_output_and_no_partial_files(big, tiny_files, tmp_path, signal_name,
                                                                             code, words):
    import signal

    target = tmp_path / "out" / "classes.tif"
    target.parent.mkdir()
    target.write_bytes(b"last week's classes")
    process = start_streaming(big, target, tiny_files, "--out", tmp_path / "out" / "p.gpkg")
    process.send_signal(getattr(signal, signal_name))
    _, err = process.communicate(timeout=60)
    assert process.returncode == code and words in err
    assert sorted(p.name for p in target.parent.iterdir()) == ["classes.tif"]
    assert target.read_bytes() == b"last week's classes"


def test_the_next_run_removes_what_a_killed_run_left(big, scene, tiny_files, tmp_path):
    import signal

    out = tmp_path / "out"
    process = start_streaming(big, out / "big.tif", tiny_files)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    debris = [p for p in out.iterdir() if p.name.startswith(".rsov-")]
    assert debris and list(debris[0].iterdir())  # kill -9 cannot clean up
    result = rsov("segment", scene, "--classes", "a; b", "--out-raster", out / "small.tif",
                  "--clip-weights", tiny_files["open_clip"], "--no-upsampler", "--quiet")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["small.tif"]


def test_a_full_disk_is_one_sentence_and_the_old_output_survives(big, tiny_files, tmp_path):
    """The output folder is a 64 KiB tmpfs in a private mount namespace (no root needed)."""
    import shutil

    out = tmp_path / "out"
    out.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("this machine cannot make a private mount namespace (unshare -rm) for a small tmpfs")
    script = (f'mount -t tmpfs -o size=64k tmpfs "{out}" && echo "yesterday" > "{out}/classes.tif" && '
              f'"{RSOV}" segment "{big}" --classes "a; b" --out-raster "{out}/classes.tif" --overwrite '
              f'--clip-weights "{tiny_files["open_clip"]}" --no-upsampler --quiet; '
              f'echo "exit $?"; cat "{out}/classes.tif"; ls -A "{out}"')
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ})
    assert result.stderr.startswith(f"rsov: error: no space left on device writing {out}/classes.tif")
    assert result.stderr.endswith("free some space or write the outputs to another disk (nothing was replaced).\n")
    assert result.stderr.count("\n") == 1
    assert result.stdout.splitlines() == ["exit 2", "yesterday", "classes.tif"]


def test_plain_images_give_only_the_projects_own_words(tiny_files, tmp_path):
    photo = tmp_path / "photo.png"
    with rasterio.open(photo, "w", driver="PNG", height=64, width=80, count=3, dtype="uint8") as out:
        out.write(np.random.default_rng(9).integers(0, 256, (3, 64, 80), dtype=np.uint8))
    result = rsov("segment", photo, "--classes", "a; b", "--out", tmp_path / "p.gpkg", "--quiet",
                  "--clip-weights", tiny_files["open_clip"], "--no-upsampler")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"rsov: warning: {photo} has no CRS: outputs are in pixel coordinates.\n"


def test_an_area_shorter_than_a_window_gives_no_gdal_complaints(tiny_files, tmp_path):
    """The class raster is labelled (colour table) before its pixels are written: GDAL has nothing to say."""
    from tests.helpers.rasters import write_scene

    scene = write_scene(tmp_path / "strip.tif", 200, 260)
    result = rsov("segment", scene, "--classes", CLASSES, "--out-raster", tmp_path / "classes.tif",
                  "--out", tmp_path / "classes.gpkg", "--clip-weights", tiny_files["open_clip"], "--no-upsampler")
    assert result.returncode == 0, result.stderr
    assert "GDAL" not in result.stderr, result.stderr
    with rasterio.open(tmp_path / "classes.tif") as classes:
        assert classes.colorinterp[0].name == "palette" and classes.tags()["CLASS_NAMES"]
