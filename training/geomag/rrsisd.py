"""RRSIS-D as released (RMSIN, Lsan2401/RMSIN), in the refer/RefCOCO layout:

    ROOT/rrsisd/refs(unc).p              a pickled list of refs: ref_id, ann_id, image_id, split
                                         ("train", "val", "test"), sentences [{"raw", "sent", ...}]
    ROOT/rrsisd/instances.json           COCO: images [{id, file_name, height, width}],
                                         annotations [{id, image_id, segmentation, ...}]
    ROOT/images/rrsisd/JPEGImages/FILE   the images (file_name of the image record)

A segmentation is a list of COCO polygons or a COCO RLE (compressed or not), as the REFER
API reads either. One sample per (ref, sentence): the sentence's ``raw`` text is the prompt
(what RMSIN tokenises), the referring answer the answer, the ref's annotation the mask.
"""
from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserInputError
from training.geomag.masks import decode_rle, fill_polygons_coco
from training.geomag.samples import REFERRING_ANSWER, ReferringSample, check_size, read_rgb, require_path

SPLITS = ("train", "val", "test")
FIX = "give the folder that holds rrsisd/ and images/rrsisd/JPEGImages (RMSIN's refer/data)."


class _PlainUnpickler(pickle.Unpickler):
    """Reads lists, dicts, texts and numbers only: a refs file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def load_refs(path: Path) -> list[dict]:
    try:
        refs = _PlainUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        raise UserInputError(f"{path} is not a refs pickle of plain lists and dicts ({error}); "
                             "replace it with the released refs(unc).p.") from None
    if not isinstance(refs, list):
        raise UserInputError(f"{path} holds a {type(refs).__name__}, not a list of refs; give the released file.")
    return refs


def annotation_mask(annotation: dict, height: int, width: int, where: str) -> np.ndarray:
    """The (H, W) bool mask of a COCO annotation: polygons filled, or an RLE decoded."""
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        return decode_rle(segmentation, where)
    if isinstance(segmentation, list) and segmentation and all(isinstance(p, list) for p in segmentation):
        return fill_polygons_coco(segmentation, height, width)
    raise UserInputError(f"{where} has no polygons or RLE under 'segmentation'; the annotation is damaged.")


class RRSISD:
    """The samples of one split of RRSIS-D, in the order of the refs file; images read on access."""

    def __init__(self, root: str | Path, split: str = "train", answer: str = REFERRING_ANSWER) -> None:
        if split not in SPLITS:
            raise UserInputError(f"RRSIS-D has no split {split!r}; use one of {', '.join(SPLITS)}.")
        root = require_path(Path(root).expanduser(), "RRSIS-D folder", FIX)
        refs = load_refs(require_path(root / "rrsisd" / "refs(unc).p", "RRSIS-D refs file", FIX))
        instances = require_path(root / "rrsisd" / "instances.json", "RRSIS-D annotation file", FIX)
        self.image_dir = require_path(root / "images" / "rrsisd" / "JPEGImages", "RRSIS-D image folder", FIX)
        try:
            coco = json.loads(instances.read_text(encoding="utf-8"))
            self.images = {image["id"]: image for image in coco["images"]}
            self.annotations = {annotation["id"]: annotation for annotation in coco["annotations"]}
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise UserInputError(f"{instances} is not a COCO annotation file ({type(error).__name__}: {error}); "
                                 "replace it with the released instances.json.") from None
        self.answer = answer
        self.items: list[tuple[dict, str]] = []
        for ref in refs:
            if ref.get("split") == split or (split == "test" and "test" in str(ref.get("split"))):
                self.items += [(ref, sentence["raw"]) for sentence in ref["sentences"]]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ReferringSample:
        ref, sentence = self.items[index]
        where = f"RRSIS-D ref {ref['ref_id']}"
        record = self.images.get(ref["image_id"])
        annotation = self.annotations.get(ref["ann_id"])
        if record is None or annotation is None:
            raise UserInputError(f"{where} names image {ref['image_id']} / annotation {ref['ann_id']}, which "
                                 "instances.json lacks; the refs file and instances.json are from different releases.")
        image = read_rgb(self.image_dir / record["file_name"])
        mask = annotation_mask(annotation, record.get("height", image.shape[0]), record.get("width", image.shape[1]),
                               where)[None]
        check_size(image, mask, where)
        return ReferringSample(image, sentence, self.answer, mask)
