import dataclasses
import hashlib
import time

import pytest

from backend import weights
from backend.cli import main
from backend.errors import UserInputError, WeightsUnavailable
from tests.helpers.fake_hub import FakeHub


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("RSOV_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with FakeHub() as hub:
        monkeypatch.setenv("RSOV_HF_ENDPOINT", hub.url)
        yield hub


def test_hub_download_lands_in_the_cache_once(online):
    payload = b"tiny farslip weights" * 100
    online.files["ZhenShiL/FarSLIP/FarSLIP2_ViT-B-16.pt"] = payload
    path = weights.download("farslip2-vit-b-16")
    assert path == weights.cached_path("farslip2-vit-b-16") and path.read_bytes() == payload
    assert not list(path.parent.glob(".*partial*")) and not list(path.parent.glob(".hub-*"))
    requests = len(online.requests)
    assert weights.resolve_weights("farslip2-vit-b-16") == path
    assert len(online.requests) == requests  # cached: no network
    ok, message = weights.verify("farslip2-vit-b-16")
    assert ok and hashlib.sha256(payload).hexdigest() in message
    path.write_bytes(b"tampered")
    ok, message = weights.verify("farslip2-vit-b-16")
    assert not ok and "does not match" in message


def test_url_download_is_checked_against_the_registry_sha256(online, monkeypatch):
    good = b"torchscript archive bytes"
    spec = dataclasses.replace(weights.REGISTRY["openai-vit-b-16-torchscript"], url=f"{online.url}/raw/ViT-B-16.pt",
                               sha256=hashlib.sha256(good).hexdigest())
    monkeypatch.setitem(weights.REGISTRY, spec.name, spec)
    online.files["raw/ViT-B-16.pt"] = b"a corrupted download"
    with pytest.raises(WeightsUnavailable, match="it was discarded"):
        weights.download(spec.name)
    assert not weights.cached_path(spec.name).exists()
    online.files["raw/ViT-B-16.pt"] = good
    assert weights.download(spec.name).read_bytes() == good
    assert weights.verify(spec.name)[0]


def test_offline_fails_at_once_naming_the_file_and_where_to_put_it():
    started = time.monotonic()
    with pytest.raises(WeightsUnavailable) as caught:
        weights.resolve_weights("openai-vit-b-16")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "open_clip_model.safetensors" in message and str(weights.cached_path("openai-vit-b-16")) in message
    assert "\n" not in message


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RSOV_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("RSOV_HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(WeightsUnavailable, match="could not be downloaded"):
        weights.download("alignearth-sar-vit-b-16")
    assert not weights.cached_path("alignearth-sar-vit-b-16").exists()


def test_unknown_names_and_missing_files_are_explained():
    with pytest.raises(UserInputError, match="unknown weights 'vit-z'"):
        weights.download("vit-z")
    with pytest.raises(UserInputError, match="neither a file nor a registry name"):
        weights.resolve_weights("/no/such/file.pt")


def test_weights_commands(online, capsys):
    online.files["likyoo/AlignEarth-SAR-ViT-B-16/AlignEarth-SAR-ViT-B-16.pt"] = b"sar"
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    for name in weights.REGISTRY:
        assert name in listing
    assert main(["weights", "download", "alignearth-sar-vit-b-16"]) == 0
    assert main(["weights", "verify"]) == 0
    assert "alignearth-sar-vit-b-16: ok" in capsys.readouterr().out
    assert main(["weights", "path", "farslip1-vit-b-32"]) == 0
    assert capsys.readouterr().out.strip() == str(weights.cached_path("farslip1-vit-b-32"))
