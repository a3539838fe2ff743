"""GeoMagConfig's JSON round trip and refusals; the Box value."""
from __future__ import annotations

import json

import pytest

from backend.errors import UserInputError
from backend.models.geomag.config import Box, GeoMagConfig


def test_config_round_trips_through_json_with_every_field():
    config = GeoMagConfig(vlm="/models/llava", sam2_weights="sam2.1-hiera-large", seg_tokens_per_mask=2,
                          lora_targets=("q_proj", "v_proj"), load_in="4bit", extra={"steps": 3})
    again = GeoMagConfig.from_json(config.to_json())
    assert again == config and again.lora_targets == ("q_proj", "v_proj")


def test_defaults_are_the_papers_and_lisas():
    config = GeoMagConfig()
    assert (config.lora_rank, config.decoder_dim, config.seg_token) == (8, 256, "[SEG]")
    assert (config.ce_weight, config.bce_weight, config.dice_weight) == (1.0, 2.0, 0.5)
    assert set(config.lora_targets) == {f"{n}_proj" for n in ("q", "k", "v", "o", "gate", "up", "down")}


def test_unknown_key_is_refused_naming_it():
    data = json.loads(GeoMagConfig().to_json()) | {"lora_rnak": 4}
    with pytest.raises(UserInputError, match="lora_rnak"):
        GeoMagConfig.from_json(json.dumps(data))


@pytest.mark.parametrize("changes, word", [({"load_in": "2bit"}, "load_in"), ({"lora_rank": 0}, "lora_rank"),
                                           ({"answer_template": "Sure."}, "answer_template"),
                                           ({"decoder_heads": 3}, "decoder_heads")])
def test_bad_values_are_refused_naming_the_field(changes, word):
    with pytest.raises(UserInputError, match=word):
        GeoMagConfig().replace(**changes)


def test_invalid_json_is_a_user_error():
    with pytest.raises(UserInputError, match="not valid JSON"):
        GeoMagConfig.from_json("{vlm: ")
    with pytest.raises(UserInputError, match="not an object"):
        GeoMagConfig.from_json("[1, 2]")


def test_box_scales_outwards_and_clips():
    box = Box(3, 5, 10, 11)
    assert (box.width, box.height) == (7, 6)
    assert box.scaled(0.5, 0.5) == Box(1, 2, 5, 6)
    assert box.scaled(2, 3) == Box(6, 15, 20, 33)
    assert Box(-4, 2, 50, 9).clipped(40, 8) == Box(0, 2, 40, 8)
