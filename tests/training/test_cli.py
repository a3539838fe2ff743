"""`python -m training.alignearth` as a user runs it: bad input is one sentence and exit code 2."""
import numpy as np

from backend.errors import UserInputError
from training.alignearth.__main__ import main
from training.common.cli import error_sentence
from tests.training.conftest import write_config, write_image
from tests.training.runs import error_line


def test_a_short_run_from_the_command_line(tmp_path, paired_set, small_teacher, capsys):
    config = write_config(tmp_path / "run.yaml", paired_set["train"], small_teacher, tmp_path / "unused")
    code = main(["--config", str(config), "--out-dir", str(tmp_path / "run"), "--max-steps", "2", "--seed", "3",
                 "--device", "cpu"])
    assert code == 0
    assert f"trained 2 steps; wrote {tmp_path / 'run' / 'alignearth_sar.pt'}" in capsys.readouterr().out
    assert (tmp_path / "run" / "alignearth_sar.pt").exists() and not (tmp_path / "unused").exists()


def test_a_missing_config_or_manifest_is_one_sentence_and_exit_2(tmp_path, small_teacher, capsys):
    assert main(["--config", str(tmp_path / "absent.yaml")]) == 2
    assert "config file" in error_line(capsys)
    config = write_config(tmp_path / "run.yaml", tmp_path / "absent.csv", small_teacher, tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert error_line(capsys) == (f"error: manifest {tmp_path / 'absent.csv'} does not exist; give a CSV or JSON "
                                   "list of image paths (see training/README.md).")


def test_an_unknown_teacher_weight_names_the_config_key(tmp_path, paired_set, capsys):
    config = write_config(tmp_path / "run.yaml", paired_set["train"], tmp_path / "nothing.pt", tmp_path / "run")
    assert main(["--config", str(config)]) == 2
    assert "error: model.teacher_weights" in error_line(capsys)


def test_an_unreadable_image_read_in_a_worker_is_still_one_sentence(tmp_path, small_teacher, capsys):
    write_image(tmp_path / "o.png", np.zeros((3, 32, 32), np.uint8))
    (tmp_path / "s.png").write_bytes(b"not a png")
    (tmp_path / "pairs.csv").write_text("optical,sar\n" + "o.png,s.png\n" * 2)
    config = write_config(tmp_path / "run.yaml", tmp_path / "pairs.csv", small_teacher, tmp_path / "run",
                          data={"check_files": False}, train={"batch_size": 2, "num_workers": 1})
    assert main(["--config", str(config)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: cannot read image {tmp_path / 's.png'} (")
    assert line.endswith("replace the damaged file.")


def test_a_workers_traceback_is_reduced_to_the_sentence():
    wrapped = UserInputError("Caught UserInputError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                             "call last):\n  File \"x.py\", line 1, in f\nbackend.errors.UserInputError: image a.png "
                             "does not exist; fix it.\n")
    assert error_sentence(wrapped) == "image a.png does not exist; fix it."
