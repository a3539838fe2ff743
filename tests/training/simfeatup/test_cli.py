"""`python -m training.simfeatup` as a user runs it: bad input is one sentence and exit code 2."""
import numpy as np

from tests.training.conftest import write_image
from tests.training.simfeatup.conftest import write_config
from tests.training.runs import error_line
from training.simfeatup.__main__ import main


def test_a_short_run_from_the_command_line(tmp_path, image_folders, local_clip, capsys):
    config = write_config(tmp_path / "run.yaml", image_folders["train"], local_clip, tmp_path / "unused")
    code = main(["--config", str(config), "--out-dir", str(tmp_path / "run"), "--max-steps", "2", "--seed", "3",
                 "--device", "cpu"])
    assert code == 0
    assert f"trained 2 steps; wrote {tmp_path / 'run' / 'simfeatup_jbu_one.ckpt'}" in capsys.readouterr().out
    assert (tmp_path / "run" / "simfeatup_training_parts.pt").exists() and not (tmp_path / "unused").exists()


def test_a_missing_config_or_image_folder_is_one_sentence_and_exit_2(tmp_path, local_clip, capsys):
    assert main(["--config", str(tmp_path / "absent.yaml")]) == 2
    assert "config file" in error_line(capsys)
    config = write_config(tmp_path / "run.yaml", tmp_path / "absent", local_clip, tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert error_line(capsys) == (f"error: data.images: {tmp_path / 'absent'} does not exist; give a folder of "
                                   "images, or a CSV/JSON list of them (see training/README.md).")


def test_a_wrong_config_value_names_the_key(tmp_path, image_folders, local_clip, capsys):
    config = write_config(tmp_path / "run.yaml", image_folders["train"], local_clip, tmp_path / "run",
                          loss={"max_zoom": 0.5})
    assert main(["--config", str(config)]) == 2
    assert error_line(capsys) == f"error: {config}: 'loss.max_zoom' must be at least 1 (1: no zoom); fix it in the file."
    config = write_config(tmp_path / "run.yaml", image_folders["train"], local_clip, tmp_path / "run",
                          loss={"gamma": 0.1})
    assert main(["--config", str(config)]) == 2
    assert "unknown key 'loss.gamma'" in error_line(capsys)


def test_an_unknown_clip_weight_names_the_config_key(tmp_path, image_folders, capsys):
    config = write_config(tmp_path / "run.yaml", image_folders["train"], tmp_path / "nothing.pt", tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert "error: model.clip_weights" in error_line(capsys)


def test_a_16_bit_or_damaged_image_stops_the_run_with_one_sentence(tmp_path, local_clip, capsys):
    (tmp_path / "deep").mkdir()
    write_image(tmp_path / "deep" / "a.tif", np.zeros((3, 64, 64), np.uint16))
    config = write_config(tmp_path / "run.yaml", tmp_path / "deep", local_clip, tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert "a.tif has uint16 pixels, not 8-bit; convert it to 8-bit first" in error_line(capsys)
    (tmp_path / "broken").mkdir()
    for index in range(2):
        (tmp_path / "broken" / f"{index}.png").write_bytes(b"not a png")
    config = write_config(tmp_path / "run.yaml", tmp_path / "broken", local_clip, tmp_path / "run2",
                          data={"check_files": False}, train={"batch_size": 2, "num_workers": 1})
    assert main(["--config", str(config)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: cannot read image {tmp_path / 'broken' / '0.png'} (") or \
        line.startswith(f"error: cannot read image {tmp_path / 'broken' / '1.png'} (")
    assert line.endswith("replace the damaged file.")
