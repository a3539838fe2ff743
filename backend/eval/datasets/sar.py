"""SegEarth-OV-2's SAR benchmark sets (Table 4), read with ``--model segearth-ov-sar``.

Each set is found either in the layout of its official release or in the folders the
authors' configs read (their converted copies, shared as one download). Class order and
thresholds follow the authors' ``configs/cls_*.txt`` and ``configs/cfg_*sar*.py``:
OpenEarthMap-SAR and FUSAR-Map run slide windows on images resized to 448; the others
(``slide_crop=0``, ``Resize (224, 224)``) run the whole image resized to 224 at once.

``root`` is the folder the set was unpacked into (the one named by ``DatasetSpec.folder``).
Split lists (``val.txt``, ``test.txt``) hold one image name per line, without suffix, as
mmseg's ``ann_file`` does; the split ``all`` scores every labelled image found.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from backend.eval.datasets.base import (
    IGNORE, DatasetSpec, LabelDecoder, Layout, Protocol, Sample, colours, files_with_suffix, indices, pair_folders,
)

log = logging.getLogger("rsov")

WHOLE_224 = Protocol(224, window=None)  # slide_crop=0 + Resize (224, 224) keep_ratio: one pass over the image
SLIDE_448 = Protocol(448, 224, 112)


# -- finding pairs ---------------------------------------------------------------------------------

def _strip(name: str, suffixes: Iterable[str]) -> str:
    for suffix in suffixes:
        if name.lower().endswith(suffix.lower()):
            return name[:-len(suffix)]
    return name


def _existing(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def listed_pairs(base: Path, image_dir: str, label_dir: str, split: str, image_suffixes: tuple[str, ...],
                 label_suffixes: tuple[str, ...], label_stem: Callable[[str], str] = lambda stem: stem
                 ) -> list[Sample]:
    """Pairs of ``base/image_dir`` and ``base/label_dir``: those named in ``base/{split}.txt``, or every
    labelled image (searched recursively) when ``split`` is ``all``; [] when the folders or the list are absent.

    ``label_stem`` renames an image's stem (sub-folders kept) to its label's.
    """
    images, labels = base / image_dir, base / label_dir
    if not images.is_dir() or not labels.is_dir():
        return []
    if split == "all":
        names = [p.relative_to(images).with_suffix("").as_posix()
                 for p in files_with_suffix(images, image_suffixes, recursive=True)]
    else:
        list_file = base / f"{split}.txt"
        if not list_file.is_file():
            return []
        lines = list_file.read_text(encoding="utf-8").splitlines()
        names = [_strip(line.strip(), image_suffixes) for line in lines if line.strip()]
    samples, missing = [], []
    for name in names:
        parent, _, stem = name.rpartition("/")
        image = _existing(images / parent, stem, image_suffixes)
        label = _existing(labels / parent, label_stem(stem), label_suffixes)
        if image is None or label is None:
            missing.append(name)
            continue
        samples.append(Sample(name, image, label))
    if missing and samples:
        log.warning("%d images of the %s split in %s have no image in %s or no label in %s (first: %s); they are "
                    "not scored.", len(missing), split, base, image_dir, label_dir, missing[0])
    return sorted(samples, key=lambda s: s.id)


def _first_base(candidates: Iterable[Path], image_dir: str) -> Path | None:
    return next((base for base in candidates if (base / image_dir).is_dir()), None)


# -- decoding --------------------------------------------------------------------------------------

def values(table: Mapping[int, int]) -> LabelDecoder:
    """Labels whose stored values name the classes: each value in ``table`` is its class, any other is IGNORE."""
    lookup = np.full(65536, IGNORE, dtype=np.uint8)
    for value, cls in table.items():
        lookup[value] = cls

    def decode(raw: np.ndarray) -> np.ndarray:
        band = raw[0] if raw.ndim == 3 else raw
        if band.dtype.kind not in "ui" or band.min(initial=0) < 0 or band.max(initial=0) > 65535:
            raise ValueError(f"its values ({band.dtype}) are not class codes")
        return lookup[band.astype(np.int64)]

    return decode


# -- OpenEarthMap-SAR ------------------------------------------------------------------------------

def _oem_sar(root: Path, split: str) -> list[Sample]:
    return pair_folders(root / split / "sar_images", root / split / "labels", (".tif", ".tiff"))


OPENEARTHMAP_SAR = DatasetSpec(
    name="openearthmap-sar", title="OpenEarthMap-SAR", folder="OpenEarthMap_SAR", split="test",
    splits=("train", "val", "test"),
    layouts=(Layout("official", _oem_sar, indices(classes=9), "{split}/sar_images/*.tif + {split}/labels/*.tif"),),
    preset="openearthmap-sar", modality="sar", protocol=SLIDE_448)


# -- DDHR (Korea, Shandong, Xi'an) -----------------------------------------------------------------

def _ddhr_find(region: str, image_dir: str, cloud_free: bool) -> Callable[[Path, str], list[Sample]]:
    """A region's pairs under ``root`` = the DDHRNet_DATA folder (or the region's own folder); Korea and Xi'an
    are read from their cloud-free copy (``no_cloud``), Shandong from its own folder, as the authors' configs do."""
    bases = ("no_cloud", ".") if cloud_free else (".",)

    def find(root: Path, split: str) -> list[Sample]:
        base = _first_base([root / region / b for b in bases] + [root / b for b in bases], image_dir)
        if base is None:
            return []
        return listed_pairs(base, image_dir, "label", split, (".jpg", ".jpeg", ".png", ".tif"), (".png",))

    return find


def _ddhr(name: str, title: str, region: str, cloud_free: bool) -> DatasetSpec:
    decode = indices(classes=5)
    where = f"{region}/no_cloud/" if cloud_free else f"{region}/"
    return DatasetSpec(
        name=name, title=title, folder="DDHRNet_DATA", split="val", splits=("val", "train", "all"),
        layouts=(Layout("mmseg", _ddhr_find(region, "sar", cloud_free), decode,
                        f"{where}sar/*.jpg + {where}label/*.png, names in {where}{{split}}.txt"),
                 Layout("official", _ddhr_find(region, "GF3", cloud_free), decode,
                        f"{where}GF3/*.jpg + {where}label/*.png, names in {where}{{split}}.txt (or split all)")),
        preset=name, modality="sar", protocol=WHOLE_224)


DDHR_KOREA = _ddhr("ddhr-korea-sar", "DDHR-Korea", "korea", cloud_free=True)
DDHR_SHANDONG = _ddhr("ddhr-shandong-sar", "DDHR-SD", "shandong", cloud_free=False)
DDHR_XIAN = _ddhr("ddhr-xian-sar", "DDHR-XA", "xian", cloud_free=True)


# -- FUSAR-Map -------------------------------------------------------------------------------------

# the official RGB label colours, in the authors' class order (others, water, road, building, vegetation)
FUSAR_COLOURS = {(0, 0, 0): 0, (0, 0, 255): 1, (255, 255, 0): 2, (255, 0, 0): 3, (0, 255, 0): 4}


def _fusar_mmseg(root: Path, split: str) -> list[Sample]:
    return listed_pairs(root, "sar", "label", split, (".tif", ".tiff"), (".png",))


def _fusar_official(root: Path, split: str) -> list[Sample]:
    return listed_pairs(root, "SAR_1024", "LAB_1024", split, (".tif", ".tiff"), (".tif", ".tiff", ".png"),
                        label_stem=lambda stem: stem.replace("_SAR_", "_Label_"))


FUSAR_MAP = DatasetSpec(
    name="fusar-map", title="FUSAR-Map", folder="FUSAR-Map", split="test", splits=("test", "train", "all"),
    layouts=(Layout("mmseg", _fusar_mmseg, indices(classes=5), "sar/*.tif + label/*.png, names in {split}.txt"),
             Layout("official", _fusar_official, colours(FUSAR_COLOURS),
                    "SAR_1024/*_SAR_*.tif + LAB_1024/*_Label_*.tif (RGB colours), names in {split}.txt or split all")),
    preset="fusar-map", modality="sar", protocol=SLIDE_448)


# -- WHU-OPT-SAR (WHU-SAR) -------------------------------------------------------------------------

# the official test tiles ("The division of the dataset.txt", AmberHen/WHU-OPT-SAR-dataset); the rest are train
WHU_TEST_TILES = frozenset((
    "NH49E001014", "NH49E001017", "NH49E002012", "NH49E002016", "NH49E003014", "NH49E003024", "NH49E004011",
    "NH49E005011", "NH49E005019", "NH49E006019", "NH49E007014", "NH49E008013", "NH49E009017", "NH49E010020",
    "NH49E011024", "NH49E012020", "NH49E013010", "NH50E007002", "NH50E011005", "NH50E014003"))
# official label values: 0 no label, 10 farmland, 20 city, 30 village, 40 water, 50 forest, 60 road, 70 others
WHU_VALUES = {10 * (cls + 1): cls for cls in range(7)}


def _whu_crop(root: Path, split: str) -> list[Sample]:
    return pair_folders(root / "crop512" / split / "sar_dir", root / "crop512" / split / "ann_dir", (".tif",))


def _whu_official(root: Path, split: str) -> list[Sample]:
    tiles = pair_folders(root / "sar", root / "lbl", (".tif", ".tiff"))
    return [s for s in tiles if (s.id in WHU_TEST_TILES) == (split == "test")]


WHU_SAR = DatasetSpec(
    name="whu-sar", title="WHU-SAR", folder="whu-opt-sar", split="test", splits=("test", "train"),
    layouts=(Layout("mmseg", _whu_crop, indices(reduce_zero_label=True, classes=7),
                    "crop512/{split}/sar_dir/*.tif + crop512/{split}/ann_dir/*.tif (512x512 crops)"),
             Layout("official", _whu_official, values(WHU_VALUES),
                    "sar/*.tif + lbl/*.tif (whole 5556x3704 tiles, official {split} list)")),
    preset="whu-sar", modality="sar", protocol=WHOLE_224)


# -- YESeg-OPT-SAR (YESeg-SAR) ---------------------------------------------------------------------

def _yeseg(label_dir: str) -> Callable[[Path, str], list[Sample]]:
    return lambda root, split: listed_pairs(root, "sar", label_dir, split, (".png",), (".png",))


YESEG_SAR = DatasetSpec(
    name="yeseg-sar", title="YESeg-SAR", folder="YESeg-OPT-SAR", split="test", splits=("test", "train", "all"),
    layouts=(Layout("mmseg", _yeseg("cvt_label"), indices(classes=6),
                    "sar/**/*.png + cvt_label/**/*.png, names in {split}.txt"),
             # official values: 0 background, 1-6 the six classes, 7 other (neither scored)
             Layout("official", _yeseg("label"), indices(reduce_zero_label=True, classes=6),
                    "sar/<area>/*.png + label/<area>/*.png, names in {split}.txt or split all")),
    preset="yeseg-sar", modality="sar", protocol=WHOLE_224)


# -- PIE-RGB-SAR (PIE-SAR) -------------------------------------------------------------------------

def _pie(root: Path, split: str) -> list[Sample]:
    return listed_pairs(root, "sar", "label", split, (".tif", ".tiff"), (".tif", ".tiff"))


PIE_SAR = DatasetSpec(
    name="pie-sar", title="PIE-SAR", folder="PIE-RGB-SAR", split="val", splits=("val", "train", "all"),
    layouts=(Layout("official", _pie, indices(classes=6), "sar/*.tif + label/*.tif, names in {split}.txt"),),
    preset="pie-sar", modality="sar", protocol=WHOLE_224)


SPECS: tuple[DatasetSpec, ...] = (OPENEARTHMAP_SAR, DDHR_KOREA, DDHR_SHANDONG, DDHR_XIAN, FUSAR_MAP, WHU_SAR,
                                  YESEG_SAR, PIE_SAR)
