"""`rsov segment --ray`: a raster's column strips on a real local Ray cluster, identical to one process."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from backend.engine import run
from backend.jobs import SegmentJob

pytest.importorskip("ray")
RSOV = str(Path(sys.executable).with_name("rsov"))
CLASSES = "water; building,roof; road; trees"


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    """A textured 3-band raster wide enough for several strips."""
    path = tmp_path_factory.mktemp("mosaic") / "mosaic.tif"
    rows, cols = np.mgrid[0:330, 0:1000]
    bands = [(128 + 100 * np.sin(cols / 23.0 + rows / 41.0)), (128 + 90 * np.cos(rows / 13.0)),
             ((rows * 2 + cols) % 256)]
    noise = np.random.default_rng(3).integers(0, 40, (3, 330, 1000))
    with rasterio.open(path, "w", driver="GTiff", height=330, width=1000, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write((np.stack(bands) + noise).clip(0, 255).astype(np.uint8))
    return path


def outputs(folder: Path, name: str) -> dict:
    return {"out_raster": folder / f"{name}.tif", "out_probs": folder / f"{name}-probs.tif",
            "out": folder / f"{name}.gpkg"}


def options(mosaic, tiny_files) -> dict:
    return {"raster": mosaic, "classes": CLASSES, "clip_weights": str(tiny_files["open_clip"]),
            "upsampler_weights": str(tiny_files["simfeatup"]), "strip_width": 300, "device": "cpu",
            "batch_size": 2}


@pytest.fixture(scope="module")
def one_process(mosaic, tiny_files, tmp_path_factory):
    """The single-process run, one thread like each Ray worker."""
    folder = tmp_path_factory.mktemp("one")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run(SegmentJob(**options(mosaic, tiny_files), **outputs(folder, "one")))
    finally:
        torch.set_num_threads(threads)
    return result, outputs(folder, "one")


def assert_same_outputs(expected: dict, got: dict) -> None:
    for role in ("out_raster", "out_probs"):
        assert got[role].read_bytes() == expected[role].read_bytes(), role  # the COGs, byte for byte
    mine, theirs = pyogrio.read_dataframe(got["out"]), pyogrio.read_dataframe(expected["out"])
    assert len(mine) == len(theirs) > 10
    assert mine.drop(columns="geometry").equals(theirs.drop(columns="geometry"))
    assert all(a.equals_exact(b, 0) for a, b in zip(mine.geometry, theirs.geometry))  # feature for feature


def test_two_workers_write_what_one_process_writes(ray_cluster, mosaic, tiny_files, one_process, tmp_path):
    expected_result, expected = one_process
    stages = []
    job = SegmentJob(**options(mosaic, tiny_files), **outputs(tmp_path, "ray"), ray="auto", ray_workers=2)
    result = run(job, lambda stage, done, total: stages.append((stage, done, total)))
    assert_same_outputs(expected, outputs(tmp_path, "ray"))
    assert result.pixel_counts == expected_result.pixel_counts and result.windows == expected_result.windows
    assert result.class_areas_m2 == expected_result.class_areas_m2  # summed in the same order
    assert any("2 Ray workers on CPU" in note and "4 column strips of 300 pixels" in note for note in result.notes)
    segmenting = [done for stage, done, _ in stages if stage == "segmenting"]
    assert segmenting == sorted(segmenting) and segmenting[-1] == pytest.approx(0.33)  # one bar over all workers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray-probs.tif", "ray.gpkg", "ray.tif"]  # no scratch left


def strip_workers():
    import psutil

    for process in psutil.process_iter(["pid", "cmdline"]):
        if any("StripWorker.run_strip" in part for part in process.info["cmdline"] or []):
            yield process


def test_a_worker_killed_mid_strip_is_replaced_and_the_output_is_complete(ray_cluster, mosaic, tiny_files,
                                                                          one_process, tmp_path):
    """The installed command joins the running cluster; one of its workers is killed while it holds a strip."""
    _, expected = one_process
    target = outputs(tmp_path, "ray")
    args = [RSOV, "segment", mosaic, "--classes", CLASSES, "--clip-weights", tiny_files["open_clip"],
            "--upsampler-weights", tiny_files["simfeatup"], "--strip-width", "300", "--device", "cpu",
            "--batch-size", "2", "--ray", "auto", "--ray-workers", "2",
            "--out-raster", target["out_raster"], "--out-probs", target["out_probs"], "--out", target["out"]]
    process = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []
    deadline = time.monotonic() + 120
    while not killed and process.poll() is None and time.monotonic() < deadline:
        for worker in strip_workers():
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            break
        time.sleep(0.01)
    out, err = process.communicate(timeout=300)
    assert killed, "no worker was seen running a strip"
    assert process.returncode == 0, err
    assert "wrote" in out
    assert_same_outputs(expected, target)


def test_cancel_stops_the_workers_and_writes_nothing(ray_cluster, mosaic, tiny_files, tmp_path):
    from backend.errors import Cancelled

    stop = threading.Event()

    def progress(stage, done, total):
        if stage == "segmenting" and done > 0:
            stop.set()

    job = SegmentJob(**options(mosaic, tiny_files), **outputs(tmp_path, "ray"), ray="auto", ray_workers=2)
    with pytest.raises(Cancelled):
        run(job, progress, stop.is_set)
    assert list(tmp_path.iterdir()) == []
    deadline = time.monotonic() + 30
    while list(strip_workers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(strip_workers())


def test_too_many_workers_is_one_sentence(ray_cluster, mosaic, tiny_files, tmp_path):
    from backend.errors import UserInputError

    job = SegmentJob(**options(mosaic, tiny_files), **outputs(tmp_path, "ray"), ray="auto", ray_workers=3)
    with pytest.raises(UserInputError, match="ray_workers 3 is more than the cluster's 2 CPUs; give at most 2"):
        run(job)


def test_resampled_runs_with_relative_paths_match_one_process(ray_cluster, mosaic, tiny_files, tmp_path,
                                                              monkeypatch):
    """Read at 1 m (the polygons then come from the driver's resampled rasters), outputs named relative to the
    working folder, which Ray's workers do not share, and no probability raster."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(mosaic, tmp_path / "mosaic.tif")
    common = {**options(Path("mosaic.tif"), tiny_files), "gsd": 1.0, "strip_width": 224}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(SegmentJob(**common, out_raster=Path("one.tif"), out=Path("one.gpkg")))
    finally:
        torch.set_num_threads(threads)
    result = run(SegmentJob(**common, out_raster=Path("out/ray.tif"), out=Path("out/ray.gpkg"), ray="auto"))
    assert any("column strips of 224 pixels" in note for note in result.notes)
    assert (tmp_path / "out" / "ray.tif").read_bytes() == (tmp_path / "one.tif").read_bytes()
    mine, theirs = pyogrio.read_dataframe(tmp_path / "out" / "ray.gpkg"), pyogrio.read_dataframe(tmp_path / "one.gpkg")
    assert len(mine) == len(theirs) > 0 and all(a.equals_exact(b, 0) for a, b in zip(mine.geometry, theirs.geometry))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ray.gpkg", "ray.tif"]


def test_the_default_strip_width_is_narrowed_so_every_worker_gets_strips():
    from backend.cluster.strips import MIN_STRIP_WIDTH, cluster_strips
    from backend.raster.tiling import DEFAULT_STRIP_WIDTH

    wide = cluster_strips(20000, 224, 112, DEFAULT_STRIP_WIDTH, 4)
    assert len(wide) == 8 and {s.core1 - s.core0 for s in wide[:-1]} == {2500}
    assert len(cluster_strips(3000, 224, 112, DEFAULT_STRIP_WIDTH, 8)) == 3  # never under MIN_STRIP_WIDTH
    assert all(s.core1 - s.core0 >= MIN_STRIP_WIDTH for s in cluster_strips(3000, 224, 112, DEFAULT_STRIP_WIDTH, 8)[:-1])
    assert len(cluster_strips(20000, 224, 112, 5000, 4)) == 4  # a width the user gave is kept


def test_sigterm_stops_a_ray_run_cleanly_and_writes_nothing(ray_cluster, mosaic, tiny_files, tmp_path):
    """A service manager's stop (SIGTERM) ends `rsov segment --ray` as it ends a run on one machine, not with
    Ray's crash report."""
    target = outputs(tmp_path, "ray")
    args = [RSOV, "segment", mosaic, "--classes", CLASSES, "--clip-weights", tiny_files["open_clip"],
            "--upsampler-weights", tiny_files["simfeatup"], "--strip-width", "300", "--device", "cpu",
            "--batch-size", "1", "--ray", "auto", "--out-raster", target["out_raster"], "--out", target["out"]]
    process = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(strip_workers()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before a worker was seen running a strip"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.rstrip().endswith("rsov: terminated; nothing was written."), err
    assert "SIGTERM received" not in err
    assert list(tmp_path.iterdir()) == []
