import argparse

import pytest
import torch
import torch.nn.functional as F

from backend.errors import CheckpointFormatError
from backend.models.simfeatup import adaptive_conv, load_simfeatup
from tests.helpers.checkpoints import tiny_simfeatup


def unfold_adaptive_conv(padded, kernel):
    """FeatUp's reference: unfold the window and contract it with the per-pixel filter."""
    batch, taps, height, width = kernel.shape
    diameter = round(taps ** 0.5)
    patches = F.unfold(padded, diameter).view(batch, padded.shape[1], taps, height, width)
    return torch.einsum("bthw,bcthw->bchw", kernel, patches)


def reference_jbu(up, source, guidance):
    """The JBU written the way FeatUp writes it (unfold + einsum), for comparison."""
    _, _, gh, gw = guidance.shape
    r, d = up.radius, up.diameter
    keys = up.range_proj(guidance)
    queries = F.unfold(F.pad(keys, [r] * 4, mode="reflect"), d).view(1, keys.shape[1], d * d, gh, gw)
    range_kernel = torch.softmax(up.range_temp.exp().clamp(1e-4, 1e4)
                                 * torch.einsum("bcphw,bchw->bphw", queries, keys), dim=1)
    axis = torch.linspace(-1, 1, d)
    x, y = torch.meshgrid(axis, axis, indexing="ij")
    spatial = torch.exp(-(x.square() + y.square()) / (2 * up.sigma_spatial ** 2)).reshape(1, d * d, 1, 1)
    kernel = range_kernel * spatial
    kernel = kernel / kernel.sum(1, keepdim=True).clamp(1e-7)
    kernel = kernel + 0.1 * up.fixup_proj(torch.cat([kernel, guidance], dim=1))
    hr = F.interpolate(source, (gh, gw), mode="bicubic", align_corners=False)
    return unfold_adaptive_conv(F.pad(hr, [r] * 4, mode="reflect"), kernel)


def test_chunked_adaptive_conv_is_identical_to_unchunked():
    generator = torch.Generator().manual_seed(0)
    padded = torch.randn(2, 37, 30, 26, generator=generator)
    kernel = torch.randn(2, 121, 20, 16, generator=generator)
    whole = adaptive_conv(padded, kernel, channel_chunk=None)
    for chunk in (1, 5, 16, 64):
        assert torch.equal(adaptive_conv(padded, kernel, channel_chunk=chunk), whole)
    torch.testing.assert_close(whole, unfold_adaptive_conv(padded, kernel), rtol=1e-5, atol=1e-4)


def test_jbu_step_matches_featups_formulation():
    model = tiny_simfeatup(feat_dim=24)
    source = torch.randn(1, 24, 7, 9)
    guidance = torch.randn(1, 3, 14, 18)
    with torch.no_grad():
        torch.testing.assert_close(model.up(source, guidance), reference_jbu(model.up, source, guidance),
                                   rtol=1e-4, atol=1e-5)


def test_upsampler_is_x16_and_deterministic_in_eval_mode():
    model = tiny_simfeatup(feat_dim=16)
    features, image = torch.randn(1, 16, 14, 14), torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        first = model(features, image)
        second = model(features, image)
    assert first.shape == (1, 16, 224, 224)
    assert torch.equal(first, second)  # dropout off: the authors' demo forgets .eval()


def test_lightning_checkpoint_loads_with_its_config_objects(tmp_path, tiny_files):
    loaded = load_simfeatup(tiny_files["simfeatup"])
    original = tiny_simfeatup()
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not loaded.training


def test_wrong_checkpoint_kind_is_named(tiny_files, tmp_path):
    with pytest.raises(CheckpointFormatError, match="not a SimFeatUp JBU_One checkpoint"):
        load_simfeatup(tiny_files["open_clip"])
    torch.save({"state_dict": {"upsampler.up.range_temp": torch.tensor(0.0),
                               "upsampler.fixup_proj.1.weight": torch.zeros(8, 8, 1, 1)},
                "hyper_parameters": argparse.Namespace()}, tmp_path / "partial.ckpt")
    with pytest.raises(CheckpointFormatError, match="does not fit SimFeatUp"):
        load_simfeatup(tmp_path / "partial.ckpt")
