"""What every GeoMag data source yields: an image, a prompt, the answer to learn and its masks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backend.errors import UserInputError
from training.common.images import read_uint8_image

PILLOW_SUFFIXES = (".jpg", ".jpeg", ".png")
REFERRING_ANSWER = "Sure, it is [SEG]."  # GeoMagConfig.answer_template's default (LISA's answer)


@dataclass(frozen=True)
class ReferringSample:
    """``image`` (H, W, 3) uint8 RGB; ``prompt`` the user's text; ``answer`` the text to learn, with one
    ``[SEG]`` per mask; ``masks`` (M, H, W) bool, in the order of the answer's ``[SEG]`` tokens."""

    image: np.ndarray
    prompt: str
    answer: str
    masks: np.ndarray


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit image as (H, W, 3) uint8: JPEG and PNG decoded with Pillow, as the sets' authors read
    them (GDAL's JPEG decoder differs by a few levels); anything else (GeoTIFF) with rasterio."""
    path = Path(path)
    if path.suffix.lower() not in PILLOW_SUFFIXES:
        return np.ascontiguousarray(read_uint8_image(path).transpose(1, 2, 0))
    require_path(path, "image", "fix its path in the annotations, or put the image there.")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB")).copy()
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read image {path} ({type(error).__name__}); replace the damaged file.") from None


def read_binary_mask(path: Path) -> np.ndarray:
    """A mask image (one band, or its first) as (H, W) bool: any non-zero pixel is the target."""
    return read_uint8_image(path)[0] != 0


def check_size(image: np.ndarray, masks: np.ndarray, where: str) -> None:
    if masks.shape[1:] != image.shape[:2]:
        raise UserInputError(f"{where}: the mask is {masks.shape[2]} x {masks.shape[1]} pixels but the image "
                             f"{image.shape[1]} x {image.shape[0]}; the annotation does not belong to this image.")


def require_path(path: Path, what: str, fix: str) -> Path:
    """``path`` when it exists, else one sentence naming what is missing and the fix."""
    if not path.exists():
        raise UserInputError(f"{what} {path} does not exist; {fix}")
    return path
