"""One-file GeoMag checkpoints: exact round trip, TMRA state, refusals naming the file."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from backend.errors import CheckpointFormatError, UserInputError
from backend.models.geomag.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from tests.helpers.geomag import tiny_geomag_checkpoint

TMRA = {"layers.0.weight": torch.arange(6.0).view(2, 3), "layers.0.bias": torch.tensor([0.5, -0.5])}


@pytest.fixture(scope="module")
def checkpoint(geomag_folder, geomag_model, tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "geomag.safetensors", geomag_model, tmra_state=TMRA)


def test_a_loaded_checkpoint_segments_exactly_like_the_saved_model(checkpoint, geomag_model):
    image = np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    loaded, tmra, config = load_checkpoint(checkpoint)
    assert config == geomag_model.config
    assert tmra.keys() == TMRA.keys() and all(torch.equal(tmra[k], TMRA[k]) for k in TMRA)
    expected = geomag_model.segment(image, "the red circle")
    again = loaded.segment(image, "the red circle")
    assert torch.equal(again.logits, expected.logits) and again.score == expected.score
    assert torch.equal(loaded.seg_rows.output, geomag_model.seg_rows.output)


def test_the_file_holds_only_the_trained_parts_and_the_config(checkpoint, geomag_model):
    config, tensors = read_checkpoint(checkpoint)
    prefixes = {key.split(".")[0] for key in tensors}
    assert prefixes == {"lora", "seg_token", "text_projection", "pixel_decoder", "tmra"}
    assert not any("base_layer" in key or "embed_tokens" in key for key in tensors)
    assert sum(v.numel() for k, v in tensors.items() if k.split(".")[0] != "tmra") == \
        sum(p.numel() for _, p in geomag_model.trainable_parameters())
    assert [p.name for p in checkpoint.parent.iterdir()] == [checkpoint.name]  # no partial file left behind


def test_a_checkpoint_without_tmra_loads_with_none(geomag_folder):
    path = tiny_geomag_checkpoint(geomag_folder)
    assert not any(key.startswith("tmra.") for key in read_checkpoint(path)[1])
    assert load_checkpoint(path)[1] is None


def test_base_overrides_change_the_config_first(checkpoint):
    with pytest.raises(UserInputError, match="bitsandbytes"):
        load_checkpoint(checkpoint, base_overrides={"load_in": "4bit"})
    with pytest.raises(UserInputError, match="unknown key 'sam2'"):
        load_checkpoint(checkpoint, base_overrides={"sam2": "x"})


def test_a_truncated_file_is_refused_naming_it(checkpoint, tmp_path):
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointFormatError, match="damaged.safetensors"):
        load_checkpoint(damaged)


def test_foreign_files_are_refused_naming_them(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, other, metadata={"format": "pt"})
    pickle = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2)}, pickle)
    for path in (other, pickle):
        with pytest.raises(CheckpointFormatError, match=path.name):
            read_checkpoint(path)
    with pytest.raises(UserInputError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.safetensors")


def test_a_checkpoint_lacking_tensors_is_refused_naming_it(checkpoint, tmp_path):
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(checkpoint)
    del tensors["pixel_decoder.level_logits"]
    partial = tmp_path / "partial.safetensors"
    save_file(tensors, partial, metadata=metadata)
    with pytest.raises(CheckpointFormatError, match="partial.safetensors.*pixel_decoder.level_logits"):
        load_checkpoint(partial)


def test_a_newer_version_is_refused(checkpoint, tmp_path):
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as handle:
        metadata = handle.metadata() | {"version": "2"}
    newer = tmp_path / "newer.safetensors"
    save_file(load_file(checkpoint), newer, metadata=metadata)
    with pytest.raises(CheckpointFormatError, match="version '2'"):
        read_checkpoint(newer)
