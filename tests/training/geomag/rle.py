"""COCO RLE encoding for building annotation files in tests (the inverse of training.geomag.masks.decode_rle)."""
from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of a boolean (H, W) mask, starting with a run of 0s (maybe empty)."""
    flat = np.asarray(mask, bool).T.reshape(-1)
    counts, current, length = [], False, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            counts.append(length)
            current, length = bool(value), 1
    counts.append(length)
    return counts


def compress(counts: list[int]) -> str:
    """pycocotools' text form of run lengths."""
    out = []
    for index, count in enumerate(counts):
        value = count - counts[index - 2] if index > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append(chr(48 + (group | 0x20 if more else group)))
    return "".join(out)


def encode(mask: np.ndarray, compressed: bool = True) -> dict:
    counts = runs(mask)
    return {"size": list(mask.shape), "counts": compress(counts) if compressed else counts}
