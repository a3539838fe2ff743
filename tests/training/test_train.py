import os
import signal

import pytest
import torch

from backend.errors import UserInputError
from backend.models.clip_loading import load_clip
from training.alignearth.config import AlignEarthConfig
from training.alignearth.data import PairedImages, read_pairs
from training.alignearth.model import load_teacher, student_from
from training.alignearth.train import evaluate_alignment, train
from training.common.config import load_config, with_overrides
from tests.training.conftest import write_config
from tests.training.runs import assert_same_end, last_state, log_rows

CPU = torch.device("cpu")
STEPS = 12  # 48 pairs in batches of 8: 6 steps an epoch, 2 epochs


def _config(tmp_path, paired_set, teacher, name, **sections):
    path = write_config(tmp_path / f"{name}.yaml", paired_set["train"], teacher, tmp_path / name, **sections)
    return load_config(path, AlignEarthConfig)


def test_a_short_run_brings_the_sar_student_towards_the_optical_teacher(tmp_path, paired_set, small_teacher):
    config = _config(tmp_path, paired_set, small_teacher, "run", optim={"lr": 5e-4}, train={"epochs": 4})
    teacher = load_teacher(str(small_teacher))
    held_out = PairedImages(read_pairs(paired_set["val"]), 112)
    before = evaluate_alignment(teacher.visual, student_from(teacher), held_out, CPU)
    result = train(config)
    trained, _ = load_clip(result.exported, quick_gelu=False)
    after = evaluate_alignment(teacher.visual, trained.visual, held_out, CPU)
    assert after["cls_cosine"] > before["cls_cosine"] + 0.25, (before, after)
    assert after["region_cosine"] > before["region_cosine"] + 0.25, (before, after)
    assert (result.step, result.epoch, result.interrupted) == (24, 4, False)
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, 25))
    assert list(rows[0]) == ["step", "epoch", "cls_contrast", "cls_distill", "local_distill", "total", "lr",
                             "temperature", "seconds"]
    assert rows[0]["epoch"] == "1" and rows[-1]["epoch"] == "4"
    assert float(rows[0]["temperature"]) == pytest.approx(0.07, rel=0.05)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "config.yaml").exists() and last_state(tmp_path / "run")["step"] == 24


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, paired_set, small_teacher):
    """A run never stopped: its final state and log."""
    folder = tmp_path_factory.mktemp("reference")
    result = train(_config(folder, paired_set, small_teacher, "run"))
    assert result.step == STEPS
    return last_state(folder / "run"), log_rows(folder / "run" / "log.csv")


def test_a_run_killed_after_k_steps_resumes_to_the_same_weights(tmp_path, paired_set, small_teacher, uninterrupted):
    config = _config(tmp_path, paired_set, small_teacher, "run")  # last.pt every 5 steps

    def kill(step):
        if step == 8:
            raise RuntimeError("killed")  # like a kill: nothing saved after the checkpoint of step 5

    with pytest.raises(RuntimeError, match="killed"):
        train(config, on_step=kill)
    assert last_state(tmp_path / "run")["step"] == 5 and len(log_rows(tmp_path / "run" / "log.csv")) == 8
    assert train(config, resume=True).step == STEPS
    assert_same_end(tmp_path / "run", *uninterrupted, STEPS)


def test_a_run_stopped_by_max_steps_mid_epoch_resumes_to_the_same_weights(tmp_path, paired_set, small_teacher,
                                                                          uninterrupted):
    config = _config(tmp_path, paired_set, small_teacher, "run")
    assert train(with_overrides(config, {"train.max_steps": 7})).step == 7
    assert (last_state(tmp_path / "run")["epoch"], last_state(tmp_path / "run")["batch"]) == (1, 1)
    train(config, resume=True)
    assert_same_end(tmp_path / "run", *uninterrupted, STEPS)


def test_ctrl_c_saves_at_the_step_and_stops_then_resume_finishes_the_same(tmp_path, paired_set, small_teacher,
                                                                         uninterrupted):
    config = _config(tmp_path, paired_set, small_teacher, "run")

    def press_ctrl_c(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    result = train(config, on_step=press_ctrl_c)
    assert result.interrupted and result.step == 3 and result.exported is None
    assert last_state(tmp_path / "run")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    train(config, resume=True)
    assert_same_end(tmp_path / "run", *uninterrupted, STEPS)


def test_a_new_run_over_an_old_one_and_a_resume_without_one_are_refused(tmp_path, paired_set, small_teacher):
    config = _config(tmp_path, paired_set, small_teacher, "run", train={"max_steps": 1})
    with pytest.raises(UserInputError, match=r"--resume was given but .*last.pt does not exist"):
        train(config, resume=True)
    train(config)
    with pytest.raises(UserInputError, match=r"already holds a run \(last.pt\); add --resume to continue it"):
        train(config)
    with pytest.raises(UserInputError, match=r"written with 6 batches an epoch, not 3; resume with the manifest and "
                                             r"train.batch_size it was started with"):
        train(with_overrides(config, {"train.batch_size": 16}), resume=True)


def test_regions_that_do_not_divide_the_patch_grid_are_refused(tmp_path, paired_set, small_teacher):
    config = _config(tmp_path, paired_set, small_teacher, "run", loss={"regions": 5})
    with pytest.raises(UserInputError, match=r"loss.regions 5 does not divide the 7x7 patch grid of small.pt"):
        train(config)
