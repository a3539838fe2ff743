"""Eq. 1 on hand-made tensors: the w/beta mixing, the shared per-scale decoder, LISA's mask losses."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from backend.models.geomag.model import mask_losses, mask_score
from backend.models.geomag.pixel_decoder import PixelDecoder, TextProjection
from backend.models.geomag.sam_encoder import ImageFeatures

DIM = 16


def features(batch: int = 2, sizes=(8, 4, 2), seed: int = 0) -> ImageFeatures:
    generator = torch.Generator().manual_seed(seed)
    levels = [torch.randn(batch, DIM, s, s, generator=generator) for s in sizes]
    positions = [torch.randn(1, DIM, s, s, generator=generator).expand(batch, -1, -1, -1) for s in sizes]
    return ImageFeatures(levels, positions)


def decoder(tokens: int = 1, seed: int = 0) -> PixelDecoder:
    torch.manual_seed(seed)
    return PixelDecoder(DIM, heads=4, levels=3, tokens=tokens).eval()


def test_mask_is_the_w_weighted_sum_over_scales_of_one_decoder_applied_to_the_beta_mixed_tokens():
    model = decoder(tokens=2)
    w, beta = torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.7, 0.3])
    with torch.no_grad():
        model.level_logits.copy_(w.log())
        model.token_logits.copy_(beta.log())
    tokens = torch.randn(3, 2, DIM)
    feats = features()
    image_index = torch.tensor([1, 0, 1])
    with torch.no_grad():
        mask = model(tokens, feats, image_index, (16, 16))
        prompt = beta[0] * tokens[:, 0] + beta[1] * tokens[:, 1]
        expected = sum(
            w[l] * F.interpolate(model.decode_level(prompt, feats.levels[l][image_index],
                                                    feats.positions[l][image_index])[:, None],
                                 size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
            for l in range(3))
    torch.testing.assert_close(model.level_weights, w)
    torch.testing.assert_close(model.token_weights, beta)
    torch.testing.assert_close(mask, expected)
    assert mask.shape == (3, 16, 16)


def test_a_scale_with_all_the_weight_decides_the_mask_alone():
    model = decoder()
    feats = features()
    tokens = torch.randn(1, 1, DIM)
    with torch.no_grad():
        model.level_logits.copy_(torch.tensor([-1e4, 1e4, -1e4]))
        mask = model(tokens, feats, torch.tensor([0]), (4, 4))
        alone = model.decode_level(tokens[:, 0], feats.levels[1][:1], feats.positions[1][:1])
    torch.testing.assert_close(mask, alone, atol=1e-5, rtol=1e-5)


def test_with_its_residual_branches_zeroed_the_decoder_logit_is_the_scaled_dot_product():
    model = decoder()
    with torch.no_grad():
        model.attention.out_proj.weight.zero_()
        model.attention.out_proj.bias.zero_()
        model.mlp[2].weight.zero_()
        model.mlp[2].bias.zero_()
        model.pixel_head[2].weight.zero_()
        model.pixel_head[2].bias.zero_()
        prompt = torch.randn(2, DIM)
        feats = torch.randn(2, DIM, 3, 5)
        logits = model.decode_level(prompt, feats, torch.randn(2, DIM, 3, 5))
    for m in range(2):
        for y in range(3):
            for x in range(5):
                expected = float(prompt[m] @ feats[m, :, y, x]) / math.sqrt(DIM)
                assert math.isclose(float(logits[m, y, x]), expected, rel_tol=1e-5, abs_tol=1e-5)


def test_each_mask_reads_the_features_of_its_own_image():
    model = decoder()
    feats = features(batch=2)
    tokens = torch.randn(1, 1, DIM)
    with torch.no_grad():
        on_second = model(tokens, feats, torch.tensor([1]), (8, 8))
        second_only = ImageFeatures([f[1:] for f in feats.levels], [p[1:] for p in feats.positions])
        alone = model(tokens, second_only, torch.tensor([0]), (8, 8))
        on_first = model(tokens, feats, torch.tensor([0]), (8, 8))
    torch.testing.assert_close(on_second, alone)
    assert not torch.allclose(on_second, on_first)


def test_text_projection_is_a_two_layer_mlp_to_the_decoder_dimension():
    projection = TextProjection(64, DIM)
    linear = [m for m in projection.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linear] == [(64, 64), (64, DIM)]
    hidden = torch.randn(5, 64, dtype=torch.float64)
    expected = linear[1](torch.relu(linear[0](hidden.float())))
    torch.testing.assert_close(projection(hidden), expected)


def test_mask_losses_are_lisas_bce_and_dice():
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 3.0]]])
    target = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    bce, dice = mask_losses(logits, target)
    p = torch.sigmoid(logits).flatten()
    t = target.flatten()
    expected_bce = float(-(t * p.log() + (1 - t) * (1 - p).log()).mean())
    expected_dice = 1 - (2 * float((p * t).sum()) + 1) / (float(p.sum()) + float(t.sum()) + 1)
    assert math.isclose(float(bce), expected_bce, rel_tol=1e-5)
    assert math.isclose(float(dice), expected_dice, rel_tol=1e-5)
    perfect_bce, perfect_dice = mask_losses(target * 40 - 20, target)
    assert float(perfect_bce) < 1e-6 and float(perfect_dice) < 1e-6


@pytest.mark.parametrize("logits, score", [(torch.full((3, 3), -2.0), 0.0),
                                           (torch.tensor([[0.0, 2.0], [-1.0, 3.0]]),
                                            (torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(torch.tensor(3.0))) / 2)])
def test_score_is_the_mean_probability_inside_the_mask(logits, score):
    assert math.isclose(mask_score(logits), float(score), rel_tol=1e-6)
