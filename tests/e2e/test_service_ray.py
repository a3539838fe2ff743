"""`rsov serve` running a segment job on Ray: a private cluster started for it, stopped with the service."""
import psutil
import pytest
import rasterio

from tests.helpers.rasters import write_scene
from tests.helpers.service import RunningService

pytest.importorskip("ray")
CLASSES = "water; building,roof; road; trees"


def test_the_service_starts_a_ray_cluster_for_a_job_and_stops_it_with_itself(tmp_path, tiny_files):
    from ray._private.services import find_gcs_addresses

    if find_gcs_addresses():
        pytest.skip("a Ray cluster already runs on this machine: `auto` would join it")
    raster = write_scene(tmp_path / "scene.tif", 300, 500)
    service = RunningService(tmp_path / "home", "--output-root", str(tmp_path))
    try:
        job = service.submit(raster=str(raster), classes=CLASSES, clip_weights=str(tiny_files["open_clip"]),
                             upsampler_weights=str(tiny_files["simfeatup"]), strip_width=300, device="cpu",
                             out_raster=str(tmp_path / "ray.tif"), ray="auto")
        status = service.wait(job)
        assert status["state"] == "done", status
        notes = service.client.get(f"/v1/jobs/{job}/result").json()["notes"]
        assert any("Ray worker on CPU" in note and "column strips" in note for note in notes), notes
        cluster = psutil.Process(service.process.pid).children(recursive=True)  # GCS, raylet, agents, workers
        assert cluster, "the service started no Ray processes"
    finally:
        code = service.stop()  # SIGTERM, as the plugin and service managers stop it
    log = service.log.read_text()
    assert code == 0, log
    assert "SIGTERM received" not in log  # Ray's crash report
    assert "Token authentication is enabled" not in log  # Ray's invitation to turn it off
    assert "SIGTERM handler is not set" not in log  # Ray's note on the job thread: the service handles SIGTERM
    _, alive = psutil.wait_procs(cluster, timeout=30)
    assert [p.name() for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], log
    with rasterio.open(tmp_path / "ray.tif") as written:
        assert (written.width, written.height) == (500, 300)
