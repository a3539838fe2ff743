"""TMRA: the BERT query encoder, the 768-256-128-3 classifier, Eq. 3 (degrade) and Eq. 2 (adjust_image)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from backend.models.geomag.config import GRANULARITIES, Box
from backend.models.geomag.tmra import (GranularityClassifier, QueryEncoder, TaskGranularity, adjust_image, degrade,
                                        stitch)
from tests.helpers.geomag import tiny_bert_dir


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> QueryEncoder:
    return QueryEncoder(str(tiny_bert_dir(tmp_path_factory.mktemp("bert"))))


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def routing_classifier(embeddings: torch.Tensor) -> GranularityClassifier:
    """A classifier whose weights send embeddings[k] to GRANULARITIES[k] (first layer = their pseudo-inverse)."""
    classifier = GranularityClassifier(embeddings.shape[1])
    first, _, second, _, last = classifier.layers
    with torch.no_grad():
        for layer in (first, second, last):
            layer.weight.zero_()
            layer.bias.zero_()
        first.weight[:3] = torch.linalg.pinv(embeddings.double()).T.float()
        second.weight[:3, :3] = torch.eye(3) * 10
        last.weight[:, :3] = torch.eye(3)
    return classifier


def test_query_encoder_gives_the_cls_state_frozen_and_independent_of_padding(encoder):
    alone = encoder.encode(["the red circle"])
    padded = encoder.encode(["the red circle", "segment the small blue square on the left of the road"])
    assert alone.shape == (1, 32) and padded.shape == (2, 32)
    torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=1e-5)
    assert not any(p.requires_grad for p in encoder.model.parameters()) and not encoder.model.training


def test_classifier_is_768_256_128_3_and_reloads_from_its_state_dict():
    classifier = GranularityClassifier()
    shapes = [tuple(p.shape) for p in classifier.parameters()]
    assert shapes == [(256, 768), (256,), (128, 256), (128,), (3, 128), (3,)]
    copy = GranularityClassifier.from_state_dict(classifier.state_dict())
    query = torch.randn(2, 768)
    torch.testing.assert_close(copy(query), classifier(query))


def test_hand_set_classifier_routes_each_prompt_to_its_granularity(encoder):
    prompts = ["describe this image", "how many cars are there", "segment the red circle"]
    tmra = TaskGranularity(encoder, routing_classifier(encoder.encode(prompts)))
    for prompt, expected in zip(prompts, GRANULARITIES):
        granularity, probs = tmra.predict(prompt)
        assert granularity == expected
        assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-6 and probs[GRANULARITIES.index(expected)] > 0.9


def test_an_empty_prompt_is_refused(encoder):
    tmra = TaskGranularity(encoder, GranularityClassifier(encoder.hidden_size))
    with pytest.raises(UserInputError, match="prompt is empty"):
        tmra.predict("  ")


def test_degrade_averages_a_one_pixel_checkerboard_to_flat_grey():
    checker = ((np.indices((32, 48)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2)
    out = degrade(checker)
    assert out.shape == checker.shape and out.dtype == np.uint8
    assert len(np.unique(out)) == 1 and abs(int(out[0, 0, 0]) - 127.5) <= 0.5


def test_degrade_keeps_flat_images_and_smooth_ramps_but_drops_fine_detail():
    flat = np.full((20, 30, 3), 77, np.uint8)
    assert np.array_equal(degrade(flat), flat)
    ramp = np.linspace(0, 255, 64).astype(np.uint8)[None, :, None].repeat(40, 0).repeat(3, 2)
    assert np.abs(degrade(ramp).astype(int) - ramp)[:, 4:-4].max() <= 3
    image = noise(64, 64)
    assert np.abs(degrade(image).astype(int) - 127).mean() < np.abs(image.astype(int) - 127).mean() / 2


def test_stitch_puts_the_patch_back_at_its_place_and_leaves_the_base_alone():
    base, patch = noise(10, 12, 1), noise(3, 5, 2)
    before = base.copy()
    out = stitch(base, patch, Box(4, 6, 9, 9))
    assert np.array_equal(out[6:9, 4:9], patch)
    mask = np.ones((10, 12), bool)
    mask[6:9, 4:9] = False
    assert np.array_equal(out[mask], base[mask]) and np.array_equal(base, before)
    with pytest.raises(ValueError):
        stitch(base, patch, Box(0, 0, 4, 3))


def test_image_granularity_is_the_image_at_100_by_100_without_crops():
    calls = []
    out, boxes = adjust_image(np.full((300, 200, 3), 9, np.uint8), "image", calls.append)
    assert out.shape == (100, 100, 3) and (out == 9).all() and boxes == [] and calls == []


def test_region_granularity_keeps_c1_exact_over_the_degraded_image():
    image = noise(48, 64)
    box = Box(10, 5, 40, 30)
    out, boxes = adjust_image(image, "region", lambda part: box)
    assert boxes == [box] and out.shape == image.shape
    inside = np.zeros((48, 64), bool)
    inside[5:30, 10:40] = True
    assert np.array_equal(out[inside], image[inside])
    assert np.array_equal(out[~inside], degrade(image)[~inside])


def test_pixel_granularity_is_c2_over_degraded_c1_over_twice_degraded_image():
    image = noise(60, 80)
    first, local = Box(20, 10, 68, 50), Box(8, 12, 24, 28)
    seen = []

    def locate(part: np.ndarray) -> Box:
        seen.append(part.copy())
        return first if len(seen) == 1 else local

    out, boxes = adjust_image(image, "pixel", locate)
    second = Box(28, 22, 44, 38)
    assert boxes == [first, second]
    assert np.array_equal(seen[0], image) and np.array_equal(seen[1], image[10:50, 20:68])
    in_c1, in_c2 = np.zeros((60, 80), bool), np.zeros((60, 80), bool)
    in_c1[10:50, 20:68] = True
    in_c2[22:38, 28:44] = True
    assert np.array_equal(out[in_c2], image[in_c2])
    ring = np.zeros((60, 80, 3), np.uint8)
    ring[10:50, 20:68] = degrade(image[10:50, 20:68])
    assert np.array_equal(out[in_c1 & ~in_c2], ring[in_c1 & ~in_c2])
    assert np.array_equal(out[~in_c1], degrade(degrade(image))[~in_c1])


def test_bad_images_and_unknown_granularities_are_refused():
    with pytest.raises(UserInputError, match="uint8"):
        adjust_image(np.zeros((8, 8, 3), np.float32), "image", lambda part: Box(0, 0, 1, 1))
    with pytest.raises(UserInputError, match="granularity"):
        adjust_image(noise(8, 8), "scene", lambda part: Box(0, 0, 1, 1))
