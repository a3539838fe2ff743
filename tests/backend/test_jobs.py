"""Jobs as values: built in Python, checked by one validate() whose sentences name the job's fields."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.cli import build_parser
from backend.errors import UserInputError
from backend.jobs import MAX_CLASSES, SegmentJob


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", height=40, width=50, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000.0, 4650000.0, 1.0, 1.0)) as out:
        out.write(np.zeros((3, 40, 50), np.uint8))
    return path


def test_a_job_is_built_from_plain_values(scene, tmp_path):
    job = SegmentJob(str(scene), "water; building,roof", out_raster=str(tmp_path / "c.tif"), bands=[3, 2, 1])
    assert job.classes.names == ["water", "building"] and job.bands == (3, 2, 1)
    assert job.raster == scene and job.out_raster == tmp_path / "c.tif"
    job.validate()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]  # validating writes nothing


@pytest.mark.parametrize("changes,field,words", [
    ({"stride": -1}, "stride", "stride -1 must be at least 1 pixel"),
    ({"window": 0}, "window", "window 0 must be at least 1 pixel"),
    ({"prob_threshold": 1.5}, "prob_threshold", "prob_threshold 1.5 is not a probability"),
    ({"attention": "fancy"}, "attention", "attention 'fancy' is not one of"),
    ({"bands": (0,)}, "bands", "bands 0 must be three band numbers"),
    ({"aoi": "1,2,3"}, "aoi", "aoi '1,2,3' is neither"),
    ({"batch_size": 0}, "batch_size", "batch_size 0 must be at least 1"),
    ({"model": "nope"}, "model", "unknown model 'nope'"),
    ({"out_crs": "EPSG:0"}, "out_crs", "out_crs 'EPSG:0' is not a coordinate reference system"),
])
def test_a_bad_field_is_named_in_the_error(scene, tmp_path, changes, field, words):
    job = SegmentJob(scene, "a; b", out_raster=tmp_path / "c.tif", **changes)
    with pytest.raises(UserInputError) as raised:
        job.validate()
    assert field in raised.value.fields and words in str(raised.value)
    assert raised.value.render(lambda name: f"<{name}>").count(f"<{field}>") >= 1


def test_an_output_never_replaces_an_input(scene, tmp_path):
    job = SegmentJob(scene, "a; b", out_raster=scene, overwrite=True)
    with pytest.raises(UserInputError, match="is an input of this job") as raised:
        job.validate()
    assert raised.value.fields == ("out_raster",)
    via_other_spelling = SegmentJob(scene, "a; b", out_raster=tmp_path / "." / "scene.tif", overwrite=True)
    with pytest.raises(UserInputError, match="is an input of this job"):
        via_other_spelling.validate()


def test_as_many_classes_as_the_class_raster_holds(scene, tmp_path):
    names = "; ".join(f"class {i}" for i in range(MAX_CLASSES))
    SegmentJob(scene, names, out_raster=tmp_path / "c.tif").validate()
    with pytest.raises(UserInputError, match=f"lists {MAX_CLASSES + 1} classes"):
        SegmentJob(scene, names + "; one more", out_raster=tmp_path / "c.tif").validate()


def test_every_job_field_is_a_cli_option_of_the_same_name():
    segment = build_parser()._subparsers._group_actions[0].choices["segment"]
    dests = {action.dest for action in segment._actions}
    assert set(SegmentJob.field_names()) <= dests
    for action in segment._actions:
        if action.option_strings and action.dest in SegmentJob.field_names():
            assert max(action.option_strings, key=len) == "--" + action.dest.replace("_", "-")
