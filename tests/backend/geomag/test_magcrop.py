"""MagCrop: TMRA routing into Eq. 2's branches, PSC's crops (rerun / reuse), end to end on a tiny GeoMag."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from backend.models.geomag import magcrop as magcrop_module
from backend.models.geomag.config import GRANULARITIES, Box
from backend.models.geomag.magcrop import MagCrop, heatmap_inside
from backend.models.geomag.tmra import GranularityClassifier, QueryEncoder, TaskGranularity, degrade
from tests.helpers.geomag import tiny_bert_dir, tiny_geomag

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("geomag")


@pytest.fixture(scope="module")
def encoder(folder) -> QueryEncoder:
    return QueryEncoder(str(tiny_bert_dir(folder)))


def biased(encoder: QueryEncoder, granularity: str) -> TaskGranularity:
    """A classifier that answers ``granularity`` whatever the prompt (only the output bias is set)."""
    classifier = GranularityClassifier(encoder.hidden_size)
    with torch.no_grad():
        for parameter in classifier.parameters():
            parameter.zero_()
        classifier.layers[-1].bias[GRANULARITIES.index(granularity)] = 5.0
    return TaskGranularity(encoder, classifier)


class FakeLocate:
    """Stands in for psc.locate: C1 on the first call, C2 (in C1's pixels) on the second; records the parts."""

    def __init__(self, heatmap: torch.Tensor | None = None) -> None:
        self.parts: list[np.ndarray] = []
        self.heatmap = torch.rand(8, 8) if heatmap is None else heatmap

    def __call__(self, model, image, prompt, **options):
        self.parts.append(image)
        return (Box(16, 8, 48, 40) if len(self.parts) == 1 else Box(4, 4, 12, 12)), self.heatmap


def image(height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_tmra_routes_each_granularity_to_its_branch_of_eq2(encoder, monkeypatch, granularity):
    fake = FakeLocate()
    monkeypatch.setattr(magcrop_module, "locate", fake)
    picture = image()
    result = MagCrop(biased(encoder, granularity), model=None).prepare(picture, "segment the red circle")
    assert result.granularity == granularity and max(result.probs) == result.probs[GRANULARITIES.index(granularity)]
    if granularity == "image":
        assert result.vlm_image.shape == (100, 100, 3) and result.boxes == [] and fake.parts == []
        assert result.focus_box == Box(0, 0, 64, 48)
    elif granularity == "region":
        assert result.boxes == [Box(16, 8, 48, 40)] == [result.focus_box] and len(result.heatmaps) == 1
        assert np.array_equal(result.vlm_image[8:40, 16:48], picture[8:40, 16:48])
        assert np.array_equal(result.vlm_image[:8], degrade(picture)[:8])
    else:
        assert result.boxes == [Box(16, 8, 48, 40), Box(20, 12, 28, 20)] and result.focus_box == result.boxes[1]
        assert np.array_equal(fake.parts[1], picture[8:40, 16:48]) and len(result.heatmaps) == 2
        assert np.array_equal(result.vlm_image[12:20, 20:28], picture[12:20, 20:28])
        assert np.array_equal(result.vlm_image[:8], degrade(degrade(picture))[:8])


def test_a_given_granularity_skips_the_classifier_and_none_at_all_is_refused(monkeypatch):
    monkeypatch.setattr(magcrop_module, "locate", FakeLocate())
    result = MagCrop(None, model=None).prepare(image(), "how many cars", granularity="region")
    assert result.granularity == "region" and result.probs == ()
    with pytest.raises(UserInputError, match="granularity"):
        MagCrop(None, model=None).prepare(image(), "how many cars")


def test_heatmap_inside_resamples_the_map_onto_the_box():
    heatmap = torch.arange(16.0).reshape(4, 4)
    inner = heatmap_inside(heatmap, Box(20, 0, 40, 20), (40, 40))
    expected = torch.tensor([[2.0, 2, 3, 3], [2, 2, 3, 3], [6, 6, 7, 7], [6, 6, 7, 7]])
    torch.testing.assert_close(inner, expected)


def test_reuse_searches_c2_in_the_first_heatmap_without_a_second_vlm_pass(monkeypatch):
    heat = torch.full((8, 8), 0.01)
    heat[4, 5] = 1.0  # pixels y 24-30, x 40-48 of a 48x64 image: inside C1 = Box(16, 8, 48, 40)
    fake = FakeLocate(heat)
    monkeypatch.setattr(magcrop_module, "locate", fake)
    crop = MagCrop(None, model=None, second_crop="reuse", box_options={"min_side": 1})
    result = crop.prepare(image(), "segment the car", granularity="pixel")
    assert len(fake.parts) == 1 and len(result.heatmaps) == 1
    first, second = result.boxes
    assert first == Box(16, 8, 48, 40)
    assert first.x0 <= second.x0 and second.x1 <= first.x1 and first.y0 <= second.y0 and second.y1 <= first.y1
    assert 40 <= (second.x0 + second.x1) / 2 < 48 and 24 <= (second.y0 + second.y1) / 2 < 30
    assert second.width * second.height < first.width * first.height / 4
    with pytest.raises(ValueError):
        MagCrop(None, model=None, second_crop="twice")


def test_pixel_magcrop_runs_end_to_end_on_a_tiny_geomag(folder, encoder):
    model = tiny_geomag(folder)
    picture = image(72, 96)
    crop = MagCrop(biased(encoder, "pixel"), model, answer_tokens=3, box_options={"min_side": 16})
    result = crop.prepare(picture, "segment the red circle")
    first, second = result.boxes
    assert result.granularity == "pixel" and result.vlm_image.shape == picture.shape and len(result.heatmaps) == 2
    assert 0 <= first.x0 <= second.x0 < second.x1 <= first.x1 <= 96
    assert 0 <= first.y0 <= second.y0 < second.y1 <= first.y1 <= 72
    assert np.array_equal(result.vlm_image[second.y0:second.y1, second.x0:second.x1],
                          picture[second.y0:second.y1, second.x0:second.x1])
    assert all(p.grad is None for p in model.parameters())
    assert model.vlm.get_base_model().config.text_config._attn_implementation == "sdpa"  # eager only inside PSC
    out = model.segment(result.vlm_image, "segment the red circle")
    assert out.logits.shape == (72, 96)
