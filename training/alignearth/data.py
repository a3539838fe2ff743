"""Paired optical-SAR images: the manifest, checks, and the dataset with the same geometry on both.

A manifest is a CSV with the columns ``optical,sar`` or a JSON list of ``{"optical": ...,
"sar": ...}``; relative paths are read from the manifest's folder. Images are 8-bit, 1 band
(repeated to 3) or 3 bands, the two of a pair of the same size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.errors import UserInputError
from backend.inference.slide import normalise_pixels
from training.common.augment import GeometryOptions, apply_geometry, resize_square, sample_geometry
from training.common.images import image_size, read_uint8_image
from training.common.manifest import read_manifest
from training.common.sampling import SampleKey
from training.common.seeding import derived_seed

PAIR_COLUMNS = ("optical", "sar")


@dataclass(frozen=True)
class ImagePair:
    optical: Path
    sar: Path


def read_pairs(manifest: str | Path) -> list[ImagePair]:
    """The pairs a manifest lists (paths resolved, not yet opened)."""
    return [ImagePair(row["optical"], row["sar"]) for row in read_manifest(manifest, PAIR_COLUMNS)]


def _mismatch(pair: ImagePair, optical: tuple[int, int], sar: tuple[int, int]) -> UserInputError:
    return UserInputError(f"the pair {pair.optical} / {pair.sar} has images of different sizes "
                          f"({optical[1]}x{optical[0]} and {sar[1]}x{sar[0]} pixels); co-register them to the same "
                          "grid, or remove the pair from the manifest.")


def check_pairs(pairs: list[ImagePair]) -> None:
    """Open every image's header: readable, 8-bit, 1 or 3 bands, same size within a pair."""
    for pair in pairs:
        optical, sar = image_size(pair.optical), image_size(pair.sar)
        if optical != sar:
            raise _mismatch(pair, optical, sar)


class PairedImages(Dataset):
    """CLIP-normalised ``{"optical": (3, S, S), "sar": (3, S, S)}`` float32 tensors per pair.

    Indexed by a ``SampleKey`` (training): the random geometry is drawn from (seed, epoch,
    index) and applied to both images alike. Indexed by an int, or without ``geometry``:
    the whole images resized to S x S.
    """

    def __init__(self, pairs: list[ImagePair], size: int, geometry: GeometryOptions | None = None,
                 seed: int = 0) -> None:
        self.pairs, self.size, self.geometry, self.seed = pairs, size, geometry, seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: SampleKey | int) -> dict[str, torch.Tensor]:
        index = key.index if isinstance(key, SampleKey) else int(key)
        pair = self.pairs[index]
        optical = torch.from_numpy(read_uint8_image(pair.optical)).float()
        sar = torch.from_numpy(read_uint8_image(pair.sar)).float()
        if optical.shape != sar.shape:
            raise _mismatch(pair, tuple(optical.shape[1:]), tuple(sar.shape[1:]))
        if self.geometry is not None and isinstance(key, SampleKey):
            rng = np.random.default_rng(derived_seed(self.seed, key.epoch, key.index))
            geometry = sample_geometry(rng, optical.shape[1], optical.shape[2], self.geometry)
            optical, sar = (apply_geometry(image, geometry, self.size) for image in (optical, sar))
        else:
            optical, sar = resize_square(optical, self.size), resize_square(sar, self.size)
        return {"optical": normalise_pixels(optical), "sar": normalise_pixels(sar)}
