"""Every bad input named in one sentence, exit code 2, nothing written (the CLI in-process)."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.cli import main


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "in" / "scene.tif"
    path.parent.mkdir()
    with rasterio.open(path, "w", driver="GTiff", height=120, width=130, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 1.0, 1.0)) as out:
        out.write(np.random.default_rng(0).integers(0, 256, (3, 120, 130), dtype=np.uint8))
    return path


CASES = {
    "missing raster": (["{tmp}/nowhere.tif"], "nowhere.tif does not exist; check the path"),
    "empty class list": (["--classes", " ; "], "holds no class names; give at least one class"),
    "empty class name": (["--classes", "water; building,,roof"], "has an empty name"),
    "duplicate class names": (["--classes", "water; land; water"], "water"),
    "band out of range": (["--bands", "4,3,2"], "has no band 4; it has bands 1 to 3"),
    "aoi outside": (["--aoi", "0,0,10,10"], "--aoi does not intersect"),
    "invalid aoi crs": (["--aoi", "0,0,10,10", "--aoi-crs", "EPSG:1"], "--aoi-crs 'EPSG:1' is not a coordinate"),
    "unknown output extension": (["--out", "{tmp}/out/polygons.kml"], "unknown extension; use .gpkg"),
    "unwritable output folder": (["--out-raster", "{tmp}/in/scene.tif/c.tif"], "cannot be created"),
    "unknown model": (["--model", "segearth-xxl"], "unknown model 'segearth-xxl'"),
    "weights of the wrong kind": (["--clip-weights", "{simfeatup}"], "is not a CLIP ViT checkpoint"),
    "weights that are no checkpoint": (["--clip-weights", "{tmp}/in/scene.tif"], "scene.tif"),
    "existing output": (["--out-raster", "{tmp}/in/scene.tif", "--bands", "1"], "already exists; pass --overwrite"),
    "bad stretch": (["--stretch", "10,5"], "--stretch '10,5' must be MIN,MAX"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_sentence_and_writes_nothing(case, scene, tiny_files, tmp_path, capsys):
    extra, message = CASES[case]
    fill = {"tmp": tmp_path, "simfeatup": tiny_files["simfeatup"]}
    extra = [arg.format(**fill) for arg in extra]
    raster = extra.pop(0) if extra and extra[0].endswith("nowhere.tif") else str(scene)
    args = ["segment", raster, "--clip-weights", str(tiny_files["open_clip"]), "--no-upsampler",
            "--classes", "water; land", "--out-raster", str(tmp_path / "out" / "c.tif"), *extra]
    before = sorted(tmp_path.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("rsov: error: ") and err.count("\n") == 1 and message in err, err
    assert sorted(tmp_path.rglob("*")) == before
