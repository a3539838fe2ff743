import math

import pytest
import torch

from training.alignearth.losses import (LearnableTemperature, alignearth_losses, cls_distillation_loss,
                                        contrastive_loss, local_distillation_loss, region_means)

# Optical CLS tokens e1, e2; SAR CLS tokens e1 and (e1 + e2)/|.|: cosines 1 and 1/sqrt(2) on the diagonal.
OPTICAL = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
SAR = torch.tensor([[2.0, 0.0], [3.0, 3.0]])  # lengths do not matter: cosines only
R = 1 / math.sqrt(2)


def test_cls_distillation_is_one_minus_cosine_averaged_over_the_batch():
    assert cls_distillation_loss(OPTICAL, SAR).item() == pytest.approx(((1 - 1) + (1 - R)) / 2, abs=1e-6)


def test_contrastive_loss_sums_both_directions_and_divides_by_n():
    # cos(optical_i, sar_j) = [[1, R], [0, R]]; with scale s each term is a log-softmax entry.
    for scale in (1.0, 1 / 0.07):
        optical_to_sar = (math.log(math.exp(scale) / (math.exp(scale) + math.exp(scale * R)))
                          + math.log(math.exp(scale * R) / (math.exp(0) + math.exp(scale * R))))
        sar_to_optical = (math.log(math.exp(scale) / (math.exp(scale) + math.exp(0)))
                          + math.log(math.exp(scale * R) / (math.exp(scale * R) + math.exp(scale * R))))
        expected = -(optical_to_sar + sar_to_optical) / 2
        assert contrastive_loss(OPTICAL, SAR, scale).item() == pytest.approx(expected, rel=1e-5)


def test_temperature_starts_at_0_07_as_log_inverse_and_is_clamped_at_100():
    temperature = LearnableTemperature(0.07)
    assert temperature.log_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert temperature.scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert temperature.temperature == pytest.approx(0.07, rel=1e-6)
    with torch.no_grad():
        temperature.log_scale.fill_(7.0)
    assert temperature.scale().item() == pytest.approx(100.0)
    temperature.clamp_()
    assert temperature.log_scale.item() == pytest.approx(math.log(100.0))


def _maps():
    """14x14 maps of 2-d features, K = 7 gives 2x2 regions.

    Optical: every patch e1. SAR: each region holds two e1 and two e2 patches (mean (0.5, 0.5),
    cosine 1/sqrt(2) to e1), except region (0, 0), all e1 (cosine 1).
    """
    optical = torch.zeros(1, 2, 14, 14)
    optical[:, 0] = 1.0
    sar = torch.zeros(1, 2, 14, 14)
    sar[:, 0, 0::2, :] = 1.0  # even rows e1
    sar[:, 1, 1::2, :] = 1.0  # odd rows e2
    sar[:, :, 0:2, 0:2] = torch.tensor([1.0, 0.0]).view(2, 1, 1)
    return optical, sar


def test_region_means_pool_k_by_k_blocks():
    _, sar = _maps()
    means = region_means(sar, 7)
    assert means.shape == (1, 2, 7, 7)
    assert torch.equal(means[0, :, 0, 0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(means[0, :, 3, 5], torch.tensor([0.5, 0.5]))


def test_local_distillation_averages_over_regions_after_pooling():
    optical, sar = _maps()
    expected = (48 * (1 - R) + 0.0) / 49  # pooled first: not the token-wise mean (1 - cos) of 0.5
    assert local_distillation_loss(optical, sar, 7).item() == pytest.approx(expected, abs=1e-6)
    # averaged over the batch too: a second, identical pair adds 0
    batch = local_distillation_loss(torch.cat([optical, optical]), torch.cat([sar, optical]), 7)
    assert batch.item() == pytest.approx(expected / 2, abs=1e-6)


def test_a_grid_not_divisible_into_k_regions_is_refused():
    optical, sar = _maps()
    with pytest.raises(ValueError, match="14x14 patch grid cannot be split into 5x5 equal regions"):
        local_distillation_loss(optical, sar, 5)


def test_total_is_the_weighted_sum_of_the_three_terms():
    optical, sar = _maps()
    pair_o, pair_s = (OPTICAL, torch.cat([optical, optical])), (SAR, torch.cat([sar, sar]))
    terms = alignearth_losses(pair_o, pair_s, 1 / 0.07, regions=7, weights=(0.5, 2.0, 3.0))
    assert set(terms) == {"cls_contrast", "cls_distill", "local_distill", "total"}
    expected = 0.5 * terms["cls_contrast"] + 2.0 * terms["cls_distill"] + 3.0 * terms["local_distill"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
