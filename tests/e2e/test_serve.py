"""`rsov serve` as the plugin meets it: the installed command on a free loopback port, real HTTP."""
import json
import os
from datetime import datetime
import stat
import subprocess

import httpx
import numpy as np
import pytest
import rasterio

from backend.engine import run
from backend.errors import UserInputError
from backend.jobs import SegmentJob
from tests.helpers.fake_hub import FakeHub
from tests.helpers.rasters import write_scene
from tests.helpers.service import RSOV, RunningService

CLASSES = "background; building,roof,house; road"


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_files):
    folder = tmp_path_factory.mktemp("data")
    return {"folder": folder, "scene": write_scene(folder / "scene.tif", 230, 260),
            "tall": write_scene(folder / "tall.tif", 3000, 300, seed=1),  # many window rows: slow enough to stop
            "clip": str(tiny_files["open_clip"]), "upsampler": str(tiny_files["simfeatup"])}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    server = RunningService(tmp_path_factory.mktemp("service_home"), "--max-upload-mb", "1")
    yield server
    assert server.stop() == 0, server.log.read_text()


def job(data, out_folder, **changes):
    """A request body with the tiny weights."""
    return {"raster": str(data["scene"]), "classes": CLASSES, "clip_weights": data["clip"],
            "upsampler_weights": data["upsampler"], "out_raster": str(out_folder / "classes.tif"), **changes}


def scratch_folders(folder):
    return [p for p in folder.rglob(".rsov-*")]


def test_every_request_needs_the_token(service):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {service.token}"}):
        for method, path in (("GET", "/v1/health"), ("GET", "/v1/openapi.json"), ("POST", "/v1/jobs")):
            response = httpx.request(method, service.url + path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert "bearer token" in response.json()["error"]
    token_file = service.home / "server" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600  # generated at first start, readable by the user only


def test_health_and_models_describe_the_service(service):
    health = service.client.get("/v1/health").json()
    assert health["version"] and health["device"] == "cpu"
    assert health["devices"][0]["name"] == "cpu" and health["devices"][0]["total_bytes"] > 0
    models = {model["name"]: model for model in service.client.get("/v1/models").json()}
    assert models["segearth-ov"]["modality"] == "optical" and models["segearth-ov-sar"]["modality"] == "sar"
    assert [w["name"] for w in models["segearth-ov"]["weights"]] == ["openai-vit-b-16", "simfeatup-jbu-one-million-aid"]
    assert not models["segearth-ov"]["ready"]
    cached = service.home / "weights" / "farslip2-vit-b-32" / "FarSLIP2_ViT-B-32.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\0" * 1000)
    farslip = {model["name"]: model for model in service.client.get("/v1/models").json()}["farslip2-vit-b-32"]
    assert farslip["ready"] and farslip["weights"][0] == {"name": "farslip2-vit-b-32", "present": True,
                                                           "bytes": 1000, "path": str(cached)}


def test_dataset_presets_carry_their_class_prompts(service):
    """Every preset the jobs accept is listed, with its classes so the background index points at one."""
    from backend.models.registry import DATASET_PRESETS

    presets = {preset["name"]: preset for preset in service.client.get("/v1/dataset-presets").json()}
    assert list(presets) == list(DATASET_PRESETS)
    assert presets["openearthmap"]["classes"][-1] == "building,roof,house"
    assert presets["openearthmap"]["prob_threshold"] == 0.1 and presets["whu-sar"]["modality"] == "sar"
    potsdam = presets["potsdam"]
    assert "background" in potsdam["classes"][potsdam["background_index"]]
    assert all(preset["background_index"] < len(preset["classes"]) for preset in presets.values())


def test_a_job_runs_from_submission_to_polygons(service, data, tmp_path_factory):
    out = data["folder"] / "full"
    body = job(data, out, out=str(out / "polygons.gpkg"), out_probs=str(out / "probs.tif"), prob_threshold=0.3)
    job_id = service.submit(**body)
    status = service.wait(job_id)
    assert status["state"] == "done", status
    assert status["progress"]["done_mp"] == status["progress"]["total_mp"] == pytest.approx(230 * 260 / 1e6)
    assert status["progress"]["mp_per_s"] > 0 and status["request"]["classes"] == CLASSES
    result = service.client.get(f"/v1/jobs/{job_id}/result").json()
    assert {f["role"]: f["path"] for f in result["files"]} == {
        "out_raster": str(out / "classes.tif"), "out_probs": str(out / "probs.tif"), "out": str(out / "polygons.gpkg")}
    assert [c["name"] for c in result["classes"]] == ["background", "building", "road"]
    assert result["classes"][1]["synonyms"] == ["building", "roof", "house"]
    assert sum(c["pixels"] for c in result["classes"]) == 230 * 260
    assert result["notes"] == ["optical (auto: 3 uint8 bands): bands 1,2,3 (uint8) as they are"]
    assert sum(c["area_m2"] for c in result["classes"]) == pytest.approx(230 * 260 * 0.25)
    features = result["polygons"]["features"]
    assert len(features) == result["polygon_count"] > 0 and not result["polygons_omitted"]
    lon, lat = features[0]["geometry"]["coordinates"][0][0]
    assert 14 < lon < 16 and 41 < lat < 43  # UTM 33N at 500 km E, 4650 km N, in longitude/latitude
    assert service.client.get(f"/v1/jobs/{job_id}/result", params={"max_polygons": 0}).json()["polygons_omitted"]
    # what the service wrote is what the engine writes for the same job in this process
    local = tmp_path_factory.mktemp("local")
    run(SegmentJob(**{**body, "out_raster": local / "classes.tif", "out": None, "out_probs": None}))
    with rasterio.open(out / "classes.tif") as served, rasterio.open(local / "classes.tif") as expected:
        assert served.crs == expected.crs and served.transform == expected.transform
        assert np.array_equal(served.read(), expected.read())
    loaded = service.client.get("/v1/health").json()["loaded_models"]
    assert loaded == [{"clip_weights": data["clip"], "upsampler_weights": data["upsampler"],
                       "activation": "quickgelu", "device": "cpu"}]


def test_events_follow_a_job_until_it_finishes(service, data):
    job_id = service.submit(**job(data, data["folder"] / "events"))  # with the upsampler: seconds, not a blink
    events = []
    with service.client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert events[-1]["state"] == "done" and len(events) >= 2
    done = [event["progress"]["done_mp"] for event in events]
    assert done == sorted(done)
    assert {event["state"] for event in events} <= {"queued", "running", "done"}


def test_jobs_run_one_after_another_in_the_order_they_came(service, data):
    out = data["folder"] / "order"
    first = service.submit(**job(data, out, out_raster=str(out / "a.tif")))
    second = service.submit(**job(data, out, out_raster=str(out / "b.tif"), no_upsampler=True,
                                  upsampler_weights=None))
    a, b = service.wait(first), service.wait(second)
    assert a["state"] == b["state"] == "done"
    assert datetime.fromisoformat(b["started"]) >= datetime.fromisoformat(a["finished"])
    recent = [status["id"] for status in service.client.get("/v1/jobs", params={"limit": 2}).json()]
    assert recent == [second, first]


def test_a_cancelled_job_stops_and_writes_nothing(service, data):
    out = data["folder"] / "cancel"
    body = job(data, out, raster=str(data["tall"]), out=str(out / "polygons.gpkg"), batch_size=1)
    running = service.submit(**body)
    waiting = service.submit(**{**body, "out_raster": str(out / "later.tif"), "out": None})
    service.wait(running, until=lambda s: s["state"] == "running" and s["progress"]["done_mp"] > 0)
    assert service.client.delete(f"/v1/jobs/{waiting}").json()["state"] == "cancelled"  # queued: at once
    response = service.client.delete(f"/v1/jobs/{running}")
    assert response.status_code == 202 and response.json()["cancel_requested"]
    status = service.wait(running, timeout=30)
    assert status["state"] == "cancelled" and "nothing was written" in status["error"]
    assert status["progress"]["done_mp"] < status["progress"]["total_mp"]
    assert not out.exists() or not any(out.iterdir())  # no output, no scratch folder
    again = service.client.delete(f"/v1/jobs/{running}")
    assert again.status_code == 409 and "cancelled" in again.json()["error"]
    assert service.client.get(f"/v1/jobs/{running}/result").status_code == 409
    assert service.client.get("/v1/jobs/nope").status_code == 404


BAD_REQUESTS = {
    "classes holds no names": {"classes": " ; "},
    "classes with an empty synonym": {"classes": "water; building,,roof"},
    "one name in two classes": {"classes": "water; Water"},
    "too many classes": {"classes": [f"class {i}" for i in range(256)]},
    "unknown model": {"model": "segearth-ov-9"},
    "unknown dataset preset": {"dataset_preset": "mars"},
    "unknown attention": {"attention": "global"},
    "unknown activation": {"activation": "relu"},
    "stride beyond the window": {"window": 112, "stride": 224},
    "probability threshold above 1": {"prob_threshold": 1.5},
    "no batch": {"batch_size": 0},
    "strip narrower than a pixel": {"strip_width": 0},
    "negative simplify": {"simplify": -1.0},
    "band the raster lacks": {"bands": [4, 3, 2]},
    "stretch without a maximum": {"stretch": [0.0]},
    "aoi that is no area": {"aoi": "1,2,3"},
    "aoi outside the raster": {"aoi": "0,0,10,10", "aoi_crs": "EPSG:32633"},
    "unknown aoi CRS": {"aoi": "500010,4649900,500050,4649950", "aoi_crs": "EPSG:999999"},
    "unknown polygon CRS": {"out": "{out}/p.gpkg", "out_crs": "not a crs"},
    "no output": {"out_raster": None},
    "polygons with a raster suffix": {"out": "{out}/polygons.tif"},
    "one file for two outputs": {"out_probs": "{out}/classes.tif"},
    "output onto the input": {"out_raster": "{scene}"},
    "output that exists": {"out_raster": "{scene_folder}/exists.tif"},
    "weights that are not weights": {"clip_weights": "{scene}"},
    "fp16 on the CPU": {"precision": "fp16", "device": "cpu"},
    "device that is no device": {"device": "gpu"},
    "negative ground sampling distance": {"gsd": -1.0},
    "background index beyond the classes": {"background_index": 5},
    "upsampler given and refused": {"no_upsampler": True},
    "a NUL in a path": {"raster": "/data/scene\x00.tif"},
    "a file name too long": {"out_raster": "{out}/" + "x" * 300 + ".tif"},
    "the home of no such user": {"preview": "~no-such-user-here/preview.png"},
    "missing raster": {"raster": "{scene_folder}/missing.tif"},
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_each_refusal_is_a_422_with_the_job_sentence(case, service, data):
    out = data["folder"] / "refused"
    (data["folder"] / "exists.tif").touch()
    names = {"out": str(out), "scene": str(data["scene"]), "scene_folder": str(data["folder"])}

    def fill(value):
        return value.format(**names) if isinstance(value, str) else value

    body = job(data, out, **{key: fill(value) for key, value in BAD_REQUESTS[case].items()})
    with pytest.raises(UserInputError) as expected:  # the same job, validated in this process
        SegmentJob(**{key: value for key, value in body.items()}).validate()
    response = service.client.post("/v1/jobs", json={"kind": "segment", **body})
    assert response.status_code == 422, response.text
    assert response.json() == {"error": str(expected.value), "fields": list(expected.value.fields)}
    assert not out.exists()


def test_the_cli_and_the_service_refuse_with_one_sentence(service, data):
    out = data["folder"] / "refused"
    body = job(data, out, stride=300)
    cli = subprocess.run([RSOV, "segment", body["raster"], "--classes", CLASSES, "--out-raster", body["out_raster"],
                          "--stride", "300"], capture_output=True, text=True, timeout=120)
    served = service.client.post("/v1/jobs", json={"kind": "segment", **body}).json()
    assert cli.returncode == 2
    assert cli.stderr.strip() == "rsov: error: " + served["error"].replace("stride", "--stride").replace(
        "window", "--window")


def test_paths_outside_the_allowed_folders_are_refused(service, data, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data["folder"] / "link").symlink_to(elsewhere)
    cases = {
        "out": (str(elsewhere / "p.gpkg"), "is outside the folders this service may write to"),
        "out_raster": (str(data["folder"] / "link" / "c.tif"), "is outside the folders"),  # a link that leads out
        "preview": ("preview.png", "is not an absolute path"),
        "out_probs": (str(service.home / "server" / "jobs.tif"), "is inside the service's own folder"),
    }
    for field, (value, words) in cases.items():
        response = service.client.post("/v1/jobs", json={"kind": "segment", **job(data, data["folder"] / "ok"),
                                                         field: value})
        assert response.status_code == 422 and words in response.json()["error"], response.text
        assert response.json()["fields"] == [field]
    assert not any(elsewhere.iterdir())
    inside_home = service.home / "results" / "c.tif"  # RSOV_HOME is allowed by default
    assert service.client.post("/v1/jobs", json={"kind": "segment", **job(data, data["folder"],
                               out_raster=str(inside_home), no_upsampler=True, upsampler_weights=None)}
                               ).status_code == 202


def test_outputs_are_checked_again_when_the_job_starts(service, data, tmp_path):
    out = data["folder"] / "swapped"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = service.submit(**job(data, data["folder"] / "first", raster=str(data["tall"]), batch_size=1))
    waiting = service.submit(**job(data, out, no_upsampler=True, upsampler_weights=None))
    service.wait(first, until=lambda s: s["state"] == "running")
    out.rmdir()
    out.symlink_to(elsewhere)  # between submission and start, the folder becomes a link that leads out
    service.client.delete(f"/v1/jobs/{first}")
    status = service.wait(waiting)
    assert status["state"] == "failed" and "is outside the folders this service may write to" in status["error"]
    assert status["error_fields"] == ["out_raster"] and not any(elsewhere.iterdir())


def test_uploaded_rasters_can_be_segmented(service, data, tmp_path):
    small = write_scene(tmp_path / "client" / "mine.tif", 100, 120)
    response = service.client.post("/v1/uploads", params={"filename": "mine.tif"}, content=small.read_bytes())
    assert response.status_code == 201, response.text
    uploaded = response.json()["path"]
    assert uploaded.startswith(str(service.home / "uploads")) and response.json()["bytes"] == small.stat().st_size
    out = os.path.join(os.path.dirname(uploaded), "classes.tif")
    job_id = service.submit(**job(data, tmp_path, raster=uploaded, out_raster=out, no_upsampler=True,
                                  upsampler_weights=None))
    assert service.wait(job_id)["state"] == "done"
    too_big = service.client.post("/v1/uploads", params={"filename": "big.tif"}, content=b"\0" * (2 * 2**20))
    assert too_big.status_code == 413 and "larger than the service takes" in too_big.json()["error"]
    not_raster = service.client.post("/v1/uploads", params={"filename": "notes.tif"}, content=b"just text")
    assert not_raster.status_code == 422 and "not a GeoTIFF" in not_raster.json()["error"]
    assert sorted(p.name for p in (service.home / "uploads").rglob("*") if p.is_file()) == ["classes.tif", "mine.tif"]
    assert service.client.delete(f"/v1/uploads/{response.json()['id']}").status_code == 204
    assert not os.path.exists(uploaded) and not any((service.home / "uploads").iterdir())
    assert service.client.delete(f"/v1/uploads/{response.json()['id']}").status_code == 404


def test_a_second_service_on_the_same_home_is_refused(service):
    second = subprocess.run([RSOV, "serve", "--port", "0"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RSOV_HOME": str(service.home)})
    assert second.returncode == 2
    assert f"another rsov serve is running with RSOV_HOME {service.home} (at {service.url})" in second.stderr


def test_a_killed_service_restarts_with_the_job_interrupted_and_no_file_half_written(data, tmp_path):
    home, out = tmp_path / "home", tmp_path / "results"
    out.mkdir()
    destination = out / "classes.tif"
    destination.write_bytes(b"the analyst's earlier result")
    service = RunningService(home, "--output-root", str(out))
    try:
        outside = service.client.post("/v1/jobs", json={"kind": "segment", **job(data, data["folder"] / "x")})
        assert outside.status_code == 422  # --output-root replaces the default roots
        job_id = service.submit(**job(data, out, raster=str(data["tall"]), out=str(out / "polygons.gpkg"),
                                      batch_size=1, overwrite=True))
        service.wait(job_id, until=lambda s: s["progress"]["done_mp"] > 0)
        assert scratch_folders(out)  # the run is staging its files
    finally:
        service.kill()
    restarted = RunningService(home, "--output-root", str(out))
    try:
        status = restarted.status(job_id)
        assert status["state"] == "interrupted" and "submit it again" in status["error"]
        assert destination.read_bytes() == b"the analyst's earlier result"
        assert sorted(p.name for p in out.iterdir()) == ["classes.tif"]  # no polygons, no scratch folder
        again = restarted.submit(**job(data, out, overwrite=True, no_upsampler=True, upsampler_weights=None))
        assert restarted.wait(again)["state"] == "done"
        with rasterio.open(destination) as written:
            assert written.shape == (230, 260)
    finally:
        assert restarted.stop() == 0


def test_missing_weights_are_downloaded_through_the_service(tmp_path):
    payload = b"farslip weights " * 1000
    with FakeHub() as hub:
        hub.files["ZhenShiL/FarSLIP/FarSLIP2_ViT-B-32.pt"] = payload
        service = RunningService(tmp_path / "home", env={"RSOV_OFFLINE": "0", "HF_HUB_OFFLINE": "0",
                                                         "RSOV_HF_ENDPOINT": hub.url})
        try:
            def farslip():
                return {m["name"]: m for m in service.client.get("/v1/models").json()}["farslip2-vit-b-32"]

            assert not farslip()["ready"]
            response = service.client.post("/v1/jobs", json={"kind": "download_weights", "name": "farslip2-vit-b-32"})
            assert response.status_code == 202, response.text
            status = service.wait(response.json()["id"])
            assert status["state"] == "done", status
            result = service.client.get(f"/v1/jobs/{status['id']}/result").json()
            assert result["kind"] == "download_weights" and result["bytes"] == len(payload)
            assert result["path"] == farslip()["weights"][0]["path"] and farslip()["ready"]
            unknown = service.client.post("/v1/jobs", json={"kind": "download_weights", "name": "clip-of-mars"})
            assert unknown.status_code == 422 and "unknown weights 'clip-of-mars'" in unknown.json()["error"]
            assert unknown.json()["fields"] == ["name"]
        finally:
            assert service.stop() == 0
