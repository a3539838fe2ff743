"""Short FarSLIP runs on generated coloured shapes: the losses fall, zero-shot accuracy rises, resuming is exact."""
import math
import os
import signal

import pytest
import torch

from backend.models.clip_loading import load_clip
from training.common.config import with_overrides
from training.farslip.config import load_farslip_config
from training.farslip.data import (CaptionedCrops, CaptionedRegions, categories_of, read_annotations,
                                   read_captioned_images)
from training.farslip.evaluate import caption_top1, region_top1
from training.farslip.train import train
from tests.training.farslip.conftest import CLASSES, SIZE, write_config
from tests.training.runs import last_state, log_rows

CPU = torch.device("cpu")
CHANCE = 1 / len(CLASSES)
TEMPLATE = "a satellite image of {}"


def _config(tmp_path, stage, source, clip, name, **sections):
    path = write_config(tmp_path / f"{name}.yaml", stage, source, clip, tmp_path / name, **sections)
    return load_farslip_config(path)


def _mean(rows, key):
    return sum(float(row[key]) for row in rows) / len(rows)


def test_stage_one_teaches_a_random_clip_the_shape_captions(tmp_path, shards, small_clip):
    config = _config(tmp_path, 1, shards["train"], small_clip, "run", data={"val_data": str(shards["val"])},
                     optim={"lr": 5e-4}, train={"epochs": 6})
    held_out = CaptionedCrops(read_captioned_images(str(shards["val"])), SIZE, 77)
    before = caption_top1(load_clip(small_clip, quick_gelu=True)[0], held_out, CPU)
    result = train(config)
    after = caption_top1(load_clip(result.exported, quick_gelu=True)[0], held_out, CPU)
    assert before < 1.5 * CHANCE and after > 0.4, (before, after)  # measured: 0.083 -> 0.521 (chance 0.083)
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert list(rows[0]) == ["step", "epoch", "global_contrast", "distill", "total", "lr", "temperature", "seconds"]
    assert [int(row["step"]) for row in rows] == list(range(1, 37))
    first, last = _mean(rows[:6], "global_contrast"), _mean(rows[-6:], "global_contrast")
    assert last < first - 1.0, (first, last)  # measured: 2.87 in the first epoch -> 1.46 in the sixth
    validation = log_rows(tmp_path / "run" / "val.csv")
    assert [int(row["epoch"]) for row in validation] == list(range(1, 7))
    assert float(validation[-1]["caption_top1"]) == pytest.approx(after)
    assert float(rows[0]["temperature"]) == pytest.approx(0.07, rel=0.01)


def test_self_distillation_alone_pulls_the_roi_features_to_the_ema_teachers_crops(tmp_path, shards, small_clip):
    config = _config(tmp_path, 1, shards["train"], small_clip, "run",
                     loss={"global_weight": 0.0, "distill_weight": 1.0}, optim={"lr": 1e-4}, train={"epochs": 4})
    train(config)
    rows = log_rows(tmp_path / "run" / "log.csv")
    first, last = _mean(rows[:6], "distill"), _mean(rows[-6:], "distill")
    assert last < 0.75 * first, (first, last)  # measured: 0.049 in the first epoch -> 0.030 in the fourth


def test_stage_two_with_long_captions_aligns_regions_to_categories(tmp_path, regions, small_clip):
    # The long captions differ only after their 77th token: the global contrast can fall only if the
    # stretched 248-token text tower reads past it (with 77 tokens it stays at ln 16, measured).
    config = _config(tmp_path, 2, regions["train"], small_clip, "run", data={"caption": "long"},
                     model={"long_text": True}, optim={"lr": 5e-4}, train={"epochs": 10})
    items = read_annotations(regions["val"])
    held_out = CaptionedRegions(items, categories_of(items), SIZE, 248, max_boxes=2, min_box=8)
    before = region_top1(load_clip(small_clip, quick_gelu=True)[0], held_out, TEMPLATE, CPU)
    result = train(config)
    trained, arch = load_clip(result.exported, quick_gelu=True)
    after = region_top1(trained, held_out, TEMPLATE, CPU)
    assert arch.context_length == 248
    assert after > 0.5 and after > before + 0.2, (before, after)  # measured: 0.281 -> 0.672 (chance 0.083)
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert list(rows[0])[2:5] == ["global_contrast", "region_contrast", "total"]
    # measured, first epoch -> tenth: global 2.80 -> 1.46 (ln 16 = 2.77), region 3.84 -> 1.84
    assert _mean(rows[-4:], "global_contrast") < math.log(16) - 1.0
    assert _mean(rows[-4:], "region_contrast") < _mean(rows[:4], "region_contrast") - 1.5


def test_a_77_token_text_tower_cannot_tell_the_long_captions_apart(tmp_path, regions, small_clip):
    config = _config(tmp_path, 2, regions["train"], small_clip, "run", data={"caption": "long"},
                     model={"long_text": False}, optim={"lr": 5e-4}, train={"epochs": 3})
    train(config)
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert _mean(rows[-4:], "global_contrast") == pytest.approx(math.log(16), abs=0.05)  # all captions cut alike


STEPS = 12  # 96 pairs in batches of 16: 6 steps an epoch, 2 epochs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, shards, small_clip):
    """A stage I run never stopped (EMA teacher, 248-token text with 20 fixed positions): its last.pt and log."""
    out_dir = tmp_path_factory.mktemp("reference") / "run"
    config = _config(out_dir.parent, 1, shards["train"], small_clip, "run", model={"long_text": True})
    assert train(config).step == STEPS
    return {"state": last_state(out_dir), "log": log_rows(out_dir / "log.csv")}


def _assert_same_end(out_dir, uninterrupted):
    """The resumed run's last.pt and log equal the uninterrupted run's, bit for bit, EMA teacher included."""
    state, reference = last_state(out_dir), uninterrupted["state"]["module"]
    assert (state["step"], state["epoch"], state["batch"]) == (STEPS, 2, 0)
    assert state["module"].keys() == reference.keys() and "teacher.conv1.weight" in reference
    assert [key for key, value in reference.items() if not torch.equal(state["module"][key], value)] == []
    logged = [(row["step"], row["total"], row["distill"]) for row in log_rows(out_dir / "log.csv")]
    assert logged == [(row["step"], row["total"], row["distill"]) for row in uninterrupted["log"]]


def test_a_run_killed_after_k_steps_resumes_to_the_same_weights(tmp_path, shards, small_clip, uninterrupted):
    config = _config(tmp_path, 1, shards["train"], small_clip, "run", model={"long_text": True})

    def kill(step):
        if step == 8:
            raise RuntimeError("killed")  # nothing saved after the checkpoint of step 5

    with pytest.raises(RuntimeError, match="killed"):
        train(config, on_step=kill)
    assert last_state(tmp_path / "run")["step"] == 5
    assert train(config, resume=True).step == STEPS
    _assert_same_end(tmp_path / "run", uninterrupted)


def test_ctrl_c_mid_epoch_saves_and_resume_finishes_the_same(tmp_path, shards, small_clip, uninterrupted):
    config = _config(tmp_path, 1, shards["train"], small_clip, "run", model={"long_text": True})

    def press_ctrl_c(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    result = train(config, on_step=press_ctrl_c)
    assert result.interrupted and result.step == 3 and result.exported is None
    train(config, resume=True)
    _assert_same_end(tmp_path / "run", uninterrupted)


def test_a_stage_two_run_stopped_by_max_steps_resumes_to_the_same_weights(tmp_path, regions, small_clip):
    config = _config(tmp_path, 2, regions["train"], small_clip, "run")  # 4 steps an epoch, 2 epochs
    reference = _config(tmp_path, 2, regions["train"], small_clip, "reference")
    train(reference)
    assert train(with_overrides(config, {"train.max_steps": 3})).step == 3
    train(config, resume=True)
    expected, state = last_state(tmp_path / "reference"), last_state(tmp_path / "run")
    assert state["step"] == expected["step"] == 8
    for key, value in expected["module"].items():
        assert torch.equal(state["module"][key], value), key
