"""SegEarth-OV's single-class sets (its Table 3): building, road and water extraction, foreground class 1.

Each set is read in its released layout (0/255 masks, or xBD's damage-level targets) and in
the layout the authors' config reads after their converters (0/1 masks in ``*_cvt``
folders). The layout under ``root`` is looked for at ``root`` itself, then one and two
folder levels down, so that an archive unpacked with or without its top folder is found.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from backend.eval.datasets.base import (IGNORE, IMAGE_SUFFIXES, DatasetSpec, LabelDecoder, Layout, Sample,
                                        files_with_suffix, pair_folders, with_label_name)

_LIST_DIR = Path(__file__).parent
_SEARCH_DEPTH = 2  # folder levels below root where a layout's base folder may sit


# -- label decoders --------------------------------------------------------------------------------

def _at_least(threshold: int) -> LabelDecoder:
    """A released mask: first-band values >= ``threshold`` are the foreground (1), the rest background (0).

    Unlike ``base.binary`` a mask is never taken for 0/1 already, so the faint compression
    noise of a JPEG mask with no foreground stays background.
    """

    def decode(raw: np.ndarray) -> np.ndarray:
        band = raw[0] if raw.ndim == 3 else raw
        return (band >= threshold).astype(np.uint8)

    return decode


def _converted(raw: np.ndarray) -> np.ndarray:
    """The authors' converted mask: 0 background, 1 foreground; 2..127 (JPEG noise of a 0/1 mask) unscored.

    Values >= 128 are read as foreground too, so a folder of unconverted 0/255 masks under
    the converted name still scores correctly.
    """
    band = (raw[0] if raw.ndim == 3 else raw).astype(np.int64)
    out = np.full(band.shape, IGNORE, dtype=np.uint8)
    out[band == 0] = 0
    out[(band == 1) | (band >= 128)] = 1
    return out


_RELEASED_MASK = _at_least(128)  # the authors' converters: >= 128 -> 1
_XBD_TARGET = _at_least(1)  # xView2 targets hold 1 (or a damage level 1..4) on buildings


# -- finding the base folder of a layout -----------------------------------------------------------

def _bases(root: Path, marker: str) -> list[Path]:
    """Folders at ``root`` and up to two levels below it that hold the relative folder ``marker``, nearest first."""
    found = [root] if (root / marker).is_dir() else []
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        level = sorted(child for folder in level for child in _subfolders(folder))
        found.extend(folder for folder in level if (folder / marker).is_dir())
    return found


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [child for child in folder.iterdir() if child.is_dir()]
    except OSError:
        return []


def _first_found(root: Path, marker: str, find: Callable[[Path], list[Sample]]) -> list[Sample]:
    """The pairs ``find(base)`` gives at the nearest base folder holding ``marker`` that has any."""
    for base in _bases(root, marker):
        samples = find(base)
        if samples:
            return samples
    return []


def _folders(image: str, label: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
             label_for: Callable[[Path, Path], Path | None] | None = None) -> Callable[[Path, str], list[Sample]]:
    """A ``find`` pairing ``image`` and ``label`` (relative folders, ``{split}`` filled in) by file name."""

    def find(root: Path, split: str) -> list[Sample]:
        image_dir, label_dir = image.format(split=split), label.format(split=split)
        return _first_found(root, image_dir, lambda base: pair_folders(base / image_dir, base / label_dir, suffixes,
                                                                       label_for))

    return find


def _renamed(old: str, new: str) -> Callable[[Path, Path], Path | None]:
    """Its label is the image's stem with the ending ``old`` replaced by ``new`` (a full file name ending)."""

    def rename(name: str) -> str:
        stem = Path(name).stem
        return (stem[: -len(old)] if old and stem.endswith(old) else stem) + new

    return with_label_name(rename)


# -- xBD: the pre-disaster half of xView2's images -------------------------------------------------

def _xbd_released(root: Path, split: str) -> list[Sample]:
    """images/<x>_pre_disaster.png + targets/<x>_pre_disaster_target.png (post-disaster images are not scored)."""

    def find(base: Path) -> list[Sample]:
        images = [p for p in files_with_suffix(base / split / "images", (".png",)) if p.stem.endswith("_pre_disaster")]
        samples = [Sample(p.stem, p, base / split / "targets" / f"{p.stem}_target.png") for p in images]
        found = [s for s in samples if s.label.is_file()]
        if found and len(found) < len(samples):
            warnings.warn(f"{len(samples) - len(found)} xBD {split} pre-disaster images in {base} have no target; "
                          "they are not scored.", stacklevel=3)
        return found

    return _first_found(root, f"{split}/targets", find)


# -- Inria: FCtL's split of the 180 labelled tiles -------------------------------------------------

_INRIA_CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")  # 36 tiles each, 5000 x 5000 px
_INRIA_SPLIT_TILES = {  # tile numbers per city, FCtL's split as the authors' converter uses it
    "test": {"austin": (1, 7, 12, 22, 24, 36), "chicago": (10, 14, 23, 26), "kitsap": (9, 14, 25, 34, 35, 36),
             "tyrol-w": (1, 3, 25, 36), "vienna": (3, 6, 9, 11, 15, 18, 20)},
    "val": {"austin": (8, 9, 15, 17, 19, 27, 29), "chicago": (1, 6, 12, 24, 28), "kitsap": (5, 13, 18, 22, 30),
            "tyrol-w": (6, 10, 12, 19, 22, 24), "vienna": (7, 28, 29, 36)},
}


def inria_tiles(split: str) -> list[str]:
    """The Inria training tiles (e.g. 'austin1') of FCtL's ``split``: 'test', 'val' (27 each) or 'train' (126)."""
    if split in _INRIA_SPLIT_TILES:
        return sorted(f"{city}{n}" for city, numbers in _INRIA_SPLIT_TILES[split].items() for n in numbers)
    held_out = set(inria_tiles("test")) | set(inria_tiles("val"))
    return sorted(f"{city}{n}" for city in _INRIA_CITIES for n in range(1, 37) if f"{city}{n}" not in held_out)


def _inria_tiles(root: Path, split: str) -> list[Sample]:
    """Whole 5000 x 5000 tiles: images/<tile>.tif + gt/<tile>.tif of the split's tiles."""

    def find(base: Path) -> list[Sample]:
        wanted = inria_tiles(split)
        samples = [Sample(tile, base / "images" / f"{tile}.tif", base / "gt" / f"{tile}.tif") for tile in wanted]
        samples = [s for s in samples if s.image.is_file() and s.label.is_file()]
        if samples and len(samples) < len(wanted):
            warnings.warn(f"{len(wanted) - len(samples)} of the {len(wanted)} Inria {split} tiles are missing in "
                          f"{base}; only {len(samples)} are scored.", stacklevel=3)
        return samples

    return _first_found(root, "gt", find)


# -- WBS-SI: the authors' list of validation images ------------------------------------------------

@lru_cache(maxsize=1)
def wbs_si_val_names() -> tuple[str, ...]:
    """The 499 image names (no suffix) of WBS-SI's validation split, as the authors list them."""
    text = (_LIST_DIR / "wbs_si_val.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _wbs_si(label_folder: str) -> Callable[[Path, str], list[Sample]]:
    """A ``find`` for Images/<name>.jpg + <label_folder>/<name>.jpg of the listed names."""

    def find(root: Path, split: str) -> list[Sample]:
        return _first_found(root, label_folder, lambda base: _listed_pairs(base / "Images", base / label_folder))

    return find


def _listed_pairs(image_dir: Path, label_dir: Path) -> list[Sample]:
    names = wbs_si_val_names()
    samples = []
    for name in names:
        image, label = _with_any_suffix(image_dir, name), _with_any_suffix(label_dir, name)
        if image is not None and label is not None:
            samples.append(Sample(name, image, label))
    if samples and len(samples) < len(names):
        warnings.warn(f"{len(names) - len(samples)} of the {len(names)} WBS-SI validation images or masks are "
                      f"missing in {image_dir.parent}; only {len(samples)} are scored.", stacklevel=4)
    return sorted(samples, key=lambda s: s.id)


def _with_any_suffix(folder: Path, stem: str) -> Path | None:
    for suffix in (".jpg", *IMAGE_SUFFIXES):
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


# -- the data sets ---------------------------------------------------------------------------------

def _spec(name: str, title: str, folder: str, split: str, splits: tuple[str, ...], *layouts: Layout) -> DatasetSpec:
    return DatasetSpec(name=name, title=title, folder=folder, split=split, splits=splits, layouts=layouts,
                       preset=name, foreground=1)


def _road_val(subset: str, images: str, *, sat_mask_names: bool = False) -> tuple[Layout, Layout]:
    """The authors' and the released layout of one GlobalRoadSet validation subset."""
    released_names = _renamed("_sat", "_mask.png") if sat_mask_names else None
    return (
        Layout("mmseg", _folders(f"{subset}/{images}", f"{subset}/label_cvt"), _converted,
               f"{subset}/{images}/*.jpg + {subset}/label_cvt/*.png (0/1)"),
        Layout("official", _folders(f"{subset}/img", f"{subset}/gt", label_for=released_names), _RELEASED_MASK,
               f"{subset}/img/*.jpg + {subset}/gt/*.png (0/255)"),
    )


SPECS: tuple[DatasetSpec, ...] = (
    _spec("whu-aerial", "WHU Aerial", "WHU-BD", "val", ("train", "val", "test"),
          Layout("mmseg", _folders("{split}/image", "{split}/label_cvt"), _converted,
                 "{split}/image/* + {split}/label_cvt/* (0/1)"),
          Layout("official", _folders("{split}/image", "{split}/label"), _RELEASED_MASK,
                 "{split}/image/*.tif + {split}/label/*.tif (0/255)")),
    _spec("whu-sat-ii", "WHU Sat.II", "WHU_Sat_II", "test", ("train", "test"),
          Layout("mmseg", _folders("{split}/image", "{split}/label_cvt"), _converted,
                 "Satellite_dataset_Ⅱ_East_Asia/1.cropped/{split}/image/*.tif + .../{split}/label_cvt/*.tif (0/1)"),
          Layout("official", _folders("{split}/image", "{split}/label"), _RELEASED_MASK,
                 "<release folder>/{split}/image/*.tif + <release folder>/{split}/label/*.tif (0/255)")),
    _spec("inria", "Inria", "Inria", "test", ("test", "val", "train"),
          Layout("mmseg", _folders("img_dir/split_{split}", "ann_dir/split_{split}"), _converted,
                 "AerialImageDataset/train/img_dir/split_{split}/*.png + .../ann_dir/split_{split}/*.png "
                 "(1000 x 1000 patches, 0/1)"),
          Layout("official", _inria_tiles, _RELEASED_MASK,
                 "AerialImageDataset/train/images/<tile>.tif + .../gt/<tile>.tif (whole 5000 x 5000 tiles of "
                 "FCtL's {split} split, 0/255)")),
    _spec("xbd", "xBD (pre-disaster)", "xBD", "test", ("train", "tier3", "test", "hold"),
          Layout("mmseg", _folders("{split}/images_pre", "{split}/targets_cvt_pre"), _converted,
                 "{split}/images_pre/*.png + {split}/targets_cvt_pre/*.png (0/1)"),
          Layout("official", _xbd_released, _XBD_TARGET,
                 "{split}/images/*_pre_disaster.png + {split}/targets/*_pre_disaster_target.png (0 / >= 1)")),
    _spec("chn6-cug", "CHN6-CUG", "CHN6-CUG", "val", ("train", "val"),
          Layout("mmseg", _folders("{split}/image_cvt", "{split}/label_cvt"), _converted,
                 "{split}/image_cvt/*.jpg + {split}/label_cvt/*.png (0/1)"),
          Layout("official", _folders("{split}/images", "{split}/gt", label_for=_renamed("_sat", "_mask.png")),
                 _RELEASED_MASK, "{split}/images/*_sat.jpg + {split}/gt/*_mask.png (0/255)")),
    _spec("deepglobe", "DeepGlobe", "GlobalRoadSet_Val", "test", ("test",),
          *_road_val("DeepGlobe_test_1530", "image_cvt", sat_mask_names=True)),
    _spec("massachusetts", "Massachusetts", "GlobalRoadSet_Val", "test", ("test",),
          *_road_val("Massachusetts_test_49", "img")),
    _spec("spacenet", "SpaceNet", "GlobalRoadSet_Val", "test", ("test",),
          *_road_val("SpaceNet_test_567", "img")),
    _spec("wbs-si", "WBS-SI", "water-body-segmentation-in-satellite-images", "val", ("val",),
          Layout("mmseg", _wbs_si("Masks_cvt"), _converted,
                 "WaterBodiesDatasetPreprocessed/WaterBodiesDatasetPreprocessed/Images/*.jpg + .../Masks_cvt/*.jpg "
                 "(0/1), the authors' 499 validation names"),
          Layout("official", _wbs_si("Masks"), _RELEASED_MASK,
                 "WaterBodiesDatasetPreprocessed/WaterBodiesDatasetPreprocessed/Images/*.jpg + .../Masks/*.jpg "
                 "(0/255), the authors' 499 validation names")),
)
