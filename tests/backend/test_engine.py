"""engine.run in-process with tiny weights: settings reach the model and outputs stay georeferenced."""
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.engine import run
from backend.errors import Cancelled, UserInputError
from backend.jobs import SegmentJob
from backend.models.cache import ModelCache
from backend.models.clip_segmentor import load_segmentor
from backend.prompts import parse_inline_classes


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.tif"
    pixels = np.random.default_rng(0).integers(0, 256, (3, 150, 190), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=150, width=190, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.0001, 0.0001)) as out:
        out.write(pixels)
    return path


def settings(tiny_files, **changes):
    """The job fields that pick the tiny weights (the upsampler unless no_upsampler)."""
    fields = dict(clip_weights=str(tiny_files["open_clip"]), offline=True, **changes)
    if not changes.get("no_upsampler"):
        fields["upsampler_weights"] = str(tiny_files["simfeatup"])
    return fields


def segmentor(tiny_files, **changes):
    job = SegmentJob("unused.tif", "a", **settings(tiny_files, **changes))
    return load_segmentor(job.model_config(), ModelCache())


def test_resized_inference_comes_back_at_the_input_grid(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b,c; d"), out_raster=tmp_path / "c.tif", out_probs=tmp_path / "p.tif",
                     resize_long_side=96, **settings(tiny_files, no_upsampler=True))
    result = run(job)
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "c.tif") as out, rasterio.open(tmp_path / "p.tif") as p:
        assert (out.width, out.height) == (190, 150) and out.transform == src.transform
        assert (p.width, p.height) == (190, 150)
        classes, probs = out.read(1), p.read()
    assert np.array_equal(classes, probs.argmax(axis=0))  # both resampled alike
    assert sum(result.pixel_counts) == 96 * 76  # counted on the working grid
    assert result.windows == 1  # 96 x 76 after resizing: one padded window
    # geodesic areas: 150 x 190 pixels of 0.0001 degrees at 50 N ~ 11.13 m x 7.16 m
    assert sum(result.class_areas_m2) == pytest.approx(150 * 190 * 11.13 * 7.16, rel=0.01)


def test_presets_and_overrides_reach_the_model(tiny_files):
    classes = parse_inline_classes("; ".join(f"class {i}" for i in range(6)))
    loaded = segmentor(tiny_files, dataset_preset="potsdam", attention="sclip", attention_blocks=2)
    assert (loaded.config.prob_threshold, loaded.config.background_index) == (0.1, 5)
    assert (loaded.net.attention, loaded.net.attention_blocks, loaded.net.gba_lambda) == ("sclip", 2, -0.3)
    xbd = segmentor(tiny_files, dataset_preset="xbd", activation="gelu")
    assert xbd.net.gba_lambda == 0.0 and xbd.config.prob_threshold == 0.0
    assert type(xbd.net.clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert tuple(loaded.prompt(classes).embeddings.shape) == (6, 32)


@pytest.mark.parametrize("changes,message", [
    ({"background_index": 3}, "background_index 3 is not a class index"),
    ({"stride": 300}, "larger than window"),
    ({"window": 200}, "not a multiple of the model's patch size"),
    ({"model": "segearth-xl"}, "unknown model 'segearth-xl'"),
    ({"device": "tpu"}, "device 'tpu' is not a device"),
    ({"attention_blocks": 4}, "attention_blocks 4 is out of range: the model has 3 blocks"),
])
def test_bad_settings_are_explained(scene, tiny_files, tmp_path, changes, message):
    job = SegmentJob(scene, "a; b", out_raster=tmp_path / "c.tif", **settings(tiny_files, **changes))
    with pytest.raises(UserInputError, match=message) as raised:
        run(job, models=ModelCache())
    assert list(changes)[0] in raised.value.fields


def test_cancelling_writes_nothing(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=tmp_path / "c.tif",
                     **settings(tiny_files, no_upsampler=True, batch_size=1))
    with pytest.raises(Cancelled):
        run(job, should_stop=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]


def test_unknown_output_extension_is_refused(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=tmp_path / "c.png", **settings(tiny_files))
    with pytest.raises(UserInputError, match="must end in .tif, .tiff"):
        run(job)
    job = SegmentJob(scene, parse_inline_classes("a; b"), out=tmp_path / "p.kml", **settings(tiny_files))
    with pytest.raises(UserInputError, match="must end in .gpkg, .shp, .geojson, .json, .fgb"):
        run(job)


def write_scene(path, pixels, crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 1.0, 1.0), **profile):
    with rasterio.open(path, "w", driver="GTiff", height=pixels.shape[1], width=pixels.shape[2], count=pixels.shape[0],
                       dtype=pixels.dtype, crs=crs, transform=transform, **profile) as out:
        out.write(pixels)
    return path


def reference(tiny_files, pixels, classes, batch_size, **changes):
    """#2's in-memory result on the same array: slide_logits over the whole image, then classify."""
    import torch

    from backend.inference.slide import normalise_pixels, slide_logits

    loaded = segmentor(tiny_files, **changes)
    prompts = loaded.prompt(classes)
    logits = slide_logits(loaded, normalise_pixels(torch.from_numpy(pixels)), prompts,
                          loaded.config.window, loaded.config.stride, batch_size)
    return loaded.classify(logits, prompts)


def test_streamed_outputs_equal_the_in_memory_result(tiny_files, tmp_path):
    pixels = np.random.default_rng(5).integers(0, 256, (3, 700, 520), dtype=np.uint8)  # 6 window rows, 3 strips
    scene = write_scene(tmp_path / "big.tif", pixels)
    classes = parse_inline_classes("ground; building,roof; water")
    job = SegmentJob(scene, classes, out_raster=tmp_path / "c.tif", out_probs=tmp_path / "p.tif", strip_width=200,
                     **settings(tiny_files, no_upsampler=True, batch_size=1, prob_threshold=0.2))
    result = run(job)
    expected_classes, expected_probs = reference(tiny_files, pixels, classes, 1, no_upsampler=True,
                                                 prob_threshold=0.2)
    with rasterio.open(tmp_path / "c.tif") as out, rasterio.open(tmp_path / "p.tif") as probs:
        assert np.array_equal(probs.read(), expected_probs.numpy())
        assert np.array_equal(out.read(1), expected_classes.numpy())
        assert out.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and out.nodata == 255
        assert out.colormap(1)[255][3] == 0 and out.overviews(1)
    assert result.windows == 6 * (2 + 3 + 1) and sum(result.pixel_counts) == 700 * 520


def test_nodata_aoi_and_polygons(tiny_files, tmp_path):
    pixels = np.random.default_rng(6).integers(1, 256, (3, 300, 400), dtype=np.uint8)
    pixels[:, :, 250:] = 0  # nodata on the right
    scene = write_scene(tmp_path / "scene.tif", pixels, nodata=0)
    aoi = "POLYGON((500050 4649950, 500350 4649950, 500350 4649750, 500050 4649750, 500050 4649950))"
    job = SegmentJob(scene, parse_inline_classes("ground; building"), out_raster=tmp_path / "c.tif",
                     out=tmp_path / "p.gpkg", aoi=aoi, **settings(tiny_files, no_upsampler=True))
    result = run(job)
    with rasterio.open(tmp_path / "c.tif") as out:
        assert (out.width, out.height) == (300, 200) and out.bounds.left == 500050
        class_map = out.read(1)
    assert (class_map[:, 200:] == 255).all() and (class_map[:, :200] < 2).all()
    import pyogrio

    polygons = pyogrio.read_dataframe(tmp_path / "p.gpkg")
    assert polygons.area_m2.sum() == pytest.approx(200 * 200)  # valid pixels only, 1 m² each
    assert polygons.geometry.total_bounds[2] <= 500250 and result.polygon_count == len(polygons)
    assert set(polygons.class_name) <= {"ground", "building"}


def test_all_nodata_area_is_refused_and_nothing_is_written(tiny_files, tmp_path):
    pixels = np.zeros((3, 100, 100), np.uint8)
    scene = write_scene(tmp_path / "empty.tif", pixels, nodata=0)
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=tmp_path / "out" / "c.tif",
                     **settings(tiny_files, no_upsampler=True))
    with pytest.raises(UserInputError, match="has no valid pixels in the area to segment"):
        run(job)
    assert not (tmp_path / "out").exists()  # not even the folder it made for the output


def test_a_small_aoi_is_padded_to_the_window(tiny_files, tmp_path):
    scene = write_scene(tmp_path / "s.tif", np.random.default_rng(7).integers(0, 256, (3, 300, 300), dtype=np.uint8))
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=tmp_path / "c.tif",
                     aoi="500010,4649900,500060,4649970", **settings(tiny_files, no_upsampler=True))
    result = run(job)
    assert result.windows == 1 and sum(result.pixel_counts) == 50 * 70


def test_keep_gsd_writes_the_resampled_grid(tiny_files, tmp_path):
    scene = write_scene(tmp_path / "s.tif", np.random.default_rng(8).integers(0, 256, (3, 240, 200), dtype=np.uint8))
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=tmp_path / "c.tif",
                     gsd=2.0, keep_gsd=True, **settings(tiny_files, no_upsampler=True))
    run(job)
    with rasterio.open(tmp_path / "c.tif") as out:
        assert (out.width, out.height, out.transform.a) == (100, 120, 2.0)


def test_plain_images_warn_and_give_pixel_coordinates(tiny_files, tmp_path, caplog):
    photo = tmp_path / "photo.png"
    with rasterio.open(photo, "w", driver="PNG", height=64, width=80, count=3, dtype="uint8") as out:
        out.write(np.random.default_rng(9).integers(0, 256, (3, 64, 80), dtype=np.uint8))
    job = SegmentJob(photo, parse_inline_classes("a; b"), out_raster=tmp_path / "c.tif", out=tmp_path / "p.geojson",
                     **settings(tiny_files, no_upsampler=True))
    result = run(job)
    assert "has no CRS: outputs are in pixel coordinates" in caplog.text
    assert result.class_areas_m2 is None
    import pyogrio

    assert pyogrio.read_dataframe(tmp_path / "p.geojson").geometry.union_all().bounds == (0, 0, 80, 64)


def test_a_crash_mid_run_leaves_the_existing_output(scene, tiny_files, tmp_path):
    target = tmp_path / "c.tif"
    target.write_bytes(b"yesterday's result")
    calls = []

    def stop_late():
        calls.append(1)
        return len(calls) > 1

    job = SegmentJob(scene, parse_inline_classes("a; b"), out_raster=target, out=tmp_path / "p.shp", overwrite=True,
                     **settings(tiny_files, no_upsampler=True, batch_size=1))
    with pytest.raises(Cancelled):
        run(job, should_stop=stop_late)
    assert target.read_bytes() == b"yesterday's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "scene.tif"]


@pytest.mark.parametrize("outputs,message", [
    ({}, "no output was asked for"),
    ({"out_raster": "blocker/c.tif"}, "output folder .*blocker cannot be created"),
    ({"out_raster": "c.tif", "out_probs": "c.tif"}, "out_raster and out_probs are the same file"),
    ({"out": "p.gpkg", "out_crs": "EPSG:0"}, "out_crs 'EPSG:0' is not a"),
    ({"out": "p.gpkg", "min_area": -1}, "min_area -1.0 must be 0 or a positive number"),
])
def test_bad_outputs_are_explained(scene, tiny_files, tmp_path, outputs, message):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    outputs = {k: tmp_path / v if k in ("out", "out_raster", "out_probs") else v for k, v in outputs.items()}
    job = SegmentJob(scene, parse_inline_classes("a; b"), **settings(tiny_files), **outputs)
    with pytest.raises(UserInputError, match=message):
        run(job)


def test_two_jobs_with_different_classes_reuse_one_loaded_model(scene, tiny_files, tmp_path):
    cache = ModelCache()
    first = SegmentJob(scene, "water; land", out_raster=tmp_path / "a.tif", **settings(tiny_files))
    second = SegmentJob(scene, "road; building,roof; tree", out_raster=tmp_path / "b.tif", prob_threshold=0.3,
                        attention="sclip", attention_blocks=2, **settings(tiny_files))
    run(first, models=cache)
    run(second, models=cache)
    assert cache.loads == 1
    with rasterio.open(tmp_path / "b.tif") as out:
        assert out.tags()["CLASS_NAMES"] == "road;building;tree"
    gelu = SegmentJob(scene, "water; land", out_raster=tmp_path / "c.tif", activation="gelu", **settings(tiny_files))
    run(gelu, models=cache)  # another activation builds another network
    assert cache.loads == 2


def test_a_raster_truncated_mid_file_fails_in_one_sentence_and_writes_nothing(tiny_files, tmp_path):
    pixels = np.random.default_rng(4).integers(0, 256, (3, 600, 600), dtype=np.uint8)
    scene = write_scene(tmp_path / "cut.tif", pixels, tiled=True, blockxsize=128, blockysize=128)
    scene.write_bytes(scene.read_bytes()[:len(scene.read_bytes()) * 2 // 3])  # header and first tiles intact
    out = tmp_path / "out"
    job = SegmentJob(scene, "a; b", out_raster=out / "c.tif", **settings(tiny_files, no_upsampler=True))
    with pytest.raises(UserInputError, match="cut.tif cannot be read at rows .* truncated or corrupt") as raised:
        run(job, models=ModelCache())
    assert raised.value.fields == ("raster",)
    assert not out.exists() or not any(out.iterdir())


def test_complex_rasters_are_read_as_sar_magnitudes_in_db(tiny_files, tmp_path):
    rng = np.random.default_rng(5)
    slc = (rng.normal(size=(1, 120, 140)) + 1j * rng.normal(size=(1, 120, 140))).astype(np.complex64)
    scene = write_scene(tmp_path / "slc.tif", slc)
    from backend.raster.source import RasterSource

    source = RasterSource.open(scene)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.ComplexWarning)  # never a silent cast to real
        pixels, valid = source.read_all()
    assert source.modality == "sar" and source.sar.scale == "amplitude"
    decibels = 20 * np.log10(np.abs(slc[0]))
    low, high = np.percentile(decibels, (2, 98))
    assert source.sar.stretch[0] == pytest.approx((low, high), abs=0.2)  # from the decimated read
    assert np.corrcoef(pixels[0].ravel(), np.clip(decibels, low, high).ravel())[0, 1] > 0.99 and valid.all()
    result = run(SegmentJob(scene, "water; land", out_raster=tmp_path / "c.tif",
                            **settings(tiny_files, no_upsampler=True)), models=ModelCache())
    assert sum(result.pixel_counts) == 120 * 140


def test_a_local_crs_is_segmented_without_areas(tiny_files, tmp_path):
    from rasterio.crs import CRS

    local = CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    scene = write_scene(tmp_path / "site.tif", np.random.default_rng(6).integers(0, 256, (3, 60, 70), np.uint8),
                        crs=local, transform=from_origin(0.0, 60.0, 1.0, 1.0))
    result = run(SegmentJob(scene, "a; b", out_raster=tmp_path / "c.tif", **settings(tiny_files, no_upsampler=True)),
                 models=ModelCache())
    assert result.class_areas_m2 is None and sum(result.pixel_counts) == 60 * 70


def test_a_failed_load_keeps_the_resident_model():
    cache = ModelCache(capacity=1)
    resident = cache.get("a", lambda: "model a")

    def broken():
        raise UserInputError("weights file broken.pt is not a weights file")

    with pytest.raises(UserInputError):
        cache.get("b", broken)
    assert cache.get("a", lambda: "reloaded") is resident and cache.loads == 1
    cache.get("b", lambda: "model b")
    assert cache.keys() == ["b"] and cache.loads == 2  # capacity 1: a was evicted after b loaded


def test_a_load_that_runs_out_of_device_memory_evicts_the_least_recently_used_model():
    import torch

    from backend.errors import DeviceMemoryError

    cache = ModelCache(capacity=3)
    cache.get("a", lambda: "model a", {"name": "a"})
    cache.get("b", lambda: "model b", {"name": "b"})
    attempts = []

    def needs_room():
        attempts.append(len(cache._items))
        if len(cache._items) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return "model c"

    assert cache.get("c", needs_room, {"name": "c"}) == "model c"
    assert attempts == [2, 1] and cache.keys() == ["b", "c"]
    assert cache.describe() == [{"name": "b"}, {"name": "c"}]

    def never_fits():
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(DeviceMemoryError, match="does not fit in the device's free memory"):
        cache.get("d", never_fits)
    assert cache.keys() == []
