"""The classify and retrieve job kinds through a real `rsov serve`: submitted as JSON, run, results as rows."""
import csv

import pytest

from backend.errors import UserInputError
from backend.jobs import ClassifyJob, RetrieveJob
from tests.helpers.checkpoints import save_open_clip_safetensors, tiny_clip
from tests.helpers.rasters import write_scene
from tests.helpers.service import RunningService

CLASSES = ["water", "forest,trees", "road"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served_images")
    write_scene(folder / "a.tif", 120, 160)
    write_scene(folder / "b.tif", 300, 200, seed=2)
    write_scene(folder / "sub" / "c.tif", 200, 260, seed=3)
    return folder


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("zeroshot_service")
    weights = home / "weights" / "openai-vit-b-16" / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True)
    save_open_clip_safetensors(tiny_clip(), weights)  # the default preset's CLIP, tiny: jobs name no weights
    server = RunningService(home)
    yield server
    assert server.stop() == 0, server.log.read_text()


def test_a_classify_job_writes_the_csv_and_returns_its_rows(service, images):
    out = images / "results" / "classes.csv"
    job_id = service.submit(kind="classify", input=str(images), classes=CLASSES, top_k=2, out=str(out))
    status = service.wait(job_id)
    assert status["state"] == "done", status
    progress = status["progress"]
    assert (progress["unit"], progress["done_mp"], progress["total_mp"]) == ("images", 3, 3)
    result = service.client.get(f"/v1/jobs/{job_id}/result").json()
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert result["rows"] == [{**row, "rank": int(row["rank"]), "probability": float(row["probability"])}
                              for row in rows]
    assert result["row_count"] == 6 and not result["rows_omitted"] and result["files"][0]["path"] == str(out)
    assert (result["unit"], result["items"], result["encoded"]) == ("images", 3, 3)
    assert [c["name"] for c in result["classes"]] == ["water", "forest", "road"]
    assert result["classes"][1]["synonyms"] == ["forest", "trees"] and sum(c["count"] for c in result["classes"]) == 3
    assert 0 < result["logit_scale"] <= 100
    limited = service.client.get(f"/v1/jobs/{job_id}/result", params={"max_rows": 2}).json()
    assert limited["rows"] == result["rows"][:2] and limited["rows_omitted"]


def test_a_retrieve_job_ranks_the_folder_from_the_cache_classify_filled(service, images):
    job_id = service.submit(kind="retrieve", folder=str(images), text="a harbour with ships", top=2)
    status = service.wait(job_id)
    assert status["state"] == "done", status
    result = service.client.get(f"/v1/jobs/{job_id}/result").json()
    assert (result["mode"], result["ranked"], result["files"]) == ("images", 3, [])
    assert [row["rank"] for row in result["rows"]] == [1, 2]
    assert result["rows"][0]["score"] >= result["rows"][1]["score"]
    assert (result["encoded"], result["cached"]) == (0, 3)  # the classify job's embeddings: same model and reading


@pytest.mark.parametrize("body,job", [
    ({"kind": "classify", "input": "{images}", "classes": "water; road", "tile": 256},
     lambda images: ClassifyJob(images, "water; road", tile=256)),
    ({"kind": "retrieve", "folder": "{images}"}, lambda images: RetrieveJob(folder=images)),
    ({"kind": "retrieve", "image": "{images}/a.tif", "texts": [], "top": 3},
     lambda images: RetrieveJob(image=images / "a.tif", texts=[], top=3)),
])
def test_a_bad_request_is_a_422_with_the_sentence_the_cli_gives(service, images, body, job):
    response = service.client.post("/v1/jobs", json={name: value.format(images=images) if isinstance(value, str)
                                                     else value for name, value in body.items()})
    assert response.status_code == 422, response.text
    with pytest.raises(UserInputError) as caught:
        job(images).validate()
    assert response.json() == {"error": caught.value.render(), "fields": list(caught.value.fields)}


def test_outputs_stay_under_the_allowed_folders(service, images, tmp_path):
    response = service.client.post("/v1/jobs", json={"kind": "classify", "input": str(images / "a.tif"),
                                                     "classes": CLASSES, "out": str(tmp_path / "classes.csv")})
    assert response.status_code == 422 and response.json()["fields"] == ["out"]
    assert "outside the folders this service may write to" in response.json()["error"]
