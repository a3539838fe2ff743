import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # pytest-qgis starts QGIS in every run: never on a display

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own RSOV_HOME and never reaches the network."""
    home = tmp_path_factory.mktemp("rsov_home")
    monkeypatch.setenv("RSOV_HOME", str(home))
    monkeypatch.setenv("RSOV_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    return home


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    """Tiny CLIP (OpenAI state dict, TorchScript, open_clip) and SimFeatUp checkpoints."""
    from tests.helpers.checkpoints import (openai_state_dict, save_open_clip_checkpoint, save_simfeatup_lightning,
                             save_torchscript_archive, tiny_clip, tiny_simfeatup)
    import torch

    folder = tmp_path_factory.mktemp("weights")
    model = tiny_clip()
    files = {
        "model": model,
        "openai_state_dict": folder / "tiny-openai.pt",
        "torchscript": save_torchscript_archive(openai_state_dict(model), folder / "ViT-tiny.pt"),
        "open_clip": save_open_clip_checkpoint(model, folder / "tiny-open_clip.pt"),
        "simfeatup": save_simfeatup_lightning(tiny_simfeatup(), folder / "xclip_jbu_one_tiny.ckpt"),
    }
    torch.save(openai_state_dict(model), files["openai_state_dict"])
    return files


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster of 2 CPUs for a test module (started on first use, ~3 s): other modules find no
    cluster running on the machine, as a user's first `--ray auto` does."""
    ray = pytest.importorskip("ray")
    from backend.cluster.session import LOCAL_OBJECT_STORE_BYTES

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    yield ray
    ray.shutdown()
