"""A generated paired optical-SAR set, a tiny random CLIP teacher and config files for the trainer tests."""
from __future__ import annotations

import csv
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning

from tests.helpers.checkpoints import TINY, save_open_clip_checkpoint, tiny_clip

# A 112-pixel variant of the tiny CLIP: a 7x7 patch grid, so K = 7 regions and steps are quick.
SMALL = replace(TINY, image_size=112)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread for every test here (set before module fixtures run, so runs compare bit for bit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Six colours and the grey level each becomes in the "SAR" image: a fixed remap that is not
# the luminance order (dark red turns bright, white turns dark), so the student has to learn it.
PALETTE = np.array([[200, 30, 30], [30, 160, 40], [40, 60, 200], [230, 220, 60], [250, 250, 250], [90, 60, 40]])
GREY = np.array([220, 60, 150, 100, 30, 180])


def shapes_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """(size, size) palette indices: a background colour with a few rectangles and discs of others."""
    labels = np.full((size, size), rng.integers(len(PALETTE)), np.uint8)
    rows, cols = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(2, 5)):
        top, left = rng.integers(0, size - 8, 2)
        extent = rng.integers(8, size // 2, 2)
        if rng.random() < 0.5:
            mask = (rows >= top) & (rows < top + extent[0]) & (cols >= left) & (cols < left + extent[1])
        else:
            mask = (rows - top - extent[0] / 2) ** 2 + (cols - left - extent[0] / 2) ** 2 < (extent[0] / 2) ** 2
        labels[mask] = rng.integers(len(PALETTE))
    return labels


def optical_from_labels(labels: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 RGB of the palette."""
    return PALETTE[labels].transpose(2, 0, 1).astype(np.uint8)


def sar_from_labels(labels: np.ndarray, rng: np.random.Generator, looks: int = 4) -> np.ndarray:
    """(1, H, W) uint8: the grey level of each colour times gamma speckle of ``looks`` looks."""
    speckle = rng.gamma(looks, 1.0 / looks, labels.shape)
    return np.clip(GREY[labels] * speckle, 0, 255).astype(np.uint8)[None]


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """An 8-bit PNG or GeoTIFF (by suffix) without georeferencing, as the paired sets are released."""
    driver = "PNG" if path.suffix == ".png" else "GTiff"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver=driver, height=pixels.shape[1], width=pixels.shape[2],
                           count=pixels.shape[0], dtype=pixels.dtype.name) as out:
            out.write(pixels)
    return path


def write_pairs(folder: Path, count: int, seed: int, name: str = "pairs.csv") -> Path:
    """``count`` optical (3-band) / SAR (1-band) pairs, PNG and TIF mixed, and a CSV manifest of relative paths."""
    rng = np.random.default_rng(seed)
    (folder / "optical").mkdir(parents=True, exist_ok=True)
    (folder / "sar").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        suffix = ".png" if index % 2 else ".tif"
        labels = shapes_image(rng)
        write_image(folder / "optical" / f"{seed}_{index}{suffix}", optical_from_labels(labels))
        write_image(folder / "sar" / f"{seed}_{index}{suffix}", sar_from_labels(labels, rng))
        rows.append({"optical": f"optical/{seed}_{index}{suffix}", "sar": f"sar/{seed}_{index}{suffix}"})
    manifest = folder / name
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["optical", "sar"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="session")
def paired_set(tmp_path_factory):
    """48 training pairs and 16 held-out pairs."""
    folder = tmp_path_factory.mktemp("pairs")
    return {"train": write_pairs(folder, 48, seed=1, name="train.csv"),
            "val": write_pairs(folder, 16, seed=2, name="val.csv")}


@pytest.fixture(scope="session")
def small_teacher(tmp_path_factory):
    """A tiny random QuickGELU CLIP at 112 pixels, saved as an open_clip checkpoint.

    Its class embedding and the CLS position are zeroed: in a random ViT they dominate the
    CLS token (every image's CLS would be nearly the same vector); without them the CLS
    depends on the image, as a trained CLIP's does.
    """
    model = tiny_clip(SMALL, seed=5)
    with torch.no_grad():
        model.visual.class_embedding.zero_()
        model.visual.positional_embedding[0].zero_()
    return save_open_clip_checkpoint(model, tmp_path_factory.mktemp("teacher") / "small.pt")


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    """The tiny random CLIP at 224 pixels (what the segment pipeline's windows expect)."""
    return save_open_clip_checkpoint(tiny_clip(TINY, seed=6), tmp_path_factory.mktemp("teacher") / "tiny.pt")


def write_config(path: Path, manifest: Path, teacher: Path, out_dir: Path, **sections: dict) -> Path:
    """A YAML config for a small CPU run; ``sections`` update the defaults below section by section."""
    import yaml

    config = {
        "data": {"train_manifest": str(manifest)},
        "model": {"teacher_weights": str(teacher)},
        "optim": {"lr": 2e-4, "warmup_steps": 2},
        "train": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 8, "device": "cpu", "num_workers": 0,
                  "log_every": 1, "checkpoint_every": 5},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path
