"""FarSLIP's losses against values worked out by hand."""
import math

import pytest
import torch

from training.farslip.losses import (global_contrastive_loss, region_category_loss, roi_pooled_features,
                                     self_distillation_loss)


def test_the_global_contrast_is_the_mean_of_the_two_directions_infonce():
    images = torch.tensor([[1.0, 0.0], [0.0, 3.0]])  # unit after normalising: e1, e2
    texts = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # e1, (e1 + e2) / sqrt 2
    r = 2 / math.sqrt(2)  # scale 2 times cos 45 degrees
    image_to_text = (math.log(1 + math.exp(r - 2)) + math.log(1 + math.exp(-r))) / 2  # rows [2, r], [0, r]
    text_to_image = (math.log(1 + math.exp(-2)) + math.log(2)) / 2  # rows [2, 0], [r, r]
    expected = (image_to_text + text_to_image) / 2
    assert global_contrastive_loss(images, texts, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_a_box_over_the_whole_image_pools_the_mean_of_all_patches():
    patches = torch.randn(2, 5, 3, 4)
    whole = torch.tensor([[[0.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 1.0]]])
    assert torch.allclose(roi_pooled_features(patches, whole), patches.mean(dim=(2, 3)), atol=1e-6)


def test_a_box_over_the_left_half_samples_bin_centres_bilinearly():
    # columns 0-1 hold a, 2-3 hold b. The box x in [0, 2) cells gives 4 bin centres at -0.25, 0.25, 0.75, 1.25
    # (aligned: -0.5): the first clamped to column 0, the last 3/4 column 1 and 1/4 column 2 -> 0.9375 a + 0.0625 b.
    a, b = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 4.0, -2.0])
    patches = torch.stack([a, a, b, b], dim=-1)[None, :, None, :].expand(1, 3, 2, 4)
    left_half = torch.tensor([[[0.0, 0.0, 0.5, 1.0]]])
    assert torch.allclose(roi_pooled_features(patches, left_half)[0], 0.9375 * a + 0.0625 * b, atol=1e-6)


def test_self_distillation_is_one_minus_cos_of_roi_pooled_student_and_mean_teacher_crop():
    student = torch.zeros(1, 2, 2, 2)
    student[0, 0] = 1.0
    student[0, 1, :, 1] = 2.0  # channel 1: 0 in column 0, 2 in column 1
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]]])
    teacher = torch.zeros(2, 2, 2, 2)
    teacher[0, 0] = 1.0  # crop 1 averages to (1, 0)
    teacher[1, 1] = 3.0  # crop 2 to (0, 3)
    # whole box: student mean (1, 1) -> cos 1/sqrt 2; left half: centres -0.25, 0.25 -> column weights 7/8, 1/8,
    # student (1, 0.25) -> cos 0.25 / sqrt(1.0625)
    expected = ((1 - 1 / math.sqrt(2)) + (1 - 0.25 / math.sqrt(1.0625))) / 2
    assert self_distillation_loss(student, boxes, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_the_region_category_contrast_counts_regions_of_one_category_as_positives():
    regions = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # two regions of category 0, one of category 1
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # each region's category prompt
    labels = torch.tensor([0, 0, 1])
    # logits [[1,1,0],[1,1,0],[0,0,1]]; targets (1/2, 1/2, 0) twice and (0, 0, 1): the same in both directions
    expected = (2 * (math.log(2 * math.e + 1) - 1) + (math.log(math.e + 2) - 1)) / 3
    assert region_category_loss(regions, texts, labels, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_with_one_region_per_category_the_region_contrast_is_clips_loss():
    torch.manual_seed(0)
    regions, texts = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.allclose(region_category_loss(regions, texts, torch.arange(5), 7.0),
                          global_contrastive_loss(regions, texts, 7.0), atol=1e-6)
