"""Training runs on generated images: the reconstruction errors fall, runs resume to the same weights."""
import dataclasses
import os
import signal

import pytest
import torch

from backend.errors import UserInputError
from tests.helpers.checkpoints import TINY, save_open_clip_checkpoint, tiny_clip
from tests.training.simfeatup.conftest import write_config
from tests.training.runs import assert_same_end, last_state, log_rows
from training.common.config import load_config, with_overrides
from training.common.seeding import seed_everything
from training.simfeatup.config import SimFeatUpConfig
from training.simfeatup.data import ImageCrops, list_images
from training.simfeatup.train import build_task, evaluate_reconstruction, train

CPU = torch.device("cpu")
STEPS = 8  # 16 images in batches of 4: 4 steps an epoch, 2 epochs


def _config(tmp_path, image_folders, clip, name, **sections):
    path = write_config(tmp_path / f"{name}.yaml", image_folders["train"], clip, tmp_path / name, **sections)
    return load_config(path, SimFeatUpConfig)


def test_a_short_run_lowers_the_feature_and_image_reconstruction_errors(tmp_path, image_folders, local_clip):
    config = _config(tmp_path, image_folders, local_clip, "run", data={"val_images": str(image_folders["val"])},
                     train={"epochs": 4})
    seed_everything(config.train.seed)
    untrained, _ = build_task(config, CPU)
    held_out = ImageCrops(list_images(image_folders["val"]), 48)
    before = evaluate_reconstruction(untrained, held_out)
    result = train(config)
    untrained.module.load_state_dict(last_state(tmp_path / "run")["module"])
    after = evaluate_reconstruction(untrained, held_out)
    assert after["feature_mse"] < 0.85 * before["feature_mse"], (before, after)
    assert after["image_mse"] < 0.8 * before["image_mse"], (before, after)
    assert (result.step, result.epoch, result.interrupted) == (16, 4, False)
    assert result.exported == tmp_path / "run" / "simfeatup_jbu_one.ckpt"
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, 17))
    assert list(rows[0]) == ["step", "epoch", "rec", "img", "total", "lr", "seconds"]
    for row in rows:
        assert float(row["total"]) == pytest.approx(float(row["rec"]) + 0.1 * float(row["img"]), rel=1e-4, abs=1e-5)
    validation = log_rows(tmp_path / "run" / "val.csv")
    assert [int(row["epoch"]) for row in validation] == [1, 2, 3, 4]
    assert float(validation[-1]["image_mse"]) == pytest.approx(after["image_mse"], rel=1e-5)
    for name in ("simfeatup_training_parts.pt", "config.yaml", "last.pt"):
        assert (tmp_path / "run" / name).exists(), name
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, image_folders, local_clip):
    """A run never stopped: its final state and log."""
    folder = tmp_path_factory.mktemp("reference")
    result = train(_config(folder, image_folders, local_clip, "run"))
    assert result.step == STEPS
    return last_state(folder / "run"), log_rows(folder / "run" / "log.csv")


def test_a_run_killed_after_k_steps_resumes_to_the_same_weights(tmp_path, image_folders, local_clip, uninterrupted):
    config = _config(tmp_path, image_folders, local_clip, "run")  # last.pt every 3 steps

    def kill(step):
        if step == 5:
            raise RuntimeError("killed")  # like a kill: nothing saved after the checkpoint of step 3

    with pytest.raises(RuntimeError, match="killed"):
        train(config, on_step=kill)
    assert last_state(tmp_path / "run")["step"] == 3 and len(log_rows(tmp_path / "run" / "log.csv")) == 5
    assert train(config, resume=True).step == STEPS
    assert_same_end(tmp_path / "run", *uninterrupted, STEPS)


def test_ctrl_c_mid_epoch_saves_and_stops_then_resume_finishes_the_same(tmp_path, image_folders, local_clip,
                                                                        uninterrupted):
    config = _config(tmp_path, image_folders, local_clip, "run")

    def press_ctrl_c(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    result = train(config, on_step=press_ctrl_c)
    assert result.interrupted and result.step == 5 and result.exported is None
    assert (last_state(tmp_path / "run")["epoch"], last_state(tmp_path / "run")["batch"]) == (1, 1)
    train(config, resume=True)
    assert_same_end(tmp_path / "run", *uninterrupted, STEPS)


def test_recomputing_the_views_in_backward_changes_neither_losses_nor_gradients(tmp_path, image_folders, local_clip):
    config = _config(tmp_path, image_folders, local_clip, "run", loss={"jitters": 2})
    seed_everything(0)
    task, dataset = build_task(config, CPU)
    batch = {"image": torch.stack([dataset[index]["image"] for index in range(2)])}
    results = []
    for recompute in (False, True):
        task.model_config = dataclasses.replace(config.model, recompute_views=recompute)
        torch.manual_seed(1)
        task.module.zero_grad()
        losses = task.losses(batch)
        losses["total"].backward()
        results.append((losses, {name: p.grad.clone() for name, p in task.module.named_parameters()}))
    (plain, plain_grads), (recomputed, recomputed_grads) = results
    assert all(torch.equal(plain[key], recomputed[key]) for key in ("rec", "img", "total"))
    for name, grad in plain_grads.items():
        assert torch.allclose(recomputed_grads[name], grad, rtol=1e-5, atol=1e-7), name


def test_a_clip_with_other_than_16_pixel_patches_or_an_unfit_crop_is_refused(tmp_path, image_folders, local_clip):
    coarse = save_open_clip_checkpoint(tiny_clip(dataclasses.replace(TINY, patch_size=32)),
                                       tmp_path / "b32.pt")
    with pytest.raises(UserInputError, match=r"b32.pt has 32-pixel patches; SimFeatUp's JBU_One upsamples 16x"):
        train(_config(tmp_path, image_folders, coarse, "coarse"))
    with pytest.raises(UserInputError, match=r"data.crop_size 40 must be a multiple of the CLIP's 16-pixel patches "
                                             r"and at least 48; use e.g. 224"):
        train(_config(tmp_path, image_folders, local_clip, "odd", data={"crop_size": 40}))
    with pytest.raises(UserInputError, match=r"data.crop_size 32 must be a multiple"):
        train(_config(tmp_path, image_folders, local_clip, "small", data={"crop_size": 32}))
    with pytest.raises(UserInputError, match=r"loss.max_pad 48 is not smaller than data.crop_size 48"):
        train(_config(tmp_path, image_folders, local_clip, "pad", loss={"max_pad": 48}))


def test_a_new_run_over_an_old_one_is_refused(tmp_path, image_folders, local_clip):
    config = _config(tmp_path, image_folders, local_clip, "run", train={"max_steps": 1})
    train(config)
    with pytest.raises(UserInputError, match=r"already holds a run \(last.pt\); add --resume to continue it"):
        train(config)
    assert train(with_overrides(config, {"train.max_steps": 2}), resume=True).step == 2
