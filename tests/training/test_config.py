from pathlib import Path

import pytest

from backend.errors import UserInputError
from training.alignearth.config import AlignEarthConfig
from training.common.cli import overrides, training_parser
from training.common.config import load_config, with_overrides

DEFAULT = Path(__file__).resolve().parents[2] / "training/alignearth/configs/alignearth_vit_b16.yaml"


def _load(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return load_config(path, AlignEarthConfig)


def test_the_default_config_holds_the_papers_values():
    config = load_config(DEFAULT, AlignEarthConfig)
    assert config.model.teacher_weights == "openai-vit-b-16" and config.model.teacher_activation == "quickgelu"
    assert config.model.student_activation == "gelu"
    assert (config.loss.regions, config.loss.temperature) == (7, 0.07)
    assert (config.loss.contrastive_weight, config.loss.global_weight, config.loss.local_weight) == (1, 1, 1)
    assert (config.optim.lr, config.train.epochs, config.train.batch_size) == (1e-4, 20, 512)


def test_a_section_given_in_part_keeps_the_trainers_defaults_for_the_rest(tmp_path):
    config = _load(tmp_path, "data: {train_manifest: p.csv}\ntrain: {epochs: 3}\noptim: {lr: 1e-3}\n")
    assert config.train.epochs == 3 and config.train.batch_size == 512 and config.train.out_dir == "runs/alignearth"
    assert config.optim.lr == 1e-3  # YAML reads 1e-3 as text; a number text is taken as the number
    assert config.data.crop_scale == (0.5, 1.0) and config.loss.regions == 7


@pytest.mark.parametrize("text,message", [
    ("data: {train_manifest: p.csv, shuffle: true}",
     r"run.yaml: unknown key 'data.shuffle'; the keys of section 'data' are"),
    ("data: {train_manifest: p.csv}\ntrain: {epochs: twenty}",
     r"run.yaml: 'train.epochs' must be a whole number, not 'twenty'"),
    ("data: {train_manifest: p.csv}\ntrain: {epochs: 2.5}", r"'train.epochs' must be a whole number, not 2.5"),
    ("data: {train_manifest: p.csv}\ndata_: 1", r"unknown key 'data_'; the keys of the top level are data, model"),
    ("model: {}", r"run.yaml: 'data.train_manifest' is missing; add it to the file"),
    ("data: {train_manifest: p.csv, crop_scale: [0.9, 0.5]}", r"'data.crop_scale' must be two fractions"),
    ("data: {train_manifest: p.csv, crop_scale: 0.5}", r"'data.crop_scale' must be a list of 2 numbers, not 0.5"),
    ("data: {train_manifest: p.csv}\ntrain: {precision: fp64}",
     r"'train.precision' must be one of 'fp32', 'bf16', 'fp16'"),
    ("data: {train_manifest: p.csv}\nmodel: {teacher_activation: relu}",
     r"'model.teacher_activation'"),
    ("data: {train_manifest: p.csv}\ntrain: {device: gpu}", r"'train.device' must be auto, cpu, cuda or cuda:N"),
    ("data: [1, 2]", r"section 'data' must be a mapping of keys to values"),
    ("data: {train_manifest: p.csv\n", r"run.yaml is not valid YAML at line \d+; fix its syntax"),
])
def test_unknown_keys_wrong_types_and_bad_values_are_refused_naming_key_and_file(tmp_path, text, message):
    with pytest.raises(UserInputError, match=message):
        _load(tmp_path, text)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(UserInputError, match=r"config file .*absent.yaml does not exist"):
        load_config(tmp_path / "absent.yaml", AlignEarthConfig)


def test_command_line_options_override_the_file(tmp_path):
    config = _load(tmp_path, "data: {train_manifest: p.csv}\ntrain: {out_dir: a, seed: 1}")
    args = training_parser("t", "t").parse_args(["--config", "run.yaml", "--out-dir", "b", "--device", "cuda:1",
                                                 "--max-steps", "7"])
    changed = with_overrides(config, overrides(args))
    assert (changed.train.out_dir, changed.train.device, changed.train.max_steps, changed.train.seed) == \
        ("b", "cuda:1", 7, 1)
    with pytest.raises(SystemExit):
        training_parser("t", "t").parse_args(["--config", "x", "--device", "gpu"])
