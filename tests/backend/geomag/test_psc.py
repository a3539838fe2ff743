"""PSC: Eq. 4 on hand-made tensors, the box search on synthetic maps, dL/dA on a tiny LLaVA, locate()."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.models.geomag.config import Box
from backend.models.geomag.psc import find_box, gradient_weighted_heatmap, last_layer_attention_gradient, locate
from tests.helpers.geomag import tiny_llava_dir

torch.set_num_threads(1)


class TinyVLM:
    """The part of GeoMag that PSC uses (vlm, processor, vlm_inputs), over the tiny LLaVA folder."""

    def __init__(self, folder) -> None:
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(folder)
        self.vlm = LlavaForConditionalGeneration.from_pretrained(folder).eval()

    def vlm_inputs(self, image: np.ndarray, prompt: str, answer: str | None = None) -> dict:
        return dict(self.processor(images=image, text=f"USER: <image>\n{prompt} ASSISTANT:", return_tensors="pt"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyVLM:
    return TinyVLM(tiny_llava_dir(tmp_path_factory.mktemp("llava")))


def test_heatmap_is_eq4_relu_gradient_times_attention_averaged_per_image_token():
    generator = torch.Generator().manual_seed(0)
    attention = torch.rand(2, 9, 9, generator=generator)
    gradient = torch.randn(2, 9, 9, generator=generator)
    image_positions = torch.tensor([2, 3, 4, 5, 6, 7])
    rows = torch.tensor([7, 8])
    expected = torch.zeros(6)
    for j, key in enumerate(image_positions):
        for head in range(2):
            for row in rows:
                expected[j] += max(gradient[head, row, key], 0) * attention[head, row, key] / 4
    heatmap = gradient_weighted_heatmap(attention, gradient, image_positions, (2, 3), rows)
    torch.testing.assert_close(heatmap, expected.reshape(2, 3))
    every_row = gradient_weighted_heatmap(attention, gradient, image_positions, (3, 2))
    torch.testing.assert_close(every_row.flatten(), (F.relu(gradient) * attention).mean((0, 1))[2:8])


def peaked(rows: slice, cols: slice, shape=(24, 24), floor: float = 0.01, seed: int = 0) -> np.ndarray:
    heat = floor * np.random.default_rng(seed).random(shape)
    heat[rows, cols] += 1.0
    return heat


def test_find_box_is_tight_around_a_block_peak():
    box = find_box(peaked(slice(5, 8), slice(15, 18)), (240, 240), min_side=1)
    assert box == Box(150, 50, 180, 80)


def test_find_box_covers_a_gaussian_peak_in_a_non_square_image():
    ys, xs = np.mgrid[0:24, 0:24]
    heat = np.exp(-((ys - 17.5) ** 2 + (xs - 6.5) ** 2) / 2.0) + 0.01
    box = find_box(heat, (480, 960), min_side=1)  # cells are 40 px wide, 20 px high
    assert box.x0 <= 6 * 40 and box.x1 >= 7 * 40 and box.y0 <= 17 * 20 and box.y1 >= 18 * 20
    assert box.width <= 8 * 40 and box.height <= 8 * 20


def test_find_box_handles_a_peak_in_the_corner():
    box = find_box(peaked(slice(21, 24), slice(0, 2)), (96, 96), min_side=1)
    assert box == Box(0, 84, 8, 96)


def test_find_box_grows_small_boxes_to_min_side_inside_the_image():
    box = find_box(peaked(slice(23, 24), slice(23, 24)), (96, 96), min_side=32)
    assert box == Box(64, 64, 96, 96)


@pytest.mark.parametrize("heat", [np.full((24, 24), 0.3), np.zeros((24, 24)), np.full((24, 24), np.nan)])
def test_find_box_gives_the_whole_image_for_a_flat_map(heat):
    assert find_box(heat, (50, 70)) == Box(0, 0, 70, 50)


def test_find_box_prefers_the_strongest_of_two_peaks():
    heat = peaked(slice(2, 5), slice(2, 5))
    heat[14:17, 18:21] += 2.0
    box = find_box(heat, (24, 24), min_side=1)
    assert box == Box(18, 14, 21, 17)


def test_the_gradient_is_taken_on_the_attention_the_forward_used(tiny, monkeypatch):
    """<dL/dA, E> equals the finite difference of L when E is added to the last layer's softmax output."""
    from transformers.models.llama import modeling_llama

    vlm = tiny.vlm.double()
    try:
        inputs = tiny.vlm_inputs(np.full((64, 64, 3), 120, np.uint8), "segment the red circle")
        inputs["pixel_values"] = inputs["pixel_values"].double()
        answer = torch.tensor([[10, 11, 12]])
        inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], 1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        start = inputs["input_ids"].shape[1] - 3
        attention, gradient = last_layer_attention_gradient(vlm, inputs, start)
        assert vlm.config.text_config._attn_implementation == "sdpa"  # switched back
        assert all(p.grad is None for p in vlm.parameters())
        direction = torch.randn(attention.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        original, last = modeling_llama.eager_attention_forward, len(vlm.model.language_model.layers) - 1

        def loss(eps: float) -> float:
            def perturbed(module, query, key, value, attention_mask, **kwargs):
                out, weights = original(module, query, key, value, attention_mask, **kwargs)
                if module.layer_idx == last:
                    weights = weights + eps * direction[None]
                    out = (weights @ modeling_llama.repeat_kv(value, module.num_key_value_groups)).transpose(1, 2)
                return out, weights

            monkeypatch.setattr(modeling_llama, "eager_attention_forward", perturbed)
            vlm.set_attn_implementation("eager")
            with torch.no_grad():
                logits = vlm(**inputs).logits
            vlm.set_attn_implementation("sdpa")
            return float(F.cross_entropy(logits[0, start - 1:-1], inputs["input_ids"][0, start:]))

        numeric = (loss(1e-3) - loss(-1e-3)) / 2e-3  # RMSNorm computes in float32: not smaller steps
        assert abs(numeric - float((gradient * direction).sum())) < 1e-4 * abs(numeric)
        assert float(gradient.abs().sum()) > 0
    finally:
        tiny.vlm.float()


def test_locate_gives_a_box_inside_the_image_and_the_patch_grid_heatmap(tiny):
    image = np.random.default_rng(0).integers(0, 256, (90, 150, 3), dtype=np.uint8)
    box, heatmap = locate(tiny, image, "segment the red circle", min_side=8)
    assert heatmap.shape == (8, 8) and (heatmap >= 0).all() and heatmap.sum() > 0
    assert 0 <= box.x0 < box.x1 <= 150 and 0 <= box.y0 < box.y1 <= 90
    assert box == find_box(heatmap, (90, 150), min_side=8)
    again, _ = locate(tiny, image, "segment the red circle", answer="Sure, it is.", min_side=8)
    assert 0 <= again.x0 < again.x1 <= 150
    assert tiny.vlm.config.text_config._attn_implementation == "sdpa"
