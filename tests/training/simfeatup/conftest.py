"""Generated image folders, a tiny CLIP with patch-local features, and config files for the SimFeatUp tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.checkpoints import TINY, save_open_clip_checkpoint, tiny_clip
from tests.training.conftest import optical_from_labels, shapes_image, write_image

CROP = 48  # a 3x3 patch grid of the tiny CLIP's 16-pixel patches; 48 pixels after SimFeatUp's x16


def write_images(folder: Path, count: int, seed: int, size: int = 64) -> Path:
    """``count`` RGB images of coloured rectangles and discs, PNG and GeoTIFF, half in a subfolder."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        target = folder / ("b" if index % 2 else "a")
        target.mkdir(parents=True, exist_ok=True)
        write_image(target / f"{index:02d}{'.png' if index % 3 else '.tif'}",
                    optical_from_labels(shapes_image(rng, size)))
    return folder


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory):
    """16 training images of 64 pixels, 8 held-out ones of 48."""
    root = tmp_path_factory.mktemp("images")
    return {"train": write_images(root / "train", 16, seed=1), "val": write_images(root / "val", 8, seed=2, size=CROP)}


@pytest.fixture(scope="session")
def local_clip(tmp_path_factory):
    """The tiny random CLIP (224 pixels, 16-pixel patches, 32-d) with its positional embedding and attention
    outputs zeroed: each patch's feature is a function of that patch's pixels, as nearly as a trained CLIP's
    is, so a jittered view's features are predictable from the image and the multi-view loss can fall."""
    model = tiny_clip(TINY, seed=6)
    with torch.no_grad():
        model.visual.positional_embedding.zero_()
        for block in model.visual.transformer.resblocks:
            block.attn.out_proj.weight.zero_()
            block.attn.out_proj.bias.zero_()
    return save_open_clip_checkpoint(model, tmp_path_factory.mktemp("clip") / "local.pt")


def write_config(path: Path, images: Path, clip: Path, out_dir: Path, **sections: dict) -> Path:
    """A YAML config for a small CPU run (48-pixel crops, 2 views); ``sections`` update it section by section."""
    import yaml

    config = {
        "data": {"images": str(images), "crop_size": CROP},
        "model": {"clip_weights": str(clip), "recompute_views": False},
        "loss": {"jitters": 2, "max_pad": 6},
        "train": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 4, "device": "cpu", "num_workers": 0,
                  "log_every": 1, "checkpoint_every": 3},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path
