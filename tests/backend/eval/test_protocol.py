"""The image-level protocol against the authors' pipeline written out step by step."""
import numpy as np
import torch
import torch.nn.functional as F

from backend.eval import protocol as protocol_module
from backend.eval.datasets.base import Protocol
from backend.eval.protocol import predict_image, resized_size
from backend.inference.slide import normalise_pixels
from backend.models.protocol import Prompts
from backend.models.segearth import classify
from backend.prompts import ClassList
from tests.backend.test_segearth import QUERIES, authors_slide
from tests.helpers.checkpoints import tiny_clip, tiny_simfeatup
from tests.helpers.models import prompts, segmentor


def test_keep_ratio_sizes_are_mmcvs():
    assert resized_size(512, 512, 448) == (448, 448)
    assert resized_size(1080, 1280, 448) == (378, 448)  # UAVid's patches
    assert resized_size(100, 300, 448) == (149, 448)  # small images are enlarged
    assert resized_size(6000, 6000, 224) == (224, 224)


def authors_pipeline(model, rgb, thresholds):
    """mmcv Resize (bilinear, back to uint8) -> normalise -> forward_slide -> resize to ori_shape -> postprocess."""
    h, w = rgb.shape[:2]
    size = resized_size(h, w, 448)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1).float()[None]
    pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False).round().clamp(0, 255)[0]
    logits = authors_slide(model.net, normalise_pixels(pixels), QUERIES)
    logits = F.interpolate(logits[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return classify(logits, [0, 0, 1, 2, 3], 50.0, *thresholds)[0].numpy()


def rgb_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_predict_image_is_the_authors_pipeline():
    model = segmentor(tiny_clip(), tiny_simfeatup(), prob_threshold=0.3, background_index=3)
    rgb = rgb_image(150, 200)
    synonyms = Prompts(ClassList((("a", "a2"), ("b",), ("c",), ("d",))), QUERIES)  # class a has two queries
    got = predict_image(model, synonyms, rgb, Protocol(448, 224, 112))
    assert got.shape == (150, 200) and got.dtype == np.uint8
    expected = authors_pipeline(model, rgb, (0.3, 3))
    assert (got == expected).mean() > 0.999  # ties aside, the same classes


def test_row_blocks_for_whole_tiles_give_the_same_classes(monkeypatch):
    model = segmentor(tiny_clip())
    rgb = rgb_image(300, 170, seed=3)
    exact = predict_image(model, prompts(QUERIES), rgb, Protocol(224, None))
    monkeypatch.setattr(protocol_module, "EXACT_ELEMENTS", 1)
    monkeypatch.setattr(protocol_module, "ROW_BLOCK", 37)
    blocks = predict_image(model, prompts(QUERIES), rgb, Protocol(224, None))
    assert (blocks == exact).mean() > 0.999


def test_whole_image_protocol_runs_the_resized_image_in_one_pass():
    model = segmentor(tiny_clip())
    rgb = rgb_image(96, 64, seed=5)
    got = predict_image(model, prompts(QUERIES), rgb, Protocol(224, None))
    pixels = F.interpolate(torch.from_numpy(rgb).permute(2, 0, 1).float()[None], size=(224, 149), mode="bilinear",
                           align_corners=False).round()[0]
    logits = authors_slide(model.net, normalise_pixels(pixels), QUERIES, window=224, stride=224)
    logits = F.interpolate(logits[None], size=(96, 64), mode="bilinear", align_corners=False)[0]
    expected = classify(logits, list(range(5)), 50.0, 0.0, 0)[0].numpy()
    assert (got == expected).mean() > 0.999
