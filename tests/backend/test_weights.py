import dataclasses
import hashlib
import shutil
import time

import pytest
import torch

from backend import weights
from backend.cli import main
from backend.errors import UserInputError, WeightsUnavailable
from backend.models.clip_loading import load_clip
from backend.models.registry import MODEL_PRESETS
from tests.helpers.checkpoints import TINY_B32, save_skyclip_zip, tiny_clip
from tests.helpers.fake_hub import FakeHub


@pytest.fixture
def online(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("RSOV_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    # the hub client reads HF_HUB_OFFLINE once, when first imported (open_clip imports it early)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
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


def test_every_registry_entry_names_its_licence_and_where_it_comes_from():
    for spec in weights.REGISTRY.values():
        assert spec.license.strip() and spec.source != "unknown", spec.name
        assert spec.filename == weights.cached_path(spec.name).name


def _served_skyclip(online, monkeypatch, member: str):
    spec = dataclasses.replace(weights.REGISTRY["skyclip-vit-b-32"], url=f"{online.url}/raw/SkyCLIP.zip",
                               archive_member=member)
    monkeypatch.setitem(weights.REGISTRY, spec.name, spec)
    return spec


def test_skyclip_zip_is_downloaded_and_its_checkpoint_loads(online, monkeypatch, tmp_path):
    model = tiny_clip(TINY_B32, quick_gelu=False, seed=17)
    online.files["raw/SkyCLIP.zip"] = save_skyclip_zip(model, tmp_path / "SkyCLIP.zip").read_bytes()
    spec = _served_skyclip(online, monkeypatch, "SkyCLIP_ViT_B32_top50pct/epoch_20.pt")
    path = weights.download(spec.name)
    assert path == weights.cached_path(spec.name) and path.name == "epoch_20.pt"
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch_20.pt", "epoch_20.pt.sha256"]
    assert weights.verify(spec.name)[0]
    loaded, arch = load_clip(path, quick_gelu=MODEL_PRESETS["skyclip-vit-b-32"].quick_gelu)
    image = torch.randn(1, 3, 224, 224)
    assert arch == TINY_B32 and torch.equal(loaded.encode_image(image), model.encode_image(image))


def test_a_skyclip_zip_in_other_folders_or_without_the_checkpoint(online, monkeypatch, tmp_path):
    model = tiny_clip(TINY_B32, quick_gelu=False, seed=18)
    online.files["raw/SkyCLIP.zip"] = save_skyclip_zip(model, tmp_path / "a.zip", "run/ckpt/epoch_20.pt").read_bytes()
    spec = _served_skyclip(online, monkeypatch, "SkyCLIP_ViT_B32_top50pct/epoch_20.pt")
    assert weights.download(spec.name).is_file()  # the one epoch_20.pt, wherever it sits
    shutil.rmtree(weights.cached_path(spec.name).parent)
    online.files["raw/SkyCLIP.zip"] = save_skyclip_zip(model, tmp_path / "b.zip", "run/epoch_10.pt").read_bytes()
    with pytest.raises(WeightsUnavailable, match=r"the zip holds no SkyCLIP_ViT_B32_top50pct/epoch_20.pt "
                                                 r"\(it has run/epoch_10.pt\)") as caught:
        weights.download(spec.name)
    assert "unzip it and put SkyCLIP_ViT_B32_top50pct/epoch_20.pt at" in str(caught.value)
    assert not list(weights.cached_path(spec.name).parent.iterdir())  # no partial file or archive left


def test_a_model_folder_comes_with_the_shards_its_index_names(online):
    repo = "llava-hf/llava-1.5-7b-hf"
    files = {"config.json": b'{"model_type": "llava"}', "preprocessor_config.json": b"{}",
             "tokenizer_config.json": b"{}", "tokenizer.json": b"{}", "special_tokens_map.json": b"{}",
             "model.safetensors.index.json": b'{"weight_map": {"a": "model-00001-of-00002.safetensors", '
                                             b'"b": "model-00002-of-00002.safetensors"}}',
             "model-00001-of-00002.safetensors": b"shard one", "model-00002-of-00002.safetensors": b"shard two",
             "chat_template.json": b"{}"}  # an optional file the repository has; the other optional ones it lacks
    for name, body in files.items():
        online.files[f"{repo}/{name}"] = body
    folder = weights.download("llava-1.5-7b")
    assert folder == weights.cached_path("llava-1.5-7b") and folder.is_dir()
    assert {path.name for path in folder.iterdir()} == set(files)
    assert (folder / "model-00002-of-00002.safetensors").read_bytes() == b"shard two"
    assert not list(folder.parent.glob(".*partial*"))
    assert weights.pretrained_source("llava-1.5-7b") == str(folder)
    assert weights.pretrained_source(repo) == str(folder)  # a checkpoint naming the hub repository: the cache
    assert weights.verify("llava-1.5-7b")[0]
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"changed")
    ok, message = weights.verify("llava-1.5-7b")
    assert not ok and "model-00001-of-00002.safetensors has changed" in message


def test_a_model_folder_missing_a_shard_is_not_cached(online):
    repo = "google-bert/bert-base-uncased"
    for name in ("config.json", "tokenizer_config.json", "vocab.txt"):  # model.safetensors is missing
        online.files[f"{repo}/{name}"] = b"{}"
    with pytest.raises(WeightsUnavailable, match="bert-base-uncased.*could not be downloaded"):
        weights.download("bert-base-uncased")
    target = weights.cached_path("bert-base-uncased")
    assert not target.exists() and not list(target.parent.glob(".*partial*"))
    with pytest.raises(WeightsUnavailable, match="downloads are turned off"):
        weights.pretrained_source("bert-base-uncased", download_missing=False, field="bert")
    assert weights.pretrained_source("someone/another-llava") == "someone/another-llava"  # from_pretrained's own
