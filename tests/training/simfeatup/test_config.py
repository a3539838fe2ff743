"""The shipped SimFeatUp config holds the paper's and the authors' hyper-parameters."""
from pathlib import Path

import pytest

from backend.errors import UserInputError
from training.common.config import load_config, with_overrides
from training.simfeatup.config import SimFeatUpConfig

SHIPPED = Path(__file__).parents[3] / "training" / "simfeatup" / "configs" / "simfeatup_vit_b16.yaml"


def test_the_shipped_config_holds_the_papers_hyper_parameters():
    config = load_config(SHIPPED, SimFeatUpConfig)
    assert (config.data.crop_size, config.data.normalisation) == (224, "imagenet")
    assert (config.model.clip_weights, config.model.clip_activation) == ("openai-vit-b-16", "quickgelu")
    loss = config.loss
    assert (loss.jitters, loss.max_pad, loss.max_zoom, loss.flips) == (5, 20, 2.0, True)
    assert (loss.random_projection, loss.predicted_uncertainty, loss.image_weight) == (30, True, 0.1)
    optim = config.optim
    assert (optim.lr, optim.weight_decay, optim.schedule, optim.warmup_steps) == (1e-3, 0.0, "constant", 0)
    assert (config.train.epochs, config.train.batch_size, config.train.precision) == (1, 8, "fp32")


def test_a_config_naming_only_the_images_gets_the_same_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("data:\n  images: pictures\n")
    config = load_config(tmp_path / "c.yaml", SimFeatUpConfig)
    shipped = load_config(SHIPPED, SimFeatUpConfig)
    for section in ("model", "loss", "optim"):
        assert getattr(config, section) == getattr(shipped, section), section
    assert with_overrides(config, {"train.seed": 7, "train.out_dir": None}).train.seed == 7


@pytest.mark.parametrize("section, text, message", [
    ("loss", "jitters: 0", "'loss.jitters' must be at least 1"),
    ("loss", "random_projection: 0", "'loss.random_projection' must be at least 1, or null"),
    ("loss", "image_weight: -1", "'loss.image_weight' must be 0 or more"),
    ("model", "channel_chunk: 0", "'model.channel_chunk' must be at least 1, or null for all channels"),
    ("data", "normalisation: rgb", "'data.normalisation' must be one of 'imagenet', 'clip'"),
])
def test_out_of_range_values_are_refused_naming_the_key(tmp_path, section, text, message):
    (tmp_path / "c.yaml").write_text(f"data:\n  images: pictures\n{section}:\n  {text}\n" if section != "data"
                                     else f"data:\n  images: pictures\n  {text}\n")
    with pytest.raises(UserInputError, match=message):
        load_config(tmp_path / "c.yaml", SimFeatUpConfig)
