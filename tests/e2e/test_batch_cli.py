"""`rsov batch` as a user runs it: the installed command over a folder with a corrupt scene, a re-run that
resumes, the same outputs in one process, in several and on a Ray cluster, and the service's batch job."""
import csv
import os
import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from backend.batch.job import BatchJob
from backend.engine import run
from backend.errors import Cancelled
from tests.helpers.rasters import write_scene
from tests.helpers.service import RSOV, RunningService

CLASSES = "background; building,roof,house; road"
NAMES = ("harbour", "fields", "town")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three small scenes and a corrupt one (cut after its header) in a folder with a subfolder."""
    folder = tmp_path_factory.mktemp("scenes")
    for seed, name in enumerate(NAMES):
        write_scene(folder / ("more" if name == "town" else "") / f"{name}.tif", 56 + 8 * seed, 72, seed=seed)
    (folder / "broken.tif").write_bytes((folder / "harbour.tif").read_bytes()[:200])
    return folder


@pytest.fixture
def copied(scenes, tmp_path):
    return shutil.copytree(scenes, tmp_path / "scenes")


def rsov(*args):
    return subprocess.run([RSOV, *map(str, args)], capture_output=True, text=True, env=os.environ, timeout=300)


def batch_args(inputs, out_dir, tiny_files, *more):
    return ("batch", inputs, "--classes", CLASSES, "--out-dir", out_dir, "--clip-weights", tiny_files["open_clip"],
            "--no-upsampler", *more)


def manifest_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["scene"]: row for row in csv.DictReader(handle)}


def class_maps(folder):
    maps = {}
    for name in NAMES:
        with rasterio.open(folder / f"{name}.tif") as classes:
            maps[name] = classes.read(1)
    return maps


def test_a_batch_segments_each_scene_records_the_broken_one_and_resumes(copied, tmp_path, tiny_files):
    out = tmp_path / "out"
    first = rsov(*batch_args(copied, out, tiny_files))
    assert first.returncode == 1, first.stderr
    assert "4 scenes: 3 done, 1 failed, 0 skipped in " in first.stdout and f"manifest: {out / 'manifest.csv'}" \
        in first.stdout
    rows = manifest_rows(out / "manifest.csv")
    assert list(rows) == ["broken", "fields", "harbour", "town"]  # the folder's order
    broken = rows.pop("broken")
    assert broken["status"] == "failed" and broken["source"] == str(copied / "broken.tif")
    assert broken["error"].startswith(f"input raster {copied / 'broken.tif'} cannot be read (")
    assert broken["error"].endswith(".") and "\n" not in broken["error"] and not broken["outputs"]
    assert f"  broken: {broken['error']}" in first.stderr
    for name, row in rows.items():
        assert row["status"] == "done" and not row["error"] and float(row["seconds"]) > 0
        assert row["outputs"] == f"{name}.tif; {name}.gpkg" and int(row["polygons"]) > 0
        with rasterio.open(out / f"{name}.tif") as classes:
            found = [classes.tags()["CLASS_NAMES"].split(";")[value] for value in np.unique(classes.read(1))]
        assert row["classes"] == "; ".join(found)  # the classes present, in class order
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == [
        "fields.gpkg", "fields.tif", "harbour.gpkg", "harbour.tif", "manifest.csv", "town.gpkg", "town.tif"]
    written = {path.name: path.stat().st_mtime_ns for path in out.glob("*.*")}

    (copied / "broken.tif").unlink()
    write_scene(copied / "broken.tif", 40, 40, seed=7)  # fixed: only this one runs again
    second = rsov(*batch_args(copied, out, tiny_files))
    assert second.returncode == 0, second.stderr
    assert "4 scenes: 1 done, 0 failed, 3 skipped in " in second.stdout
    rows_again = manifest_rows(out / "manifest.csv")
    assert rows_again["broken"]["status"] == "done" and not rows_again["broken"]["error"]
    assert {name: rows_again[name] for name in rows} == rows  # finished scenes untouched, rows and files
    assert all(path.stat().st_mtime_ns == written[path.name] for path in out.glob("*.*") if path.name in written
               and not path.name.startswith("manifest"))
    assert not list(out.glob(".rsov-*"))  # no scratch folder left


def test_the_outputs_are_the_same_in_one_process_in_two_and_on_ray(scenes, tmp_path, tiny_files, ray_cluster,
                                                                   monkeypatch):
    common = {"inputs": str(scenes), "classes": CLASSES, "clip_weights": str(tiny_files["open_clip"]),
              "no_upsampler": True}
    one = run(BatchJob(**common, out_dir=tmp_path / "one"))
    two = run(BatchJob(**common, out_dir=tmp_path / "two", workers=2, manifest_format="parquet",
                       vector_format="fgb", probs=True))
    monkeypatch.chdir(tmp_path)  # paths relative to this folder, which the Ray workers do not share
    ray = run(BatchJob(**common | {"clip_weights": os.path.relpath(tiny_files["open_clip"])}, out_dir="ray",
                       ray="auto", ray_workers=2))
    assert (one.where, two.where, ray.where) == ("this process", "2 processes of 1 thread",
                                                 "2 Ray workers on CPU (1 thread each)")
    expected = class_maps(tmp_path / "one")
    for other in ("two", "ray"):
        maps = class_maps(tmp_path / other)
        assert all(np.array_equal(maps[name], expected[name]) for name in NAMES), other
    for result in (one, two, ray):
        assert (result.done, result.failed, result.skipped) == (3, 1, 0)
        assert [(row["scene"], row["status"], row["classes"], row["error"]) for row in result.rows] == \
            [(row["scene"], row["status"], row["classes"], row["error"]) for row in one.rows]
    assert sorted(path.name for path in (tmp_path / "two").glob("town*")) == ["town-probs.tif", "town.fgb",
                                                                              "town.tif"]
    again = run(BatchJob(**common, out_dir=tmp_path / "two", manifest_format="parquet", vector_format="fgb",
                         probs=True))
    assert (again.done, again.failed, again.skipped) == (0, 1, 3)  # the Parquet manifest resumes as well


def test_a_batch_run_again_with_other_classes_runs_its_scenes_again(scenes, tmp_path, tiny_files):
    common = {"inputs": str(scenes / "[fh]*.tif"), "out_dir": tmp_path / "out",
              "clip_weights": str(tiny_files["open_clip"]), "no_upsampler": True}
    first = run(BatchJob(**common, classes=CLASSES))
    assert (first.done, first.failed, first.skipped) == (2, 0, 0)
    other = BatchJob(**common, classes="background; water; road")
    second = run(other)
    assert (second.done, second.failed, second.skipped) == (2, 0, 0)  # done, but with other classes
    for name in ("fields", "harbour"):
        with rasterio.open(tmp_path / "out" / f"{name}.tif") as classes:
            assert classes.tags()["CLASS_NAMES"] == "background;water;road"  # replaced
    rows = manifest_rows(tmp_path / "out" / "manifest.csv")
    assert {row["settings"] for row in rows.values()} == {other.settings} != {first.rows[0]["settings"]}
    third = run(BatchJob(**common, classes="background; water; road"))
    assert (third.done, third.failed, third.skipped) == (0, 0, 2)


def test_a_cancelled_batch_keeps_the_scenes_it_finished(scenes, tmp_path, tiny_files):
    seen = []
    job = BatchJob(str(scenes), CLASSES, tmp_path / "out", clip_weights=str(tiny_files["open_clip"]),
                   no_upsampler=True)
    with pytest.raises(Cancelled):
        run(job, lambda stage, done, total: seen.append(done), lambda: len(seen) > 2)
    assert seen[:3] == [0, 1, 2]
    rows = manifest_rows(tmp_path / "out" / "manifest.csv")
    assert list(rows) == ["broken", "fields"]
    assert not list((tmp_path / "out").glob(".rsov-*"))


def test_bad_batch_options_are_one_line_naming_the_flag(copied, tmp_path, tiny_files):
    result = rsov(*batch_args(tmp_path / "nowhere", tmp_path / "out", tiny_files))
    assert result.returncode == 2
    assert result.stderr.startswith(f"rsov: error: INPUTS {tmp_path / 'nowhere'} does not exist; check the path")
    result = rsov(*batch_args(copied, tmp_path / "out", tiny_files, "--workers", "2", "--ray", "auto"))
    assert result.returncode == 2 and "--workers sets processes" in result.stderr and "--ray-workers" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_service_runs_a_batch_sent_as_a_folder(copied, tmp_path, tiny_files):
    service = RunningService(tmp_path / "home")
    try:
        body = {"kind": "batch", "inputs": str(copied), "classes": CLASSES, "out_dir": str(copied / "out"),
                "clip_weights": str(tiny_files["open_clip"]), "no_upsampler": True, "no_polygons": True}
        status = service.wait(service.submit(**body))
        assert status["state"] == "done", status
        assert status["progress"]["unit"] == "scenes" and status["progress"]["done_mp"] == 4
        result = service.client.get(f"/v1/jobs/{status['id']}/result", params={"max_rows": 2}).json()
        assert (result["scenes"], result["done"], result["failed"], result["skipped"]) == (4, 3, 1, 0)
        assert result["files"][0]["path"] == str(copied / "out" / "manifest.csv")
        assert [row["scene"] for row in result["rows"]] == ["broken", "fields"] and result["rows_omitted"]
        assert result["rows"][1]["outputs"] == "fields.tif"
        refused = service.client.post("/v1/jobs", json={**body, "out_dir": str(tmp_path / "elsewhere")})
        assert refused.status_code == 422 and "out_dir" in refused.json()["fields"], refused.text
        assert "outside the folders this service may write to" in refused.json()["error"]
    finally:
        assert service.stop() == 0, service.log.read_text()
