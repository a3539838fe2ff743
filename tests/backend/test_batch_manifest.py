"""The batch manifest: a row per scene, saved whole after each, read back to resume."""
import csv
import errno
from pathlib import Path

import pytest

from backend.batch.inputs import Scene
from backend.batch import manifest as manifest_module
from backend.batch.manifest import COLUMNS, Manifest, scene_row
from backend.engine import SegmentResult
from backend.errors import UserInputError


SETTINGS = "0123456789ab"


def done_row(scene: Scene, folder: Path, polygons: int | None = 3, settings: str = SETTINGS) -> dict:
    outputs = [folder / f"{scene.name}.tif", folder / f"{scene.name}.gpkg"]
    for path in outputs:
        path.write_text("x")
    result = SegmentResult(["water", "forest", "road"], [5, 0, 2], None, 1, 1.0, 0.1, "cpu", outputs, polygons)
    return scene_row(scene, 1.25, result) | {"settings": settings}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_rows_are_saved_after_each_scene_and_read_back_as_written(tmp_path, suffix):
    manifest = Manifest(tmp_path / f"manifest.{suffix}")
    a, b = Scene("a", "/data/a.tif"), Scene("b", "/vsicurl/https://h/b.tif")
    manifest.record(done_row(a, tmp_path))
    assert len(Manifest.load(manifest.path).rows) == 1  # on disk before the next scene
    manifest.record(scene_row(b, 0.5, error="input raster b cannot be read (x); give a GeoTIFF."))
    rows = list(Manifest.load(manifest.path).rows.values())
    assert [list(row) for row in rows] == [list(COLUMNS)] * 2
    assert rows[0] | {"finished": ""} == {"scene": "a", "source": "/data/a.tif", "status": "done", "seconds": 1.25,
                                          "classes": "water; road", "polygons": 3, "outputs": "a.tif; a.gpkg",
                                          "error": "", "finished": "", "settings": SETTINGS}
    assert rows[1]["status"] == "failed" and rows[1]["polygons"] is None and rows[1]["error"].endswith("GeoTIFF.")
    assert rows[0]["finished"].endswith("+00:00")
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no temporary left


def test_a_scene_is_finished_when_done_from_the_same_source_with_every_output_there(tmp_path):
    manifest = Manifest(tmp_path / "manifest.csv")
    scene = Scene("a", "/data/a.tif")
    manifest.record(done_row(scene, tmp_path))
    outputs = [tmp_path / "a.tif", tmp_path / "a.gpkg"]
    assert Manifest.load(manifest.path).finished(scene, outputs, SETTINGS)
    assert not manifest.finished(scene, outputs, "ba9876543210")  # other classes or options: run again
    assert not manifest.finished(scene, [*outputs, tmp_path / "a-probs.tif"], SETTINGS)  # asked for, never written
    assert not manifest.finished(Scene("a", "/other/a.tif"), outputs, SETTINGS)
    (tmp_path / "a.gpkg").unlink()
    assert not manifest.finished(scene, outputs, SETTINGS)
    manifest.record(scene_row(scene, 0.1, error="no.") | {"settings": SETTINGS})
    assert not manifest.finished(scene, outputs[:1], SETTINGS)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_rows_of_a_manifest_without_settings_are_read_and_run_again(tmp_path, suffix):
    manifest = Manifest(tmp_path / f"manifest.{suffix}")
    scene = Scene("a", "/data/a.tif")
    manifest.record(done_row(scene, tmp_path))
    earlier = [name for name in COLUMNS if name != "settings"]  # the columns an earlier version wrote
    if suffix == "csv":
        rows = list(csv.DictReader(manifest.path.read_text().splitlines()))
        with open(manifest.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=earlier, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.parquet.read_table(manifest.path).select(earlier), manifest.path)
    older = Manifest.load(manifest.path)
    assert older.rows["a"]["status"] == "done" and older.rows["a"]["settings"] == ""
    assert not older.finished(scene, [tmp_path / "a.tif", tmp_path / "a.gpkg"], SETTINGS)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_manifest_that_cannot_be_saved_is_one_sentence_naming_out_dir(tmp_path, monkeypatch, suffix):
    manifest = Manifest(tmp_path / f"manifest.{suffix}")
    manifest.record(done_row(Scene("a", "/data/a.tif"), tmp_path))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest_module.os, "replace", full)
    with pytest.raises(UserInputError) as caught:
        manifest.record(scene_row(Scene("b", "/data/b.tif"), 0.5, error="no."))
    assert caught.value.fields == ("out_dir",)
    assert str(caught.value) == (f"out_dir {tmp_path}: the manifest manifest.{suffix} cannot be saved (No space "
                                 "left on device); free some space or check the folder, then run the batch again "
                                 "(finished scenes are kept).")
    monkeypatch.undo()
    assert list(Manifest.load(manifest.path).rows) == ["a"]  # the file saved before is whole
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary left
    gone = Manifest(tmp_path / "gone" / "manifest.csv")
    with pytest.raises(UserInputError, match=r"^out_dir .*gone: the manifest manifest.csv cannot be saved \(No "
                                             r"such file or directory\); free some space"):
        gone.record(scene_row(Scene("b", "/data/b.tif"), 0.5, error="no."))


def test_rows_of_scenes_no_longer_named_are_kept_after_the_inputs_scenes(tmp_path):
    manifest = Manifest(tmp_path / "manifest.csv")
    for name in ("old", "b", "a"):
        manifest.record(scene_row(Scene(name, f"/{name}.tif"), 0.1, error="no."))
    manifest.order(["a", "b", "new"])
    manifest.save()
    assert list(Manifest.load(manifest.path).rows) == ["a", "b", "old"]


def test_an_unreadable_manifest_is_one_sentence_naming_out_dir(tmp_path):
    (tmp_path / "manifest.csv").write_text("scene,status\na,done\n")
    with pytest.raises(UserInputError, match=r"out_dir holds a manifest .*manifest.csv that cannot be read \(.*no "
                                             r"column source.*\); move it away"):
        Manifest.load(tmp_path / "manifest.csv")
    (tmp_path / "manifest.parquet").write_text("not parquet")
    with pytest.raises(UserInputError, match="manifest.parquet that cannot be read"):
        Manifest.load(tmp_path / "manifest.parquet")
