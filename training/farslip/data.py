"""FarSLIP's training data: captioned images with local crops (stage I), captioned images with boxes (stage II).

Stage I reads webdataset shards — uncompressed tar files in which an image and its caption
share a name (``0001.jpg`` + ``0001.txt``; RS5M's ``0001.img_content`` + ``0001.caption``
too), read in place by offset — or a caption list: a CSV whose first line names the
columns ``image,caption``, or JSON ``[{"image": ..., "caption": ...}]``, relative image
paths read from the list's folder.

Stage II reads a JSON list in the layout of MGRS-200k: per image its path, a short and a
long caption, and boxes in the image's pixels with a category each (the keys are in
``read_annotations``).

Items are drawn from (seed, epoch, index), so resumed runs see the same crops and boxes.
Pixels are resized to the CLIP's square input and normalised with CLIP's mean and std.
"""
from __future__ import annotations

import csv
import io
import json
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.errors import UserInputError
from backend.inference.slide import normalise_pixels
from backend.torchvision_compat import import_open_clip
from training.common.augment import GeometryOptions, apply_geometry, resize_square, sample_geometry
from training.common.images import image_size, read_uint8_image
from training.common.manifest import read_manifest
from training.common.sampling import SampleKey
from training.common.seeding import derived_seed

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "img_content"})
CAPTION_EXTENSIONS = frozenset({"txt", "caption"})


def tokenize(texts: Sequence[str], context: int) -> torch.Tensor:
    """CLIP's BPE tokens (len(texts), context), cut to ``context`` with the end token kept."""
    return import_open_clip().tokenize(list(texts), context_length=context)


class CaptionedImages(Protocol):
    """Image-caption pairs by index."""

    def __len__(self) -> int: ...

    def pixels(self, index: int) -> np.ndarray:
        """(3, H, W) uint8."""

    def caption(self, index: int) -> str: ...


class ShardSamples:
    """The samples of webdataset shards: an image and a caption under one name, read by offset."""

    def __init__(self, shards: list[Path]) -> None:
        self.shards = shards
        rows = [row for number, shard in enumerate(shards) for row in _index_shard(number, shard)]
        if not rows:
            raise UserInputError(f"the shards {shards[0]}{' ...' if len(shards) > 1 else ''} hold no image with a "
                                 f"caption of the same name (images: {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                                 "captions: .txt, .caption); give webdataset shards of image-caption pairs.")
        self.table = np.asarray(rows, dtype=np.int64)  # shard, image offset, image size, caption offset, caption size

    def __len__(self) -> int:
        return len(self.table)

    def _bytes(self, index: int, column: int) -> bytes:
        shard, offset, size = self.table[index, 0], self.table[index, column], self.table[index, column + 1]
        with open(self.shards[shard], "rb") as handle:
            handle.seek(int(offset))
            return handle.read(int(size))

    def pixels(self, index: int) -> np.ndarray:
        return decode_image(self._bytes(index, 1), f"{self.shards[self.table[index, 0]]} (sample {index})")

    def caption(self, index: int) -> str:
        return self._bytes(index, 3).decode("utf-8", errors="replace").strip()


def _split_name(name: str) -> tuple[str, str]:
    """webdataset's grouping: the key is the path up to the first dot of the file name, the rest the extension."""
    folder, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return f"{folder}/{stem}" if folder else stem, extension.lower()


def _index_shard(number: int, shard: Path) -> list[tuple[int, int, int, int, int]]:
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(shard, "r:") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                key, extension = _split_name(member.name)
                kind = ("image" if extension in IMAGE_EXTENSIONS
                        else "caption" if extension in CAPTION_EXTENSIONS else None)
                if kind is not None:
                    samples.setdefault(key, {}).setdefault(kind, (member.offset_data, member.size))
    except (tarfile.TarError, OSError) as error:
        reason = str(error).strip().splitlines()[0][:100] if str(error).strip() else type(error).__name__
        raise UserInputError(f"cannot read shard {shard} ({reason}); give uncompressed tar files (webdataset "
                             "shards) or replace the damaged one.") from None
    return [(number, *parts["image"], *parts["caption"]) for parts in samples.values()
            if "image" in parts and "caption" in parts]


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, WebP, ...) as (3, H, W) uint8 RGB."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserInputError(f"cannot decode the image of {where} ({type(error).__name__}); replace the sample "
                             "or remove it from the shard.") from None
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


class ListedImages:
    """Image files and their captions, from a caption list."""

    def __init__(self, paths: list[Path], captions: list[str]) -> None:
        self.paths, self.captions = paths, captions

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, index: int) -> np.ndarray:
        return read_uint8_image(self.paths[index])

    def caption(self, index: int) -> str:
        return self.captions[index]


def read_caption_list(path: Path) -> ListedImages:
    """A CSV (columns ``image,caption``) or JSON list of images and captions; paths resolved, not yet opened."""
    paths = [row["image"] for row in read_manifest(path, ("image",))]
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
        rows = [(f"line {number}", row) for number, row in enumerate(reader, start=2)]
    else:
        rows = [(f"item {number}", item) for number, item in enumerate(json.loads(text))]
    captions = []
    for where, row in rows:
        caption = row.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise UserInputError(f"caption list {path}: {where} has no caption; give every row an 'image' and a "
                                 "'caption'.")
        captions.append(caption.strip())
    return ListedImages(paths, captions)


def read_captioned_images(source: str, key: str = "data.train_data") -> CaptionedImages:
    """Stage I's pairs: a .tar shard, a folder of them (searched recursively), or a .csv/.json caption list."""
    path = Path(source).expanduser()
    if path.is_dir():
        shards = sorted(item for item in path.rglob("*.tar") if item.is_file()
                        and not any(part.startswith(".") for part in item.relative_to(path).parts))
        if not shards:
            raise UserInputError(f"{key}: the folder {path} holds no .tar shards; give a folder of webdataset shards, "
                                 "one shard, or a CSV/JSON caption list.")
        return ShardSamples(shards)
    suffix = path.suffix.lower()
    if suffix in (".tar", ".csv", ".json") and not path.is_file():
        raise UserInputError(f"{key}: {path} does not exist; give webdataset shards or a CSV/JSON caption list "
                             "(see training/README.md).")
    if suffix == ".tar":
        return ShardSamples([path])
    if suffix in (".csv", ".json"):
        return read_caption_list(path)
    raise UserInputError(f"{key}: {path} is neither a folder of .tar shards, a .tar shard nor a .csv/.json caption "
                         "list; give one of those.")


def check_captioned_images(images: CaptionedImages) -> None:
    """Open every listed image's header (readable, 8-bit, 1 or 3 bands); shards are decoded when read."""
    for path in images.paths if isinstance(images, ListedImages) else ():
        image_size(path)


class CaptionedCrops(Dataset):
    """Stage I items, the CLIP-normalised image resized to S x S and its caption's tokens.

    Indexed by a ``SampleKey`` (training): also ``crops`` random resized crops (n, 3, S, S)
    and their ``boxes`` (n, 4) as fractions of the image (x1, y1, x2, y2), drawn from (seed,
    epoch, index). Indexed by an int (evaluation): also the ``caption`` text.
    """

    def __init__(self, images: CaptionedImages, size: int, context: int, crops: int = 4,
                 geometry: GeometryOptions | None = None, seed: int = 0) -> None:
        self.images, self.size, self.context, self.crops, self.seed = images, size, context, crops, seed
        self.geometry = geometry or GeometryOptions(scale=(0.3, 0.7), ratio=(0.75, 4 / 3), hflip=False, vflip=False,
                                                    rot90=False)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: SampleKey | int) -> dict[str, Any]:
        index = key.index if isinstance(key, SampleKey) else int(key)
        pixels = torch.from_numpy(self.images.pixels(index)).float()
        caption = self.images.caption(index)
        item: dict[str, Any] = {"image": normalise_pixels(resize_square(pixels, self.size)),
                                "text": tokenize([caption], self.context)[0]}
        if not isinstance(key, SampleKey):
            item["caption"] = caption
            return item
        rng = np.random.default_rng(derived_seed(self.seed, key.epoch, key.index))
        height, width = pixels.shape[1:]
        boxes = [sample_geometry(rng, height, width, self.geometry) for _ in range(self.crops)]
        item["crops"] = torch.stack([normalise_pixels(apply_geometry(pixels, box, self.size)) for box in boxes])
        item["boxes"] = torch.tensor([[box.left / width, box.top / height, (box.left + box.width) / width,
                                       (box.top + box.height) / height] for box in boxes], dtype=torch.float32)
        return item


@dataclass(frozen=True)
class Region:
    """A box (x1, y1, x2, y2) in the image's pixels and its category."""

    box: tuple[float, float, float, float]
    category: str


@dataclass(frozen=True)
class AnnotatedImage:
    image: Path
    short_caption: str
    long_caption: str
    regions: tuple[Region, ...]


# Our keys first, then the MGRS-200k release's (NJU-LHRS/FarSLIP, open_clip_train/data.py).
IMAGE_KEYS = ("image", "global_filepath")
SHORT_KEYS = ("short_caption", "brief_caption")
LONG_KEYS = ("long_caption", "detailed_caption")
REGION_KEYS = ("boxes", "segment")
BOX_KEYS = ("box", "bbox")


def _first(item: dict, keys: tuple[str, ...]) -> Any:
    return next((item[key] for key in keys if item.get(key) not in (None, "")), None)


def _box(value: Any) -> tuple[float, float, float, float] | None:
    if isinstance(value, dict):
        value = [value.get(name) for name in ("x1", "y1", "x2", "y2")]
    if (isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return tuple(float(v) for v in value)
    return None


def _annotated(item: Any, number: int, path: Path, root: Path) -> AnnotatedImage:
    where = f"annotations {path}: item {number}"
    if not isinstance(item, dict):
        raise UserInputError(f"{where} is not an object; give a JSON list of objects (see training/README.md).")
    image, short, long = _first(item, IMAGE_KEYS), _first(item, SHORT_KEYS), _first(item, LONG_KEYS)
    if not isinstance(image, str):
        raise UserInputError(f"{where} has no image path; give it an 'image' (or 'global_filepath').")
    if not isinstance(short or long, str):
        raise UserInputError(f"{where} has no caption; give it a 'short_caption' or a 'long_caption' "
                             "(or 'brief_caption' / 'detailed_caption').")
    regions = []
    for index, region in enumerate(_first(item, REGION_KEYS) or []):
        box = _box(_first(region, BOX_KEYS)) if isinstance(region, dict) else None
        category = region.get("category") if isinstance(region, dict) else None
        if box is None or not isinstance(category, str) or not category.strip():
            raise UserInputError(f"{where}, box {index}: give a 'box' [x1, y1, x2, y2] in pixels and a 'category'.")
        regions.append(Region(box, category.strip()))
    image_path = Path(image).expanduser()
    return AnnotatedImage(image_path if image_path.is_absolute() else root / image_path,
                          (short or long).strip(), (long or short).strip(), tuple(regions))


def read_annotations(path: str | Path, image_root: str | None = None, key: str = "data.train_data"
                     ) -> list[AnnotatedImage]:
    """The images of an MGRS-200k-style JSON list, relative paths read from ``image_root`` (default: its folder).

    Per item: ``image`` (or ``global_filepath``), ``short_caption`` (or ``brief_caption``),
    ``long_caption`` (or ``detailed_caption``) — one of the two may be left out and the other
    stands in — and ``boxes`` (or ``segment``): ``{"box": [x1, y1, x2, y2], "category": ...}``
    (or ``"bbox": {"x1", "y1", "x2", "y2"}``), in the image's pixels.
    """
    path = Path(path).expanduser()
    if not path.is_file() or path.suffix.lower() != ".json":
        raise UserInputError(f"{key}: {path} is not a JSON file; give the JSON list of images, captions and boxes "
                             "(see training/README.md).")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"annotations {path} cannot be read as JSON ({type(error).__name__}); "
                             "fix the file.") from None
    if not isinstance(data, list) or not data:
        raise UserInputError(f"annotations {path} must hold a non-empty JSON list of images.")
    root = Path(image_root).expanduser() if image_root else path.parent
    return [_annotated(item, number, path, root) for number, item in enumerate(data)]


def check_annotated_images(items: list[AnnotatedImage]) -> None:
    for item in items:
        image_size(item.image)


def categories_of(items: list[AnnotatedImage]) -> list[str]:
    """The distinct categories, sorted: a region's label is its category's place here."""
    return sorted({region.category for item in items for region in item.regions})


class CaptionedRegions(Dataset):
    """Stage II items: the image (3, S, S), its caption's tokens, region crops and their labels.

    ``regions`` (max_boxes, 3, S, S) are the boxes' pixels resized to S x S;
    ``region_labels`` (max_boxes,) the categories' places in ``categories``, -1 where no box.
    Boxes under ``min_box`` or over ``max_box`` pixels a side (as areas) are skipped; in
    training the boxes are shuffled from (seed, epoch, index) before the first ``max_boxes``
    are kept, in evaluation (an int index) they keep their order, and ``caption`` is added.
    """

    def __init__(self, items: list[AnnotatedImage], categories: list[str], size: int, context: int,
                 caption: str = "long", max_boxes: int = 4, min_box: int = 64, max_box: int | None = 1024,
                 seed: int = 0) -> None:
        self.items, self.categories, self.size, self.context = items, categories, size, context
        self.labels = {category: number for number, category in enumerate(categories)}
        self.caption, self.max_boxes, self.min_box, self.max_box, self.seed = caption, max_boxes, min_box, max_box, seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey | int) -> dict[str, Any]:
        index = key.index if isinstance(key, SampleKey) else int(key)
        item = self.items[index]
        pixels = torch.from_numpy(read_uint8_image(item.image)).float()
        caption = item.long_caption if self.caption == "long" else item.short_caption
        order = (np.random.default_rng(derived_seed(self.seed, key.epoch, key.index)).permutation(len(item.regions))
                 if isinstance(key, SampleKey) else range(len(item.regions)))
        regions = torch.zeros(self.max_boxes, 3, self.size, self.size)
        labels = torch.full((self.max_boxes,), -1, dtype=torch.long)
        slot = 0
        for number in order:
            if slot == self.max_boxes:
                break
            window = self._window(item.regions[number].box, *pixels.shape[1:])
            if window is not None:
                top, bottom, left, right = window
                regions[slot] = normalise_pixels(resize_square(pixels[:, top:bottom, left:right], self.size))
                labels[slot] = self.labels[item.regions[number].category]
                slot += 1
        out: dict[str, Any] = {"image": normalise_pixels(resize_square(pixels, self.size)),
                               "text": tokenize([caption], self.context)[0], "regions": regions,
                               "region_labels": labels}
        if not isinstance(key, SampleKey):
            out["caption"] = caption
        return out

    def _window(self, box: tuple[float, float, float, float], height: int, width: int
                ) -> tuple[int, int, int, int] | None:
        """(top, bottom, left, right) pixel bounds of a box clamped to the image; None when its area is out of range."""
        x1, y1, x2, y2 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
        area = (x2 - x1) * (y2 - y1)
        if x2 <= x1 or y2 <= y1 or area < self.min_box ** 2 or (self.max_box and area > self.max_box ** 2):
            return None
        left, top = int(math.floor(x1)), int(math.floor(y1))
        return top, max(int(math.ceil(y2)), top + 1), left, max(int(math.ceil(x2)), left + 1)
