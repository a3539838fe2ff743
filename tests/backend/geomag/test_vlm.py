"""The VLM side: LLaVA-1.5 template, [SEG] in the vocabulary with trainable rows, LoRA on the LLM only."""
from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from backend.errors import UserInputError
from backend.models.geomag.config import GeoMagConfig
from backend.models.geomag.vlm import format_prompt, load_vlm, lora_target_pattern


def test_the_prompt_follows_the_llava_1_5_template():
    assert format_prompt("  Where is the ship? ") == "USER: <image>\nWhere is the ship? ASSISTANT:"


def test_lora_targets_the_language_models_projections_only():
    pattern = lora_target_pattern(("q_proj", "down_proj"))
    assert re.fullmatch(pattern, "model.language_model.layers.3.self_attn.q_proj")
    assert re.fullmatch(pattern, "model.language_model.layers.0.mlp.down_proj")
    assert not re.fullmatch(pattern, "model.vision_tower.encoder.layers.0.self_attn.q_proj")
    assert not re.fullmatch(pattern, "model.language_model.layers.0.self_attn.k_proj")


def test_lora_wraps_every_llm_projection_and_nothing_in_the_vision_tower(geomag_model):
    wrapped = {name for name, module in geomag_model.vlm.named_modules() if hasattr(module, "lora_A")}
    assert len(wrapped) == 2 * 7  # 2 layers x q/k/v/o/gate/up/down
    assert all("language_model" in name for name in wrapped)


def test_seg_is_one_token_whose_rows_are_spliced_into_the_embeddings_and_the_head(geomag_model):
    model = geomag_model
    ids = model.tokenizer("it is [SEG].", add_special_tokens=False)["input_ids"]
    assert ids.count(model.seg_token_id) == 1 and model.tokenizer.convert_ids_to_tokens(model.seg_token_id) == "[SEG]"
    embeddings = model.vlm.get_input_embeddings()
    with torch.no_grad():
        embedded = embeddings(torch.tensor([ids]))
        assert torch.equal(embedded[0, ids.index(model.seg_token_id)], model.seg_rows.input)
        assert torch.equal(embedded[0, 0], embeddings.weight[ids[0]])
        hidden = torch.randn(2, model.seg_rows.input.shape[0])
        logits = model.vlm.get_output_embeddings()(hidden)
        torch.testing.assert_close(logits[:, model.seg_token_id], hidden @ model.seg_rows.output)
        torch.testing.assert_close(logits[:, 0], hidden @ model.vlm.get_output_embeddings().weight[0])
    assert not embeddings.weight.requires_grad and model.seg_rows.input.requires_grad


def test_quantised_loading_without_bitsandbytes_is_refused_in_one_sentence(geomag_folder):
    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed; quantised loading needs a GPU to test")
    config = GeoMagConfig(vlm=str(geomag_folder / "tiny-llava"), load_in="8bit")
    with pytest.raises(UserInputError, match="needs the bitsandbytes package"):
        load_vlm(config, "cpu", torch.float32)
