"""Images for SimFeatUp: a folder (searched recursively) or a manifest, and random square crops of them.

SimFeatUp needs raw images only (the paper: 16k images of Million-AID). Any image GDAL
reads works (PNG, JPEG, GeoTIFF), 8-bit, 1 band (repeated to 3) or 3 bands. Each training
item is one random crop of ``crop_size`` pixels, reflect-padded first where the image is
smaller (as torchvision's ``RandomCrop(pad_if_needed=True, padding_mode="reflect")``),
drawn from (seed, epoch, index) so resumed runs see the same crops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.errors import UserInputError
from backend.inference.slide import normalise_pixels
from training.common.images import image_size, read_uint8_image
from training.common.manifest import read_manifest
from training.common.sampling import SampleKey
from training.common.seeding import derived_seed

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2")
MANIFEST_COLUMNS = ("image",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # FeatUp's normalisation, which the authors trained with
IMAGENET_STD = (0.229, 0.224, 0.225)


def list_images(source: str | Path, key: str = "data.images") -> list[Path]:
    """The images of a folder (recursively, sorted; hidden files and folders skipped) or of a manifest.

    A manifest is a CSV whose first line is ``image`` or a JSON list of ``{"image": path}``;
    relative paths are read from the manifest's folder.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        images = sorted(item for item in path.rglob("*") if item.suffix.lower() in IMAGE_SUFFIXES and item.is_file()
                        and not any(part.startswith(".") for part in item.relative_to(path).parts))
        if not images:
            raise UserInputError(f"{key}: the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                                 "give a folder of RGB images, or a CSV/JSON list of them.")
        return images
    if path.suffix.lower() in (".csv", ".json"):
        return [row["image"] for row in read_manifest(path, MANIFEST_COLUMNS)]
    if not path.exists():
        raise UserInputError(f"{key}: {path} does not exist; give a folder of images, or a CSV/JSON list of them "
                             "(see training/README.md).")
    raise UserInputError(f"{key}: {path} is neither a folder nor a .csv/.json list; give the folder that holds "
                         "the images.")


def check_images(paths: list[Path]) -> None:
    """Open every image's header: readable, 8-bit, 1 or 3 bands."""
    for path in paths:
        image_size(path)


def normaliser(kind: str):
    """(3, H, W) 0-255 values -> float32 normalised with ImageNet's (FeatUp's) or CLIP's mean and std."""
    if kind == "clip":
        return normalise_pixels
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return lambda pixels: (pixels.float() / 255.0 - mean) / std


def pad_to(pixels: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) reflect-padded on both sides of each axis shorter than ``size`` by the shortfall."""
    rows, cols = max(0, size - pixels.shape[1]), max(0, size - pixels.shape[2])
    if not rows and not cols:
        return pixels
    return np.pad(pixels, ((0, 0), (rows, rows), (cols, cols)), mode="reflect")


def random_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size crop at a uniform position (after ``pad_to``)."""
    pixels = pad_to(pixels, size)
    top = int(rng.integers(0, pixels.shape[1] - size + 1))
    left = int(rng.integers(0, pixels.shape[2] - size + 1))
    return pixels[:, top:top + size, left:left + size]


def centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    pixels = pad_to(pixels, size)
    top, left = (pixels.shape[1] - size) // 2, (pixels.shape[2] - size) // 2
    return pixels[:, top:top + size, left:left + size]


class ImageCrops(Dataset):
    """``{"image": (3, S, S) float32}`` normalised crops.

    Indexed by a ``SampleKey`` (training): a random crop drawn from (seed, epoch, index).
    Indexed by an int (validation): the centre crop.
    """

    def __init__(self, paths: list[Path], crop_size: int, normalisation: str = "imagenet", seed: int = 0) -> None:
        self.paths, self.crop_size, self.seed = paths, crop_size, seed
        self.normalisation = normalisation

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: SampleKey | int) -> dict[str, torch.Tensor]:
        index = key.index if isinstance(key, SampleKey) else int(key)
        pixels = read_uint8_image(self.paths[index])
        if isinstance(key, SampleKey):
            rng = np.random.default_rng(derived_seed(self.seed, key.epoch, key.index))
            pixels = random_crop(pixels, self.crop_size, rng)
        else:
            pixels = centre_crop(pixels, self.crop_size)
        return {"image": normaliser(self.normalisation)(torch.from_numpy(np.ascontiguousarray(pixels)))}
