"""BatchJob: segment's options for every scene, outputs named after the scene, checks before anything runs."""
import dataclasses

import pytest

from backend.batch.inputs import Scene
from backend.batch.job import SCENE_FIELDS, BatchJob
from backend.errors import UserInputError
from backend.jobs import SegmentJob
from tests.helpers.rasters import write_scene


@pytest.fixture
def folder(tmp_path):
    for name in ("a", "b"):
        write_scene(tmp_path / "in" / f"{name}.tif", 8, 8)
    return tmp_path / "in"


def test_each_scene_is_a_segment_job_with_the_batchs_options_and_outputs_named_after_it(folder, tmp_path):
    job = BatchJob(str(folder), "water; building,roof", str(tmp_path / "out"), probs=True, vector_format="fgb",
                   bands=[3, 2, 1], simplify=1.5, strip_width=512)
    scene_job = job.segment_job(Scene("north", "/vsicurl/https://h/n.tif"))
    assert scene_job.out_raster == tmp_path / "out" / "north.tif" and scene_job.out == tmp_path / "out" / "north.fgb"
    assert scene_job.out_probs == tmp_path / "out" / "north-probs.tif" and scene_job.overwrite
    assert (scene_job.bands, scene_job.simplify, scene_job.strip_width) == ((3, 2, 1), 1.5, 512)
    assert scene_job.classes == job.classes and scene_job.ray is None
    assert BatchJob(str(folder), "a", tmp_path, no_polygons=True).segment_job(Scene("x", "x.tif")).out is None


def test_the_options_for_each_scene_are_segments_with_its_defaults():
    segment = {field.name: field for field in dataclasses.fields(SegmentJob)}
    batch = {field.name: field for field in dataclasses.fields(BatchJob)}
    assert {"bands", "aoi", "clip_weights", "strip_width", "device"} <= set(SCENE_FIELDS)
    assert not {"raster", "out_raster", "out", "out_probs", "preview", "overwrite"} & set(batch)
    for name in SCENE_FIELDS:
        assert batch[name].default == segment[name].default, name


def test_the_batch_request_of_the_service_has_the_jobs_fields_and_defaults():
    from backend.server.schemas import JOB_REQUESTS

    request = JOB_REQUESTS["batch"].model_fields
    assert set(request) - {"kind"} == set(BatchJob.field_names())
    for field in dataclasses.fields(BatchJob):
        if field.default is not dataclasses.MISSING:
            assert request[field.name].default == field.default, field.name


def test_validation_lists_the_scenes_and_leaves_out_those_inside_out_dir(folder):
    write_scene(folder / "out" / "a.tif", 8, 8)  # an earlier run's output, the outputs kept beside the inputs
    scenes = BatchJob(str(folder), "a; b", folder / "out").checked()
    assert [scene.name for scene in scenes] == ["a", "b"]
    assert not (folder / "out" / "manifest.csv").exists()  # validating writes nothing


@pytest.mark.parametrize("changes,fields,words", [
    ({"workers": 0}, ("workers",), "workers 0 must be at least 1 process"),
    ({"workers": 2, "ray": "auto"}, ("workers", "ray", "ray_workers"), "give one of the two"),
    ({"vector_format": "kml"}, ("vector_format",), "vector_format 'kml' is not one of gpkg, shp, fgb, geojson"),
    ({"manifest_format": "xlsx"}, ("manifest_format",), "is not one of csv, parquet"),
    ({"classes": 3}, ("classes",), "classes must be text like"),
    ({"stride": 0}, ("stride",), "stride 0 must be at least 1 pixel"),
    ({"model": "nope"}, ("model",), "unknown model 'nope'"),
    ({"inputs": "nowhere"}, ("inputs",), "inputs nowhere does not exist"),
])
def test_a_bad_field_is_named_before_any_scene_runs(folder, tmp_path, changes, fields, words):
    values = {"inputs": str(folder), "classes": "a; b", "out_dir": tmp_path / "out", **changes}
    with pytest.raises(UserInputError) as caught:
        BatchJob(**values).validate()
    assert words in str(caught.value) and set(fields) <= set(caught.value.fields)


def test_an_out_dir_holding_every_scene_is_refused(folder, tmp_path):
    with pytest.raises(UserInputError, match=r"inputs .*a.tif names only files inside out_dir .*in; give other"):
        BatchJob(str(folder / "a.tif"), "a; b", folder.parent / "elsewhere" / ".." / "in").validate()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserInputError, match=r"out_dir: output folder .*file cannot be created \(.*is a file\)"):
        BatchJob(str(folder), "a; b", tmp_path / "file").validate()


def test_the_settings_hash_changes_with_the_classes_and_each_option_that_makes_the_outputs(folder, tmp_path):
    job = BatchJob(str(folder), "water; building,roof", tmp_path / "out")
    settings = job.settings
    assert len(settings) == 12 and int(settings, 16) >= 0
    assert BatchJob(str(folder / "*.tif"), "water;building, roof", tmp_path / "elsewhere", workers=2,
                    manifest_format="parquet").settings == settings  # inputs, folder and running: the same
    for changes in ({"classes": "water; building"}, {"classes": "building,roof; water"}, {"bands": [3, 2, 1]},
                    {"model": "segearth-ov-b"}, {"simplify": 1.0}, {"probs": True}, {"vector_format": "fgb"},
                    {"no_polygons": True}):
        assert dataclasses.replace(job, **changes).settings != settings, changes
