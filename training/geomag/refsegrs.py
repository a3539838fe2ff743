"""RefSegRS as released (LGCE, zhu-xlab/rrsis; huggingface.co/datasets/JessicaYuan/RefSegRS):

    ROOT/images/ID.tif                 the images (512 x 512 SkyScapes tiles, RGB)
    ROOT/masks/ID.tif                  the target masks (one band, 255 on the target, 0 elsewhere)
    ROOT/output_phrase_SPLIT.txt       one sample a line: "ID expression", SPLIT in train, val, test

An image appears on several lines, one per expression. Any non-zero mask pixel is the target.
"""
from __future__ import annotations

import re
from pathlib import Path

from backend.errors import UserInputError
from training.geomag.samples import (REFERRING_ANSWER, ReferringSample, check_size, read_binary_mask, read_rgb,
                                     require_path)

SPLITS = ("train", "val", "test")
LINE = re.compile(r"(\d+)\s+(.*\S)")
FIX = "give the RefSegRS folder holding images/, masks/ and output_phrase_{train,val,test}.txt."


class RefSegRS:
    """The samples of one split of RefSegRS, in the order of its phrase file; images read on access."""

    def __init__(self, root: str | Path, split: str = "train", answer: str = REFERRING_ANSWER) -> None:
        if split not in SPLITS:
            raise UserInputError(f"RefSegRS has no split {split!r}; use one of {', '.join(SPLITS)}.")
        root = require_path(Path(root).expanduser(), "RefSegRS folder", FIX)
        phrases = require_path(root / f"output_phrase_{split}.txt", "RefSegRS phrase file", FIX)
        self.image_dir = require_path(root / "images", "RefSegRS image folder", FIX)
        self.mask_dir = require_path(root / "masks", "RefSegRS mask folder", FIX)
        self.answer = answer
        self.items: list[tuple[str, str]] = []
        for number, line in enumerate(phrases.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            match = LINE.fullmatch(line.strip())
            if match is None:
                raise UserInputError(f"{phrases} line {number} is not 'ID expression'; fix or remove it.")
            self.items.append((match.group(1), match.group(2)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ReferringSample:
        name, expression = self.items[index]
        image = read_rgb(self.image_dir / f"{name}.tif")
        mask = read_binary_mask(self.mask_dir / f"{name}.tif")[None]
        check_size(image, mask, f"RefSegRS sample {name}")
        return ReferringSample(image, expression, self.answer, mask)
