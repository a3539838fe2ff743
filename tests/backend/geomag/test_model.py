"""GeoMag end to end on tiny random base models: tokenisation, masks from [SEG], training, generation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from backend.models.geomag.model import IGNORE, GeoMag, mask_score
from backend.models.geomag.vlm import square_box
from tests.helpers.geomag import tiny_geomag_config

PROMPT = "Please segment the red circle on the left."


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def circle(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on grey and its mask."""
    y, x = np.mgrid[:height, :width]
    mask = (y - height / 2) ** 2 + (x - width / 3) ** 2 < (height / 4) ** 2
    image = np.full((height, width, 3), 128, np.uint8)
    image[mask] = (220, 20, 20)
    return image, mask


def test_segment_gives_deterministic_logits_at_the_image_size_and_its_score(geomag_model):
    assert not geomag_model.training  # from_config gives an eval-mode model
    image = noise(48, 80)
    first = geomag_model.segment(image, PROMPT)
    again = geomag_model.segment(image, PROMPT)
    assert first.logits.shape == (48, 80) and first.logits.dtype == torch.float32
    assert torch.isfinite(first.logits).all()
    assert torch.equal(first.logits, again.logits)
    assert first.score == mask_score(first.logits) and 0 <= first.score <= 1
    other = geomag_model.segment(image, "Please segment the blue square at the top.")
    assert not torch.equal(first.logits, other.logits)


def test_segment_gives_the_mask_at_the_size_of_the_image_sam2_sees(geomag_model):
    output = geomag_model.segment(noise(32, 32), PROMPT, sam_image=noise(40, 24, seed=1))
    assert output.logits.shape == (40, 24)


def test_the_seg_hidden_state_and_only_it_reaches_the_decoder(geomag_model):
    model = geomag_model
    example = model.prepare(noise(40, 40), PROMPT, model.config.answer_template)
    ids = example.input_ids[None]
    with torch.no_grad():
        output = model._run_vlm(ids, torch.ones_like(ids), example.pixel_values[None], logits=False)
        features = model.sam_encoder(example.sam_image[None])
        hidden = output.hidden_states[-1]
        base = model.mask_logits(hidden, ids, features)
        seg_position = int(torch.nonzero(ids[0] == model.seg_token_id)[0, 0])
        other = hidden.clone()
        other[0, seg_position - 1] += 5.0
        moved = hidden.clone()
        moved[0, seg_position] += torch.randn(hidden.shape[-1], generator=torch.Generator().manual_seed(0))
        assert torch.equal(model.mask_logits(other, ids, features), base)
        assert not torch.allclose(model.mask_logits(moved, ids, features), base)
    assert base.shape == (1, model.config.sam2_image_size, model.config.sam2_image_size)


def test_prepare_labels_only_the_answer_and_eos(geomag_model):
    model = geomag_model
    image, mask = circle(40, 60)
    example = model.prepare(image, PROMPT, "Sure, it is [SEG].", masks=mask[None])
    answer = example.input_ids[example.labels != IGNORE]
    assert model.tokenizer.decode(answer).strip() == "Sure, it is [SEG].</s>"
    image_id = model.vlm.config.image_token_id
    assert int((example.input_ids == image_id).sum()) == 64
    assert (example.labels[example.input_ids == image_id] == IGNORE).all()
    size = model.config.sam2_image_size
    assert example.masks.shape == (1, size, size) and set(example.masks.unique().tolist()) == {0.0, 1.0}
    assert abs(float(example.masks.mean()) - mask.mean()) < 0.01
    assert example.sam_image.shape == (3, size, size) and example.image_size == (40, 60)


def test_prepare_refuses_masks_that_do_not_match_the_seg_tokens(geomag_model):
    image, mask = circle(40, 60)
    with pytest.raises(UserInputError, match="2 masks"):
        geomag_model.prepare(image, PROMPT, "Sure, it is [SEG].", masks=np.stack([mask, mask]))
    with pytest.raises(UserInputError, match="remove it"):
        geomag_model.prepare(image, "segment [SEG]", "Sure, it is [SEG].", masks=mask[None])
    with pytest.raises(UserInputError, match="uint8"):
        geomag_model.prepare(image.astype(np.float32), PROMPT)


def test_the_vlm_sees_the_image_centred_on_a_square_of_the_mean_colour(geomag_model):
    image = noise(30, 50)
    square = geomag_model.vlm_image(image)
    side, box = square_box(30, 50)
    assert square.shape == (50, 50, 3) and side == 50 and (box.y0, box.y1, box.x0, box.x1) == (10, 40, 0, 50)
    np.testing.assert_array_equal(square[box.y0:box.y1, box.x0:box.x1], image)
    mean = [round(255 * v) for v in geomag_model.processor.image_processor.image_mean]
    assert (square[:10] == mean).all() and (square[40:] == mean).all()
    inputs = geomag_model.vlm_inputs(image, PROMPT, answer="Sure, it is [SEG].")
    assert inputs["pixel_values"].shape == (1, 3, 64, 64)
    assert inputs["labels"].shape == inputs["input_ids"].shape == inputs["attention_mask"].shape


def test_collate_right_pads_and_concatenates_the_masks(geomag_model):
    model = geomag_model
    image, mask = circle(40, 40)
    short = model.prepare(image, "the disc", "Sure, it is [SEG].", masks=mask[None])
    long = model.prepare(image, PROMPT + " It is red.", "<p>disc</p> [SEG] and <p>disc</p> [SEG].",
                         masks=np.stack([mask, mask]))
    text_only = model.prepare(image, "What is this?", "A disc.")
    batch = model.collate([short, long, text_only])
    n = len(short.input_ids)
    assert batch.input_ids.shape == (3, len(long.input_ids))
    assert (batch.input_ids[0, n:] == model.tokenizer.pad_token_id).all()
    assert (batch.labels[0, n:] == IGNORE).all() and batch.attention_mask[0].sum() == n
    assert batch.masks.shape[0] == 3
    losses = model(batch)
    assert set(losses) == {"loss", "ce", "bce", "dice"} and all(torch.isfinite(v) for v in losses.values())
    config = model.config
    expected = config.ce_weight * losses["ce"] + config.bce_weight * losses["bce"] + config.dice_weight * losses["dice"]
    torch.testing.assert_close(losses["loss"].detach(), expected)


@pytest.fixture
def fresh_model(geomag_folder) -> GeoMag:
    torch.manual_seed(0)
    return GeoMag.from_config(tiny_geomag_config(geomag_folder))


def test_an_optimizer_step_changes_only_lora_the_seg_rows_and_the_heads(fresh_model):
    model = fresh_model
    image, mask = circle(40, 40)
    batch = model.collate([model.prepare(image, PROMPT, "Sure, it is [SEG].", masks=mask[None])])
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    trainable = {name: p.detach().clone() for name, p in model.trainable_parameters()}
    assert any(name.startswith("sam_encoder.") for name in frozen) and any("vision_tower" in n for n in frozen)
    allowed = ("lora_A", "lora_B", "seg_rows.", "text_projection.", "pixel_decoder.")
    assert trainable and all(any(word in name for word in allowed) for name in trainable)
    assert not any("vision_tower" in name or "multi_modal_projector" in name for name in trainable)
    optimizer = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=1e-2, weight_decay=0.1)
    model(batch)["loss"].backward()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    assert with_grad <= set(trainable)
    assert {"seg_rows.input", "seg_rows.output", "pixel_decoder.level_logits"} <= with_grad
    optimizer.step()
    for name, before in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], before), name
    changed = {name for name, p in model.trainable_parameters() if not torch.equal(p, trainable[name])}
    assert any("lora_B" in name for name in changed) and "seg_rows.input" in changed


def test_a_few_training_steps_on_one_example_lower_the_loss(fresh_model):
    model = fresh_model
    model.train()
    image, mask = circle(48, 48)
    batch = model.collate([model.prepare(image, PROMPT, "Sure, it is [SEG].", masks=mask[None])])
    optimizer = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=3e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        output = model(batch)
        output["loss"].backward()
        optimizer.step()
        losses.append({key: float(value.detach()) for key, value in output.items()})
    first, last = losses[0], losses[-1]
    assert last["loss"] < 0.85 * first["loss"] and last["ce"] < first["ce"]
    assert last["bce"] < 0.5 * first["bce"] and last["dice"] < 0.5 * first["dice"]


def test_generate_reads_one_mask_per_seg_with_its_phrase(geomag_model, monkeypatch):
    model = geomag_model
    image = noise(36, 52)
    answer = "<p>the red circle</p> [SEG] and <p>a blue square</p> [SEG]."
    prompt_ids = model.vlm_inputs(image, PROMPT)["input_ids"]
    answer_ids = model.tokenizer(" " + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    scripted = torch.cat([prompt_ids, answer_ids, torch.tensor([[model.tokenizer.eos_token_id, 5, 6]])], 1)
    monkeypatch.setattr(model.vlm, "generate", lambda **kwargs: scripted)
    output = model.generate(image, PROMPT)
    assert output.text == "the red circle and a blue square."
    assert output.phrases == ["the red circle", "a blue square"]
    assert len(output.masks) == 2 and output.masks[0].shape == (36, 52) and output.masks[0].dtype == np.float32
    with torch.no_grad():  # the same masks as one teacher-forced pass over prompt + answer
        sequence = torch.cat([prompt_ids, answer_ids], 1)
        inputs = model.vlm_inputs(image, PROMPT)
        expected = model._masks_for(sequence, inputs["pixel_values"], image).sigmoid().numpy()
    np.testing.assert_allclose(np.stack(output.masks), expected, atol=1e-6)
    assert not np.allclose(output.masks[0], output.masks[1])


def test_greedy_generation_runs_and_makes_as_many_masks_as_phrases(geomag_model):
    output = geomag_model.generate(noise(32, 32), "Describe the image.", max_new_tokens=6)
    assert isinstance(output.text, str) and len(output.masks) == len(output.phrases)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(geomag_folder):
    torch.manual_seed(0)
    model = GeoMag.from_config(tiny_geomag_config(geomag_folder, lora_dropout=0.0)).train()
    image, mask = circle(40, 40)
    batch = model.collate([model.prepare(image, PROMPT, "Sure, it is [SEG].", masks=mask[None])])
    results = []
    for checkpointing in (False, True):
        if checkpointing:
            model.enable_gradient_checkpointing()
        model.zero_grad()
        loss = model(batch)["loss"]
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.trainable_parameters()}))
    (plain_loss, plain), (checked_loss, checked) = results
    assert model.vlm.get_base_model().is_activation_checkpointing
    torch.testing.assert_close(checked_loss, plain_loss)
    assert plain.keys() == checked.keys()
    for name in plain:
        torch.testing.assert_close(checked[name], plain[name], atol=1e-6, rtol=1e-4, msg=name)
