"""GeoPixelD as released (GeoPixel, mbzuai-oryx/GeoPixel: docs/dataset.md, docs/finetune.md, data_mix.py;
annotations at huggingface.co/datasets/MBZUAI/GeoPixelD, images: iSAID/DOTA-v1.0 cut to 800 x 800):

    GeoPixelD.json           [{"id", "conversations": [{"from": "human", "value": Q},
                                                       {"from": "bot", "value": A}],
                               "image": PATH, "polygons": PATH}]   (or "segmentation": [RLE, ...])
    GeoPixelD/train/NAME.png, NAME.json                            (test/ alike)

A is grounded text: ``<p> phrase </p> [SEG]``, one mask per ``[SEG]``, in order. The
per-image JSON holds ``{"id", "img", "gcg_description", "polygons"}`` with ``polygons[k]``
the list of polygons of the k-th mask, each ``[[x, y], ...]`` in pixels, filled like
``cv2.fillPoly``. The release's paths ("data/GeoPixelD/train/...") are relative to the
folder the authors run in; here a relative path is read from ``image_root`` when given, else
from the list's folder, else from its parent. A folder of per-image JSONs (the test split)
reads too: the prompt is then ``gcg_prompt`` and the answer the ``gcg_description``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserInputError
from training.geomag.masks import decode_rle, fill_polygons_pixels
from training.geomag.samples import ReferringSample, check_size, read_rgb, require_path

SEG = "[SEG]"
GCG_PROMPT = ("Could you perform an in-depth analysis of this photo, including interleaved segmentation masks to map "
              "each part of your answer to specific image object?")  # the release's example question
FIX = "give GeoPixelD.json (the annotation list) or a folder of its per-image JSON files."


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"{path} is not readable JSON ({type(error).__name__}); replace it with the "
                             "released file.") from None


def _first_exchange(conversations: Any, where: str) -> tuple[str, str]:
    """The first human turn and the bot turn after it (later turns are not used)."""
    turns = conversations if isinstance(conversations, list) else []
    for index, turn in enumerate(turns[:-1]):
        if str(turn.get("from", "")).lower() in ("human", "user"):
            return str(turn["value"]).strip(), str(turns[index + 1]["value"]).strip()
    raise UserInputError(f"{where} has no human turn followed by an answer under 'conversations'; fix the record.")


class GeoPixelD:
    """GeoPixelD samples: prompt, grounded answer and its masks, images read on access."""

    def __init__(self, source: str | Path, image_root: str | Path | None = None, gcg_prompt: str = GCG_PROMPT) -> None:
        source = require_path(Path(source).expanduser(), "GeoPixelD annotations", FIX)
        self.roots = [Path(image_root).expanduser()] if image_root else [source.parent, source.parent.parent]
        if source.is_dir():
            files = sorted(path for path in source.glob("*.json"))
            if not files:
                raise UserInputError(f"GeoPixelD folder {source} holds no .json files; {FIX}")
            self.records = [{"image": str(path.with_suffix(".png")), "polygons": str(path),
                             "conversations": None} for path in files]
            self.roots = [source]
        else:
            self.records = _read_json(source)
            if not isinstance(self.records, list):
                raise UserInputError(f"{source} is not a list of conversation records; {FIX}")
        self.gcg_prompt = gcg_prompt

    def __len__(self) -> int:
        return len(self.records)

    def resolve(self, text: str, where: str) -> Path:
        path = Path(text).expanduser()
        if path.is_absolute():
            return require_path(path, f"{where}: file", "fix the path in the record.")
        for root in self.roots:
            if (root / path).exists():
                return root / path
        raise UserInputError(f"{where}: {text} is not under {' or '.join(str(root) for root in self.roots)}; "
                             "set image_root to the folder the release's relative paths start from.")

    def __getitem__(self, index: int) -> ReferringSample:
        record = self.records[index]
        where = f"GeoPixelD record {record.get('id', index)}"
        image = read_rgb(self.resolve(record["image"], where))
        polygons_file = record.get("polygons", record.get("polygon"))
        data = _read_json(self.resolve(polygons_file, where)) if polygons_file else {}
        if record.get("conversations") is None and "conversation" not in record:
            prompt, answer = self.gcg_prompt, str(data.get("gcg_description", "")).strip()
        else:
            prompt, answer = _first_exchange(record.get("conversations", record.get("conversation")), where)
        height, width = image.shape[:2]
        if polygons_file:
            masks = [fill_polygons_pixels(polygons, height, width) for polygons in data.get("polygons", [])]
        else:
            masks = [decode_rle(rle, where) for rle in record.get("segmentation") or []]
        if len(masks) != answer.count(SEG):
            raise UserInputError(f"{where} has {len(masks)} masks for {answer.count(SEG)} {SEG} tokens in its "
                                 "answer; the annotation is damaged.")
        stacked = np.stack(masks) if masks else np.zeros((0, height, width), bool)
        check_size(image, stacked, where)
        return ReferringSample(image, prompt, answer, stacked)
