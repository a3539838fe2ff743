"""The shipped configs load; the stage picks the schema; the command line refuses bad input in one sentence."""
from pathlib import Path

import pytest

from backend.errors import UserInputError
from tests.training.runs import error_line
from training.geomag.__main__ import main
from training.geomag.config import GeoMagTrainConfig, TmraConfig, load_geomag_config
from training.geomag.stage2 import geomag_config

CONFIGS = Path(__file__).resolve().parents[3] / "training" / "geomag" / "configs"


def test_the_shipped_configs_hold_the_paper_values():
    tmra = load_geomag_config(CONFIGS / "tmra_bert_base.yaml")
    assert isinstance(tmra, TmraConfig) and tmra.model.bert == "google-bert/bert-base-uncased"
    stage2 = load_geomag_config(CONFIGS / "geomag_llava15_7b.yaml")
    assert isinstance(stage2, GeoMagTrainConfig)
    model = geomag_config(stage2)
    assert (model.vlm, model.lora_rank, model.decoder_dim) == ("llava-hf/llava-1.5-7b-hf", 8, 256)
    assert model.lora_targets[0] == "q_proj" and (model.ce_weight, model.bce_weight, model.dice_weight) == (1, 2, 0.5)


def test_a_missing_or_wrong_stage_and_a_stage_2_key_in_stage_1_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("data: {generated_pairs: 3}\n")
    with pytest.raises(UserInputError, match=r"'stage' is missing; add 'stage: 1'"):
        load_geomag_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("stage: 3\n")
    with pytest.raises(UserInputError, match=r"'stage' must be 1 .* or 2 .*, not 3"):
        load_geomag_config(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("stage: 1\ndata: {generated_pairs: 3}\nloss: {ce_weight: 1}\n")
    with pytest.raises(UserInputError, match=r"unknown key 'loss'"):
        load_geomag_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("stage: 2\ndata: {val: rrsisd, generated: 4}\n")
    with pytest.raises(UserInputError, match=r"'data.val' names a set whose folder is not given"):
        load_geomag_config(tmp_path / "d.yaml")


def test_the_command_line_names_a_missing_dataset_folder_and_exits_2(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text(f"stage: 2\ndata: {{refsegrs: {tmp_path / 'absent'}}}\n"
                                       f"train: {{out_dir: {tmp_path / 'run'}, device: cpu}}\n")
    assert main(["--config", str(tmp_path / "run.yaml")]) == 2
    assert error_line(capsys) == (f"error: RefSegRS folder {tmp_path / 'absent'} does not exist; give the RefSegRS "
                                  "folder holding images/, masks/ and output_phrase_{train,val,test}.txt.")
    assert main(["--config", str(tmp_path / "absent.yaml")]) == 2
    assert "config file" in error_line(capsys)
