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


@pytest.mark.parametrize("changes,field", [
    ({"batch_size": "8"}, "batch_size"), ({"gsd": "0.5"}, "gsd"), ({"bands": [1.5, 2, 3]}, "bands"),
    ({"overwrite": "yes"}, "overwrite"), ({"aoi": 5}, "aoi"), ({"raster": None}, "raster"),
])
def test_values_of_the_wrong_type_are_named_like_any_bad_field(scene, tmp_path, changes, field):
    values = {"raster": scene, "classes": "a; b", "out_raster": tmp_path / "c.tif", **changes}
    with pytest.raises(UserInputError) as raised:
        SegmentJob(**values)
    assert raised.value.fields == (field,)


def test_json_nulls_take_the_defaults_and_text_lists_are_parsed(scene, tmp_path):
    job = SegmentJob(scene, "a; b", out_raster=tmp_path / "c.tif", simplify=None, batch_size=None,
                     bands="3,2,1", stretch="0,3000")
    assert (job.simplify, job.batch_size, job.bands, job.stretch) == (0.0, 8, (3, 2, 1), (0.0, 3000.0))
    job.validate()


def test_a_local_crs_gives_pixels_but_no_areas(tmp_path):
    from rasterio.crs import CRS

    local = CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    path = tmp_path / "site.tif"
    with rasterio.open(path, "w", driver="GTiff", height=30, width=40, count=3, dtype="uint8", crs=local,
                       transform=from_origin(0.0, 30.0, 1.0, 1.0)) as out:
        out.write(np.zeros((3, 30, 40), np.uint8))
    with pytest.raises(UserInputError, match="has no CRS on the ground") as raised:
        SegmentJob(path, "a; b", out=tmp_path / "p.gpkg", min_area=5).validate()
    assert "min_area" in raised.value.fields
    with pytest.raises(UserInputError, match="gsd needs a CRS in metres or degrees"):
        SegmentJob(path, "a; b", out_raster=tmp_path / "c.tif", gsd=2.0).validate()


def test_a_shapefiles_sidecar_is_never_replaced_without_overwrite(scene, tmp_path):
    (tmp_path / "buildings.dbf").write_bytes(b"someone's attribute table")
    job = SegmentJob(scene, "a; b", out=tmp_path / "buildings.shp")
    with pytest.raises(UserInputError, match=r"buildings\.dbf already exists; pass overwrite"):
        job.validate()


def test_classes_may_be_a_list_of_lines(scene, tmp_path):
    job = SegmentJob(scene, ["water", "building, roof"], out=tmp_path / "p.gpkg")
    assert job.classes.synonyms == (("water",), ("building", "roof"))


@pytest.mark.parametrize("path", ["/data/scene\x00.tif", "/data/" + "x" * 300 + ".tif", "/data/\ud800.tif",
                                  "~no-such-user-here/scene.tif"])
def test_a_path_no_file_could_have_is_one_sentence(path, tmp_path):
    with pytest.raises(UserInputError) as raised:
        SegmentJob(path, "a; b", out=tmp_path / "p.gpkg")
    assert raised.value.fields == ("raster",)


def test_a_download_job_has_the_fields_of_rsov_weights_download():
    from backend.jobs import DownloadWeightsJob

    args = build_parser().parse_args(["weights", "download", "openai-vit-b-16", "--force"])
    assert DownloadWeightsJob(**{name: getattr(args, name) for name in DownloadWeightsJob.field_names()}) == \
        DownloadWeightsJob("openai-vit-b-16", force=True)
    with pytest.raises(UserInputError, match="unknown weights 'nope'") as raised:
        DownloadWeightsJob("nope").validate()
    assert raised.value.fields == ("name",)
