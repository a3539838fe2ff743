"""Every flag and file argument of `rsov segment`, given badly: one sentence, exit code 2, nothing written.

The CLI runs in-process. Each case names the flag the sentence must mention, so an engine
error that names a job field shows up under the flag the user typed.
"""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.cli import build_parser, main


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "in" / "scene.tif"
    path.parent.mkdir()
    with rasterio.open(path, "w", driver="GTiff", height=120, width=130, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 1.0, 1.0)) as out:
        out.write(np.random.default_rng(0).integers(0, 256, (3, 120, 130), dtype=np.uint8))
    return path


@pytest.fixture
def files(tmp_path, scene, tiny_files):
    """Bad files of every kind, made before the test snapshots the folder."""
    folder = tmp_path / "in"
    (folder / "notes.txt").write_text("these are my notes, not weights\n")
    (folder / "nul.txt").write_bytes(b"water\nbuil\x00ding\n")
    (folder / "latin1.txt").write_bytes("for\xeat\n".encode("latin-1"))
    (folder / "blank.txt").write_text("\n \n")
    (folder / "broken.tif").write_bytes(b"II*\x00garbage")
    with rasterio.open(folder / "no_crs.tif", "w", driver="GTiff", height=20, width=20, count=3, dtype="uint8",
                       transform=from_origin(500000.0, 4650000.0, 1.0, 1.0)) as out:
        out.write(np.zeros((3, 20, 20), np.uint8))
    (folder / "blocker").write_text("a file where a folder should be")
    (folder / "folder.tif").mkdir()
    (folder / "many.txt").write_text("\n".join(f"class {i}" for i in range(256)))
    import geopandas as gpd
    import shapely

    gpd.GeoDataFrame(geometry=[shapely.box(500010, 4649900, 500050, 4649950)], crs="EPSG:32633").to_file(
        folder / "aoi.gpkg", layer="fields")
    return {"in": folder, "simfeatup": tiny_files["simfeatup"], "open_clip": tiny_files["open_clip"],
            "many": "; ".join(f"class {i}" for i in range(256))}


# flag (or argument) the case is about -> (extra arguments, words the one sentence must hold)
CASES = {
    "INPUT missing": (["{tmp}/nowhere.tif"], "nowhere.tif does not exist; check the path"),
    "INPUT not a raster": (["{in}/notes.txt"], "notes.txt cannot be read"),
    "INPUT truncated": (["{in}/broken.tif"], "broken.tif cannot be read"),
    "INPUT georeferenced without a CRS": (["{in}/no_crs.tif"], "has a geotransform but no CRS"),
    "--classes-file missing": (["--classes-file", "{in}/none.txt"], "class file"),
    "--classes-file with a NUL byte": (["--classes-file", "{in}/nul.txt"], "control character '\\x00'"),
    "--classes-file not UTF-8": (["--classes-file", "{in}/latin1.txt"], "is not UTF-8 text"),
    "--classes-file empty": (["--classes-file", "{in}/blank.txt"], "holds no class names"),
    "--classes-file too many": (["--classes-file", "{in}/many.txt"], "--classes-file lists 256 classes"),
    "--classes empty": (["--classes", " ; "], "--classes holds no class names; give at least one class"),
    "--classes empty name": (["--classes", "water; building,,roof"], "has an empty name"),
    "--classes duplicate": (["--classes", "water; land; water"], "'water' is given to two classes"),
    "--classes too many": (["--classes", "{many}"], "--classes lists 256 classes but the class raster holds at most"),
    "--classes control character": (["--classes", "wa\x07ter; land"], "control character"),
    "--out-raster extension": (["--out-raster", "{tmp}/out/c.png"], "--out-raster"),
    "--out-raster folder is a file": (["--out-raster", "{in}/blocker/c.tif"], "--out-raster: output folder"),
    "--out-raster is a folder": (["--out-raster", "{in}/folder.tif", "--overwrite"], "is a folder, not a file"),
    "--out-raster exists": (["--out-raster", "{in}/no_crs.tif"], "already exists; pass --overwrite"),
    "--out-raster is the input": (["--out-raster", "{in}/scene.tif", "--overwrite"],
                                  "is an input of this job; outputs never replace inputs"),
    "--out extension": (["--out", "{tmp}/out/polygons.kml"], "--out"),
    "--out is the AOI file": (["--out", "{in}/aoi.gpkg", "--aoi", "{in}/aoi.gpkg", "--overwrite"],
                              "--out {in}/aoi.gpkg is an input"),
    "--out-probs same as --out-raster": (["--out-probs", "{tmp}/out/c.tif"], "--out-raster and --out-probs are the same"),
    "--preview extension": (["--preview", "{tmp}/out/p.jpg"], "--preview"),
    "--bands out of range": (["--bands", "4,3,2"], "--bands: "),
    "--bands not numbers": (["--bands", "r,g,b"], "argument --bands: 'r,g,b' is not a list of band numbers"),
    "--bands two": (["--bands", "2,1"], "--bands 2,1: two bands are a SAR dual-pol pair but"),
    "--bands three for SAR": (["--bands", "1,2,3", "--modality", "sar"], "--bands 1,2,3: SAR takes one band"),
    "--bands zero": (["--bands", "0"], "--bands 0 must be three band numbers"),
    "--stretch reversed": (["--stretch", "10,5"], "--stretch 10,5 must be MIN,MAX"),
    "--stretch not numbers": (["--stretch", "a,b"], "argument --stretch"),
    "--aoi outside": (["--aoi", "0,0,10,10"], "--aoi does not intersect"),
    "--aoi unparseable": (["--aoi", "somewhere nice"], "--aoi 'somewhere nice' is neither"),
    "--aoi a point": (["--aoi", "POINT (500010 4649900)"], "has no area"),
    "--aoi-layer unknown": (["--aoi", "{in}/aoi.gpkg", "--aoi-layer", "roads"], "has no layer 'roads'"),
    "--aoi-layer without --aoi": (["--aoi-layer", "roads"], "--aoi-layer is given without --aoi"),
    "--aoi-crs invalid": (["--aoi", "0,0,10,10", "--aoi-crs", "EPSG:1"], "--aoi-crs 'EPSG:1' is not a coordinate"),
    "--aoi-crs without --aoi": (["--aoi-crs", "EPSG:4326"], "--aoi-crs is given without --aoi"),
    "--modality unknown": (["--modality", "radar"], "--modality 'radar' is not one of auto, optical, sar"),
    "--sar-scale unknown": (["--sar-scale", "log"], "--sar-scale 'log' is not one of auto, power, amplitude, db"),
    "--sar-scale on optical": (["--sar-scale", "db"], "--sar-scale applies to SAR but"),
    "--speckle unknown": (["--speckle", "frost"], "--speckle 'frost' is not one of none, lee, refined-lee"),
    "--speckle on optical": (["--speckle", "lee"], "--speckle applies to SAR but"),
    "--speckle-window even": (["--speckle-window", "6"], "--speckle-window 6 must be an odd number of pixels"),
    "--speckle-looks zero": (["--speckle-looks", "0", "--modality", "sar"], "--speckle-looks 0.0 must be a positive"),
    "--gsd negative": (["--gsd", "-1"], "--gsd -1.0 must be a positive number of metres"),
    "--gsd with --resize-long-side": (["--gsd", "2", "--resize-long-side", "64"], "--gsd and --resize-long-side"),
    "--resize-long-side tiny": (["--resize-long-side", "3"], "--resize-long-side 3 is too small"),
    "--simplify negative": (["--out", "{tmp}/out/p.gpkg", "--simplify", "-1"], "--simplify -1.0 must be 0 or"),
    "--min-area negative": (["--out", "{tmp}/out/p.gpkg", "--min-area", "-5"], "--min-area -5.0 must be 0 or"),
    "--fill-holes not a number": (["--out", "{tmp}/out/p.gpkg", "--fill-holes", "nan"], "--fill-holes nan must be"),
    "--out-crs invalid": (["--out", "{tmp}/out/p.gpkg", "--out-crs", "EPSG:0"], "--out-crs 'EPSG:0' is not a"),
    "--model unknown": (["--model", "segearth-xxl"], "unknown --model 'segearth-xxl'; choose one of"),
    "--dataset-preset unknown": (["--dataset-preset", "mars"], "unknown --dataset-preset 'mars'"),
    "--dataset-preset for more classes": (["--dataset-preset", "potsdam"],
                                          "--dataset-preset potsdam gives background class 5 but only 2 classes"),
    "--clip-weights a text file": (["--clip-weights", "{in}/notes.txt"], "notes.txt is not a weights file"),
    "--clip-weights a GeoTIFF": (["--clip-weights", "{in}/scene.tif"], "scene.tif is not a weights file"),
    "--clip-weights a SimFeatUp file": (["--clip-weights", "{simfeatup}"], "is not a CLIP ViT checkpoint"),
    "--clip-weights missing": (["--clip-weights", "{tmp}/none.pt"], "--clip-weights '{tmp}/none.pt' is neither"),
    "--upsampler-weights a text file": (["--upsampler-weights", "{in}/notes.txt"], "notes.txt is not a weights file"),
    "--upsampler-weights a CLIP file": (["--upsampler-weights", "{open_clip}"], "is not a SimFeatUp JBU_One"),
    "--upsampler-weights with --no-upsampler": (["--upsampler-weights", "{simfeatup}"],
                                                "argument --upsampler-weights: not allowed with argument"),
    "--attention unknown": (["--attention", "fancy"], "--attention 'fancy' is not one of segearth, sclip"),
    "--attention-blocks zero": (["--attention-blocks", "0"], "--attention-blocks 0 must be at least 1"),
    "--attention-blocks too many": (["--attention-blocks", "9"], "--attention-blocks 9 is out of range"),
    "--activation unknown": (["--activation", "relu"], "--activation 'relu' is not one of quickgelu, gelu"),
    "--gba-lambda not finite": (["--gba-lambda", "inf"], "--gba-lambda inf must be a finite number"),
    "--prob-threshold negative": (["--prob-threshold", "-1"], "--prob-threshold -1.0 is not a probability"),
    "--prob-threshold above one": (["--prob-threshold", "2"], "--prob-threshold 2.0 is not a probability"),
    "--background-index out of range": (["--background-index", "2"], "--background-index 2 is not a class index"),
    "--background-index negative": (["--background-index", "-1"], "--background-index -1 must be at least 0"),
    "--window zero": (["--window", "0"], "--window 0 must be at least 1 pixel"),
    "--window not a patch multiple": (["--window", "200"], "--window 200 is not a multiple of the model's patch"),
    "--window not a number": (["--window", "big"], "argument --window: invalid int value: 'big'"),
    "--stride zero": (["--stride", "0"], "--stride 0 must be at least 1 pixel"),
    "--stride negative": (["--stride", "-5"], "--stride -5 must be at least 1 pixel"),
    "--stride above the window": (["--stride", "300"], "--stride 300 is larger than --window 224"),
    "--device unknown": (["--device", "tpu"], "--device 'tpu' is not a device"),
    "--device cuda without a GPU": (["--device", "cuda"], "no CUDA GPU is visible"),
    "--precision unknown": (["--precision", "fp8"], "--precision 'fp8' is not one of auto, fp32, fp16, bf16"),
    "--precision fp16 on the CPU": (["--device", "cpu", "--precision", "fp16"], "fp16 is not supported on the CPU"),
    "--batch-size zero": (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
    "--strip-width zero": (["--strip-width", "0"], "--strip-width 0 must be at least 1 pixel"),
    "--ray not an address": (["--ray", "my cluster"], "--ray 'my cluster' is not a cluster address; give auto"),
    "--ray-workers zero": (["--ray", "auto", "--ray-workers", "0"], "--ray-workers 0 must be at least 1"),
    "--ray-workers without --ray": (["--ray-workers", "2"], "--ray-workers is the number of workers on a Ray"),
}
# flags that take no value (or only choose among good ones) and so cannot be given badly
NO_BAD_VALUE = {"--help", "--overwrite", "--keep-gsd", "--no-upsampler", "--offline", "--quiet"}


def test_every_flag_has_a_bad_input_case():
    segment = build_parser()._subparsers._group_actions[0].choices["segment"]
    flags = {max(a.option_strings, key=len) if a.option_strings else a.metavar for a in segment._actions}
    covered = {case.split(" ")[0] for case in CASES}
    assert flags - NO_BAD_VALUE - covered == set()


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_sentence_and_writes_nothing(case, scene, files, tmp_path, capsys):
    extra, message = CASES[case]
    fill = {"tmp": tmp_path, **files}
    extra = [arg.format(**fill) for arg in extra]
    message = message.format(**fill)
    raster = extra.pop(0) if case.startswith("INPUT") else str(scene)
    classes = [] if "--classes-file" in extra or "--classes" in extra else ["--classes", "water; land"]
    upsampler = [] if "upsampler" in case else ["--no-upsampler"]
    if "--upsampler-weights" in case and "--no-upsampler" in case:
        upsampler = ["--no-upsampler"]
    output = [] if any(flag in extra for flag in ("--out-raster", "--out")) else \
        ["--out-raster", str(tmp_path / "out" / "c.tif")]
    args = ["segment", raster, "--clip-weights", str(files["open_clip"]), *upsampler, *classes, *output, *extra]
    before = sorted(tmp_path.rglob("*"))
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rsov: error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and "{" not in err  # every field placeholder rendered
    assert sorted(tmp_path.rglob("*")) == before
