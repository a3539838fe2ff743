"""engine.run in-process with tiny weights: settings reach the model and outputs stay georeferenced."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.engine import ModelSettings, SegmentJob, run
from backend.errors import Cancelled, UserInputError
from backend.prompts import parse_inline_classes
from backend.raster.source import ReadOptions
from backend.segmentor import load_segmentor


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.tif"
    pixels = np.random.default_rng(0).integers(0, 256, (3, 150, 190), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=150, width=190, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.0001, 0.0001)) as out:
        out.write(pixels)
    return path


def settings(tiny_files, **changes):
    return ModelSettings(clip_weights=str(tiny_files["open_clip"]), upsampler_weights=str(tiny_files["simfeatup"]),
                         download=False, **changes)


def test_resized_inference_comes_back_at_the_input_grid(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b,c; d"), tmp_path / "c.tif", tmp_path / "p.tif",
                     read=ReadOptions(resize_long_side=96), settings=settings(tiny_files, no_upsampler=True))
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
    loaded = load_segmentor(settings(tiny_files, dataset="potsdam", attention="sclip", attention_blocks=2), classes)
    assert (loaded.prob_threshold, loaded.background_index) == (0.1, 5)
    assert (loaded.model.attention, loaded.model.attention_blocks, loaded.model.gba_lambda) == ("sclip", 2, -0.3)
    xbd = load_segmentor(settings(tiny_files, dataset="xbd", activation="gelu"), classes)
    assert xbd.model.gba_lambda == 0.0 and xbd.prob_threshold == 0.0
    assert type(xbd.model.clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert tuple(loaded.queries.shape) == (6, 32)


@pytest.mark.parametrize("changes,message", [
    ({"background_index": 3}, "--background-index 3 is not a class index"),
    ({"stride": 300}, "larger than --window"),
    ({"window": 200}, "not a multiple of the model's patch size"),
    ({"model": "segearth-xl"}, "unknown model 'segearth-xl'"),
    ({"device": "tpu"}, "unknown device"),
])
def test_bad_settings_are_explained(tiny_files, changes, message):
    with pytest.raises(UserInputError, match=message):
        load_segmentor(settings(tiny_files, **changes), parse_inline_classes("a; b"))


def test_cancelling_writes_nothing(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b"), tmp_path / "c.tif",
                     settings=settings(tiny_files, no_upsampler=True, batch_size=1))
    with pytest.raises(Cancelled):
        run(job, should_stop=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]


def test_unknown_output_extension_is_refused(scene, tiny_files, tmp_path):
    job = SegmentJob(scene, parse_inline_classes("a; b"), tmp_path / "c.png", settings=settings(tiny_files))
    with pytest.raises(UserInputError, match="must end in .tif or .tiff"):
        run(job)
    job = SegmentJob(scene, parse_inline_classes("a; b"), out_polygons=tmp_path / "p.kml", settings=settings(tiny_files))
    with pytest.raises(UserInputError, match="unknown extension; use .gpkg, .shp, .geojson or .fgb"):
        run(job)
