"""Per-image predictions as files: ``<folder>/<image id>.png``, one band of class indices.

``--save-pred`` writes them (a paletted PNG: image viewers show colours, GDAL and Pillow read
the indices); ``--predictions`` scores a folder of them, from an earlier run or another tool.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from backend.errors import UserInputError
from backend.eval.datasets.base import read_raw


def prediction_path(folder: Path, sample_id: str) -> Path:
    return folder / f"{sample_id}.png"


def palette() -> list[int]:
    """The class rasters' display colours for classes 0-254; 255 (no class) is black."""
    from backend.raster.writers import class_colors

    return [channel for colour in class_colors(255) + [(0, 0, 0)] for channel in colour]


def write_prediction(folder: Path, sample_id: str, classes: np.ndarray) -> Path:
    """Write a class map (H, W) uint8 as a paletted PNG, renamed into place when complete."""
    from PIL import Image

    path = prediction_path(folder, sample_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(classes, dtype=np.uint8), mode="P")
    image.putpalette(palette())
    temporary = path.with_name(path.name + ".part")
    image.save(temporary, format="PNG")
    os.replace(temporary, path)
    return path


def read_prediction(folder: Path, sample_id: str) -> np.ndarray:
    """The class map saved for ``sample_id`` (its first band)."""
    path = prediction_path(folder, sample_id)
    if not path.is_file():
        raise UserInputError(f"{{predictions}} {folder} has no {path.relative_to(folder)} for image {sample_id}; "
                             "give a folder with one <image id>.png class map per image.", "predictions")
    return read_raw(path)[0]
