"""Generated coloured-shape images with captions and boxes, tiny random CLIPs, and config files for the FarSLIP tests.

Captions come from a fixed vocabulary ("a red circle", "a blue square", ...): 4 colours x 3
shapes = 12 classes, so zero-shot chance is 1/12. Stage I images hold one shape; stage II
images two, each in a box labelled with its colour and shape.
"""
from __future__ import annotations

import csv
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.checkpoints import TINY, save_open_clip_checkpoint, tiny_clip
from tests.training.conftest import write_image

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 230), "yellow": (230, 210, 50)}
SHAPES = ("circle", "square", "triangle")
CLASSES = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
SIZE = 64
# A 64-pixel CLIP with 16-pixel patches (a 4 x 4 grid): small enough for dozens of CPU steps.
SMALL = replace(TINY, image_size=SIZE, vision_width=64, vision_layers=2)


def draw(pixels: np.ndarray, colour: str, shape: str, top: int, left: int, extent: int) -> tuple[int, int, int, int]:
    """Paint a shape into (3, H, W) pixels within the square at (top, left); its box (x1, y1, x2, y2)."""
    rows, cols = np.mgrid[0:extent, 0:extent]
    if shape == "circle":
        mask = (rows - (extent - 1) / 2) ** 2 + (cols - (extent - 1) / 2) ** 2 <= (extent / 2) ** 2
    elif shape == "square":
        mask = np.ones((extent, extent), bool)
    else:  # an upward triangle
        mask = np.abs(cols - (extent - 1) / 2) <= rows / 2 + 0.5
    window = pixels[:, top:top + extent, left:left + extent]
    window[:, mask] = np.array(COLOURS[colour], np.uint8)[:, None]
    return left, top, left + extent, top + extent


def background(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    return np.clip(70 + rng.normal(0, 8, (1, size, size)), 0, 255).astype(np.uint8).repeat(3, axis=0)


def one_shape_image(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A 64-pixel image of one shape (24-40 pixels) and its caption."""
    pixels = background(rng)
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    extent = int(rng.integers(24, 41))
    top, left = rng.integers(0, SIZE - extent + 1, 2)
    draw(pixels, colour, shape, int(top), int(left), extent)
    return pixels, f"a {colour} {shape}"


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.transpose(1, 2, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_shards(folder: Path, count: int, seed: int, per_shard: int = 40) -> Path:
    """webdataset shards of ``count`` one-shape images: ``NNNNN.png`` + ``NNNNN.txt`` in each .tar."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, count, per_shard):
        with tarfile.open(folder / f"shard-{start // per_shard:04d}.tar", "w") as archive:
            for index in range(start, min(count, start + per_shard)):
                pixels, caption = one_shape_image(rng)
                for name, data in ((f"{index:05d}.png", png_bytes(pixels)), (f"{index:05d}.txt", caption.encode())):
                    member = tarfile.TarInfo(name)
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
    return folder


def write_caption_list(folder: Path, count: int, seed: int) -> Path:
    """``count`` one-shape PNG files and a CSV ``image,caption`` list of them (relative paths)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        pixels, caption = one_shape_image(rng)
        write_image(folder / "images" / f"{index}.png", pixels)
        rows.append({"image": f"images/{index}.png", "caption": caption})
    path = folder / "captions.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    return path


# Over 77 tokens: the long captions differ only after CLIP's usual context, so only a 248-token tower tells them apart.
LONG_FILLER = ("this is a synthetic overhead image drawn for a test of region and caption alignment in a remote "
               "sensing model; the ground is dark grey with a little noise, there are no roads, no buildings, no "
               "trees, no water and no fields, and nothing else is in the scene apart from two shapes, one in the "
               "left half and one in the right half, which are named at the very end of this long caption, so read "
               "it all: ")


def write_annotations(folder: Path, count: int, seed: int) -> Path:
    """``count`` images with two shapes side by side, MGRS-200k-style JSON: captions and a box per shape."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        pixels = background(rng)
        boxes, names = [], []
        for left_half in (True, False):
            colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
            extent = int(rng.integers(20, 29))
            top = int(rng.integers(0, SIZE - extent + 1))
            left = int(rng.integers(0, SIZE // 2 - extent + 1)) + (0 if left_half else SIZE // 2)
            boxes.append({"box": list(draw(pixels, colour, shape, top, left, extent)), "category": f"{colour} {shape}"})
            names.append(f"a {colour} {shape}")
        write_image(folder / "images" / f"{index}.png", pixels)
        items.append({"image": f"images/{index}.png", "short_caption": f"{names[0]} and {names[1]}",
                      "long_caption": f"{LONG_FILLER}{names[0]} on the left and {names[1]} on the right",
                      "boxes": boxes})
    path = folder / "annotations.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    """96 training pairs in 3 shards; 48 held-out pairs in one."""
    root = tmp_path_factory.mktemp("shards")
    return {"train": write_shards(root / "train", 96, seed=1),
            "val": write_shards(root / "val", 48, seed=2, per_shard=48)}


@pytest.fixture(scope="session")
def regions(tmp_path_factory):
    """64 training images with two boxes each; 32 held-out ones."""
    root = tmp_path_factory.mktemp("regions")
    return {"train": write_annotations(root / "train", 64, seed=3), "val": write_annotations(root / "val", 32, seed=4)}


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory):
    """The 64-pixel random QuickGELU CLIP (context 77) as an open_clip checkpoint; CLS made image-dependent
    as in tests/training/conftest.py's small teacher."""
    model = tiny_clip(SMALL, seed=7)
    with torch.no_grad():
        model.visual.class_embedding.zero_()
        model.visual.positional_embedding[0].zero_()
    return save_open_clip_checkpoint(model, tmp_path_factory.mktemp("clip") / "small.pt")


def write_config(path: Path, stage: int, train_data: Path, clip: Path, out_dir: Path, **sections: dict) -> Path:
    """A YAML config for a small CPU run of ``stage``; ``sections`` update the defaults below section by section."""
    import yaml

    boxes = {"min_box_size": 8, "max_boxes": 2} if stage == 2 else {}
    defaults = {
        "data": {"train_data": str(train_data), **boxes},
        "model": {"clip_weights": str(clip), "long_text": False},
        "optim": {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 2},
        "train": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 16, "device": "cpu", "num_workers": 0,
                  "log_every": 1, "checkpoint_every": 5},
    }
    merged = {name: {**defaults.get(name, {}), **sections.get(name, {})} for name in {*defaults, *sections}}
    path.write_text(yaml.safe_dump({"stage": stage, **merged}))
    return path
