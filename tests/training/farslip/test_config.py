"""The shipped FarSLIP configs hold the authors' hyper-parameters; the stage picks the schema."""
from pathlib import Path

import pytest

from backend.errors import UserInputError
from training.farslip.config import Stage1Config, Stage2Config, load_farslip_config

CONFIGS = Path(__file__).parents[3] / "training" / "farslip" / "configs"


def test_the_stage_one_config_holds_the_authors_hyper_parameters():
    config = load_farslip_config(CONFIGS / "farslip1_vit_b16.yaml")
    assert isinstance(config, Stage1Config)
    assert (config.data.local_crops, config.data.crop_scale, config.data.crop_ratio) == (4, (0.3, 0.7), (0.75, 1.3333))
    assert (config.model.clip_weights, config.model.activation, config.model.long_text) == (
        "openai-vit-b-16", "quickgelu", True)
    loss = config.loss
    assert (loss.global_weight, loss.distill_weight, loss.distill_teacher, loss.ema_momentum) == (1.0, 0.1, "ema", 0.99)
    optim = config.optim
    assert (optim.lr, optim.weight_decay, optim.betas, optim.eps, optim.warmup_steps) == (
        1e-6, 1.0, (0.9, 0.98), 1e-6, 1000)
    assert (config.train.epochs, config.train.batch_size) == (1, 160)


def test_the_stage_two_config_holds_the_authors_hyper_parameters():
    config = load_farslip_config(CONFIGS / "farslip2_vit_b16.yaml")
    assert isinstance(config, Stage2Config)
    data = config.data
    assert (data.caption, data.max_boxes, data.min_box_size, data.max_box_size) == ("long", 4, 64, 1024)
    assert (config.loss.global_weight, config.loss.region_weight) == (1.0, 1.0)
    assert config.loss.region_template == "a satellite image of {}"
    assert (config.optim.lr, config.optim.weight_decay, config.optim.warmup_steps) == (4e-9, 1.0, 250)
    assert (config.train.epochs, config.train.batch_size) == (10, 160)


@pytest.mark.parametrize("stage", [1, 2])
def test_a_config_naming_only_the_stage_and_data_gets_the_shipped_values(tmp_path, stage):
    (tmp_path / "c.yaml").write_text(f"stage: {stage}\ndata:\n  train_data: somewhere\n")
    config = load_farslip_config(tmp_path / "c.yaml")
    shipped = load_farslip_config(CONFIGS / f"farslip{stage}_vit_b16.yaml")
    for section in ("loss", "optim"):
        assert getattr(config, section) == getattr(shipped, section), section
    assert config.train.precision == shipped.train.precision == "bf16"
    assert config.model.clip_weights == ("openai-vit-b-16" if stage == 1 else "farslip1-vit-b-16")


@pytest.mark.parametrize("text, message", [
    ("data:\n  train_data: x\n", r"'stage' is missing; add 'stage: 1' or 'stage: 2' at the top of the file"),
    ("stage: 3\ndata:\n  train_data: x\n", r"'stage' must be 1 \(image-caption contrast and self-distillation\) or 2"),
    ("stage: 1\ndata:\n  train_data: x\n  max_boxes: 4\n", r"unknown key 'data.max_boxes'"),
    ("stage: 2\ndata:\n  train_data: x\nloss:\n  region_template: a photo\n",
     r"'loss.region_template' must hold the category's place as \{\} once"),
    ("stage: 1\ndata:\n  train_data: x\nloss:\n  ema_momentum: 1\n", r"'loss.ema_momentum' must be in \[0, 1\)"),
    ("stage: 1\ndata:\n  train_data: x\nloss:\n  distill_teacher: frozen\n",
     r"'loss.distill_teacher' must be one of 'ema', 'student'"),
])
def test_a_bad_config_is_one_sentence_naming_the_key(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UserInputError, match=message):
        load_farslip_config(tmp_path / "c.yaml")


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(UserInputError, match=r"config file .*absent.yaml does not exist"):
        load_farslip_config(tmp_path / "absent.yaml")
