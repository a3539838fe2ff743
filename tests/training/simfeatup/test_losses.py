"""L_rec and L_img against values worked out by hand."""
import math

import pytest
import torch

from training.simfeatup.losses import (feature_reconstruction_loss, image_reconstruction_loss, project,
                                       random_projection, total_loss)

# Two 2-d feature maps of 1 x 2 positions: errors (1, 2) at the first position, (0, 3) at the second.
TARGET = torch.tensor([[[[1.0, 0.0]], [[2.0, 3.0]]]])  # (B=1, C=2, h=1, w=2)
RECONSTRUCTED = torch.tensor([[[[0.0, 0.0]], [[0.0, 0.0]]]])


def test_feature_reconstruction_without_projection_or_uncertainty_is_the_mean_squared_error():
    # squared errors 1, 0 (channel 0) and 4, 9 (channel 1): mean 14 / 4
    assert feature_reconstruction_loss(RECONSTRUCTED, TARGET).item() == pytest.approx(3.5)


def test_feature_reconstruction_compares_the_features_projected_on_the_given_directions():
    # one direction (1, 1)/sqrt(2): projected errors 3/sqrt(2) and 3/sqrt(2), squared 4.5 each
    direction = torch.tensor([[[1.0], [1.0]]]) / math.sqrt(2)  # (B=1, C=2, D=1)
    assert project(TARGET, direction).shape == (1, 1, 1, 2)
    assert feature_reconstruction_loss(RECONSTRUCTED, TARGET, direction).item() == pytest.approx(4.5)


def test_feature_reconstruction_with_predicted_uncertainty_is_error_over_two_s_squared_plus_log_s():
    scales = torch.tensor([[[[1.0, 2.0]]]])  # (B, 1, h, w): s = 1 at the first position, 2 at the second
    # four terms e / (2 s^2) + log s: errors 1 and 4 with s = 1, errors 0 and 9 with s = 2; their mean
    expected = ((1 / 2 + 4 / 2) + (0 / 8 + 9 / 8) + 2 * math.log(2.0)) / 4
    assert feature_reconstruction_loss(RECONSTRUCTED, TARGET, scales=scales).item() == pytest.approx(expected)


def test_image_reconstruction_is_the_mean_squared_error_and_the_total_adds_a_tenth_of_it():
    image = torch.zeros(1, 3, 2, 2)
    image[0, 0, 0, 0] = 2.0  # one pixel of one band off by 2: 4 / 12
    loss = image_reconstruction_loss(torch.zeros(1, 3, 2, 2), image)
    assert loss.item() == pytest.approx(1 / 3)
    assert total_loss(torch.tensor(0.5), loss).item() == pytest.approx(0.5 + 0.1 / 3)
    assert total_loss(torch.tensor(0.5), loss, image_weight=1.0).item() == pytest.approx(0.5 + 1 / 3)


def test_random_projections_are_unit_directions_per_image():
    torch.manual_seed(0)
    projection = random_projection(3, 16, 5)
    assert projection.shape == (3, 16, 5)
    assert torch.allclose(projection.norm(dim=1), torch.ones(3, 5))
    assert not torch.allclose(projection[0], projection[1])
