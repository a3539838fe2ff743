"""`python -m training.farslip` as a user runs it: a short run, and bad input as one sentence with exit code 2."""
import numpy as np

from training.farslip.__main__ import main
from tests.training.conftest import write_image
from tests.training.farslip.conftest import background, write_config
from tests.training.runs import error_line


def test_a_short_stage_two_run_from_the_command_line(tmp_path, regions, small_clip, capsys):
    config = write_config(tmp_path / "run.yaml", 2, regions["train"], small_clip, tmp_path / "unused")
    code = main(["--config", str(config), "--out-dir", str(tmp_path / "run"), "--max-steps", "2", "--seed", "3",
                 "--device", "cpu"])
    assert code == 0
    assert f"trained 2 steps; wrote {tmp_path / 'run' / 'farslip2.pt'}" in capsys.readouterr().out
    assert (tmp_path / "run" / "farslip2.pt").exists() and not (tmp_path / "unused").exists()


def test_missing_data_a_bad_stage_and_unknown_weights_are_one_sentence_and_exit_2(tmp_path, small_clip, capsys):
    config = write_config(tmp_path / "run.yaml", 1, tmp_path / "absent.tar", small_clip, tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert error_line(capsys) == (f"error: data.train_data: {tmp_path / 'absent.tar'} does not exist; give webdataset "
                                   "shards or a CSV/JSON caption list (see training/README.md).")
    (tmp_path / "stage.yaml").write_text("stage: two\ndata:\n  train_data: x\n")
    assert main(["--config", str(tmp_path / "stage.yaml")]) == 2
    assert "'stage' must be 1" in error_line(capsys)
    write_image(tmp_path / "a.png", background(np.random.default_rng(0)))
    (tmp_path / "a.json").write_text('[{"image": "a.png", "short_caption": "s"}]')
    config = write_config(tmp_path / "weights.yaml", 2, tmp_path / "a.json", tmp_path / "nothing.pt", tmp_path / "run")
    assert main(["--config", str(config), "--device", "cpu"]) == 2
    assert error_line(capsys).startswith(f"error: model.clip_weights '{tmp_path / 'nothing.pt'}' is neither a file "
                                          "nor a registry name")
