"""Stage 2 on generated scenes over tiny random bases: held-out IoU rises, runs resume, the export segments."""
import numpy as np
import pytest
import torch

from backend.models.geomag.checkpoint import load_checkpoint
from tests.training.geomag.conftest import stage2_config
from tests.training.runs import assert_same_end, last_state, log_rows
from training.common.seeding import seed_everything
from training.geomag.config import load_geomag_config
from training.geomag.generated import ShapesReferring
from training.geomag.stage1 import load_tmra, save_tmra
from training.geomag.stage2 import build_task, evaluate, train


def _config(tmp_path, bases, name, **sections):
    return load_geomag_config(stage2_config(tmp_path / f"{name}.yaml", tmp_path / name, bases, **sections))


def test_a_short_run_raises_the_held_out_mask_iou_and_exports_a_checkpoint_that_segments(tmp_path, tiny_bases):
    from backend.models.geomag.tmra import GranularityClassifier

    tmra = save_tmra(tmp_path / "tmra.safetensors", GranularityClassifier(32), "tiny")
    config = _config(tmp_path, tiny_bases, "run", data={"generated": 64, "val_generated": 16},
                     model={"tmra_weights": str(tmra)}, train={"epochs": 4, "log_every": 8, "checkpoint_every": 100})
    seed_everything(0)
    untrained, _ = build_task(config, torch.device("cpu"))
    before = evaluate(untrained.model, untrained.validation)
    result = train(config)
    assert (result.step, result.interrupted) == (64, False)
    after = {key: float(value) for key, value in log_rows(tmp_path / "run" / "val.csv")[-1].items()}
    assert after["oiou"] > 2.5 * before["oiou"] and after["miou"] > 2 * before["miou"], (before, after)
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert list(rows[0]) == ["step", "epoch", "ce", "bce", "dice", "total", "lr", "seconds"]
    for row in rows:
        assert float(row["total"]) == pytest.approx(float(row["ce"]) + 2 * float(row["bce"]) + 0.5 * float(row["dice"]),
                                                    rel=1e-4)
    assert float(rows[-1]["bce"]) < float(rows[0]["bce"])
    model, tmra_state, geomag_config = load_checkpoint(result.exported)
    assert result.exported.name == "geomag.safetensors" and geomag_config.lora_targets == ("q_proj", "v_proj")
    saved = load_tmra(tmra)
    assert tmra_state.keys() == saved.keys() and all(torch.equal(tmra_state[key], saved[key]) for key in saved)
    sample = ShapesReferring(16, 64, 1_000_003)[0]
    mask = model.segment(sample.image, sample.prompt).logits
    assert mask.shape == (64, 64)
    assert torch.equal(mask, untrained.model.segment(sample.image, sample.prompt).logits) is False
    untrained.module.load_state_dict(last_state(tmp_path / "run")["module"])
    assert torch.allclose(untrained.model.segment(sample.image, sample.prompt).logits, mask, atol=1e-5)
    assert evaluate(model, untrained.validation)["miou"] == pytest.approx(after["miou"], abs=1e-5)
    # the trained checkpoint as a user runs it: rsov refer on the same image as a GeoTIFF gives the same mask
    import rasterio

    from backend.cli import main

    scene, out = tmp_path / "sample.tif", tmp_path / "mask.tif"
    with rasterio.open(scene, "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8") as image:
        image.write(sample.image.transpose(2, 0, 1))
    assert main(["refer", str(scene), "--prompt", sample.prompt, "--checkpoint", str(result.exported),
                 "--no-magcrop", "--out-raster", str(out), "--device", "cpu", "--quiet"]) == 0
    with rasterio.open(out) as written:
        percent = written.read(2).astype(float)
    assert np.abs(percent - np.rint(torch.sigmoid(mask).numpy() * 100)).max() <= 1


def test_last_pt_holds_only_the_trainable_parts_and_a_killed_run_resumes_to_the_same_weights(tmp_path, tiny_bases):
    steps = 4  # 8 scenes in batches of 4, 2 epochs
    sections = {"data": {"generated": 8, "val": None, "val_generated": 0}}
    reference = train(_config(tmp_path, tiny_bases, "reference", **sections))
    assert reference.step == steps
    state = last_state(tmp_path / "reference")
    assert all("/lora_" in key or key.split("/")[0] in ("seg_rows", "text_projection", "pixel_decoder")
               for key in (name.removeprefix("parts.") for name in state["module"])), list(state["module"])[:5]
    config = _config(tmp_path, tiny_bases, "run", **sections)

    def kill(step):
        if step == 4:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(config, on_step=kill)
    assert last_state(tmp_path / "run")["step"] == 3
    train(config, resume=True)
    assert_same_end(tmp_path / "run", state, log_rows(tmp_path / "reference" / "log.csv"), steps)


def test_the_mix_lists_each_source_repeat_times(tmp_path, tiny_bases, refsegrs):
    root, _ = refsegrs
    config = _config(tmp_path, tiny_bases, "mix", data={"generated": 4, "generated_repeat": 2, "refsegrs": str(root),
                                                        "val": None, "val_generated": 0,
                                                        "prompt_template": "Please segment {expression}."})
    task, dataset = build_task(config, torch.device("cpu"))
    assert len(dataset) == 3 + 2 * 4
    example = dataset[0]
    text = task.model.tokenizer.decode(example.input_ids)
    assert "Please segment road along the vehicle." in text and example.masks.shape == (1, 64, 64)
    assert np.isin(example.masks.numpy(), (0.0, 1.0)).all()
