"""Stage 1, the TMRA granularity classifier, on generated pairs over a tiny random BERT."""
import pytest
import torch

from backend.models.geomag.tmra import GranularityClassifier, QueryEncoder, TaskGranularity
from tests.training.geomag.conftest import write_config
from tests.training.runs import assert_same_end, last_state, log_rows
from training.common.seeding import seed_everything
from training.geomag.config import load_geomag_config
from training.geomag.stage1 import accuracy, build_task, load_tmra, train

PAIRS = {"generated_pairs": 240, "generated_val_pairs": 90}


def _config(tmp_path, bases, name, **sections):
    sections = {"data": PAIRS, "model": {"bert": bases["bert"]}, **sections}
    return load_geomag_config(write_config(tmp_path / f"{name}.yaml", tmp_path / name, 1, **sections))


def test_a_run_logs_validation_accuracy_and_exports_a_classifier_tmra_loads(tmp_path, tiny_bases):
    config = _config(tmp_path, tiny_bases, "run", train={"epochs": 12, "batch_size": 16, "log_every": 5,
                                                          "checkpoint_every": 100})
    seed_everything(0)
    task, _ = build_task(config, torch.device("cpu"))
    result = train(config)
    assert (result.step, result.interrupted) == (12 * 15, False)
    validation = log_rows(tmp_path / "run" / "val.csv")
    assert [int(row["epoch"]) for row in validation] == list(range(1, 13))
    task.module.load_state_dict(last_state(tmp_path / "run")["module"])
    assert float(validation[-1]["accuracy"]) == pytest.approx(accuracy(task.module, task.validation,
                                                                       torch.device("cpu")), abs=1e-6)
    assert list(log_rows(tmp_path / "run" / "log.csv")[0]) == ["step", "epoch", "total", "lr", "seconds"]
    state = load_tmra(result.exported)
    assert result.exported.name == "tmra_classifier.safetensors"
    assert set(state) == {f"layers.{i}.{kind}" for i in (0, 2, 4) for kind in ("weight", "bias")}
    assert state["layers.0.weight"].shape == (256, 32) and state["layers.4.weight"].shape == (3, 128)
    granularity = TaskGranularity(QueryEncoder(tiny_bases["bert"]), GranularityClassifier.from_state_dict(state))
    label, probs = granularity.predict("please segment the red car on the left")
    assert label in ("image", "region", "pixel") and sum(probs) == pytest.approx(1.0)


def test_stage1_resumes_to_the_same_weights(tmp_path, tiny_bases):
    steps = 2 * 7  # 90 pairs, batches of 12: 7 steps an epoch
    sections = {"data": {"generated_pairs": 90}, "train": {"batch_size": 12}}
    reference = train(_config(tmp_path, tiny_bases, "reference", **sections))
    assert reference.step == steps
    config = _config(tmp_path, tiny_bases, "run", **sections)

    def kill(step):
        if step == 5:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(config, on_step=kill)
    assert last_state(tmp_path / "run")["step"] == 3
    train(config, resume=True)
    assert_same_end(tmp_path / "run", last_state(tmp_path / "reference"), log_rows(tmp_path / "reference" / "log.csv"),
                    steps)


def test_a_pairs_file_is_read_and_a_bad_row_is_one_sentence(tmp_path, tiny_bases):
    from backend.errors import UserInputError
    from training.geomag.pairs import read_pairs

    (tmp_path / "pairs.csv").write_text("query,granularity\nsegment the roof,pixel\ndescribe this image,IMAGE\n")
    assert read_pairs(tmp_path / "pairs.csv") == [("segment the roof", "pixel"), ("describe this image", "image")]
    (tmp_path / "pairs.json").write_text('[{"query": "how many cars", "granularity": "region"}, {"query": "x"}]')
    with pytest.raises(UserInputError, match=r"pairs.json item 1 needs a query and a granularity of image, region, "
                                             r"pixel; fix or remove it"):
        read_pairs(tmp_path / "pairs.json")
    config = _config(tmp_path, tiny_bases, "file", data={"train_pairs": str(tmp_path / "pairs.csv"),
                                                          "generated_pairs": 0, "generated_val_pairs": 0},
                     train={"batch_size": 2, "epochs": 1})
    assert train(config).step == 1
