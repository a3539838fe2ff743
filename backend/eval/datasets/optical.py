"""SegEarth-OV's multi-class optical benchmarks (the paper's Table 2), in their released layouts.

Each set is read in the layout the authors' configs read (``mmseg``: the folders their
converters under ``tools/dataset_converters`` write, ``img_dir/<split>`` + ``ann_dir/<split>``
or the release's own ``src`` + ``gt`` folders) and, where that differs, in the layout of the
official download as unpacked (``official``). The mmseg layout is tried first: for the sets
the authors cut into patches (iSAID, Potsdam, Vaihingen, UAVid) only it reproduces the
paper's protocol; the official whole images are resized as a whole.

Every decoder gives the class indices of the paper's class names (dataset_classes.json), as
the authors' mmseg datasets and converters give them, ``IGNORE`` where mmseg does not score.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from backend.eval.datasets.base import (DatasetSpec, Layout, LabelDecoder, Sample, colours, files_with_suffix,
                                        from_list, indices, pair_folders, with_label_name)

Finder = Callable[[Path, str], list[Sample]]

# -- colour tables (R, G, B) -> class index --------------------------------------------------------

# ISPRS Potsdam and Vaihingen: impervious surfaces (the authors' 'road'), building, low
# vegetation, tree, car, clutter/background. Black marks the eroded boundaries of the
# '*_noBoundary' ground truth: not scored (the authors' converter writes 0 there, which their
# dataset's reduce_zero_label ignores).
ISPRS_COLOURS: dict[tuple[int, int, int], int] = {
    (255, 255, 255): 0, (0, 0, 255): 1, (0, 255, 255): 2, (0, 255, 0): 3, (255, 255, 0): 4, (255, 0, 0): 5,
}

# iSAID semantic masks ('*_instance_color_RGB.png'); any other colour is background, as the
# authors' converter makes it.
ISAID_COLOURS: dict[tuple[int, int, int], int] = {
    (0, 0, 0): 0, (0, 0, 63): 1, (0, 63, 63): 2, (0, 63, 0): 3, (0, 63, 127): 4, (0, 63, 191): 5,
    (0, 63, 255): 6, (0, 127, 63): 7, (0, 127, 127): 8, (0, 0, 127): 9, (0, 0, 191): 10, (0, 0, 255): 11,
    (0, 191, 127): 12, (0, 127, 191): 13, (0, 127, 255): 14, (0, 100, 155): 15,
}

# UAVid labels: clutter, building, road, static car, tree, low vegetation, human; moving car
# (64, 0, 128) is merged into car and any other colour is clutter, as the authors' converter does.
UAVID_COLOURS: dict[tuple[int, int, int], int] = {
    (0, 0, 0): 0, (128, 0, 0): 1, (128, 64, 128): 2, (192, 0, 192): 3, (0, 128, 0): 4, (128, 128, 0): 5,
    (64, 64, 0): 6, (64, 0, 128): 3,
}

# UDD5's visualisation colours (MarcWong/UDD readme); its 'gt' PNGs hold the indices 0-4.
UDD5_COLOURS: dict[tuple[int, int, int], int] = {
    (107, 142, 35): 0, (102, 102, 156): 1, (128, 64, 128): 2, (0, 0, 142): 3, (0, 0, 0): 4,
}

# The authors' converters' ISPRS splits: Potsdam tiles 'row_col', Vaihingen areas.
POTSDAM_TILES: dict[str, tuple[str, ...]] = {
    "train": ("2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11", "5_12",
              "6_10", "6_11", "6_12", "6_7", "6_8", "6_9", "7_10", "7_11", "7_12", "7_7", "7_8", "7_9"),
    "val": ("2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13", "6_14",
            "6_15", "7_13"),
}
VAIHINGEN_AREAS: dict[str, tuple[str, ...]] = {
    "train": ("area1", "area3", "area5", "area7", "area11", "area13", "area15", "area17", "area21", "area23",
              "area26", "area28", "area30", "area32", "area34", "area37"),
    "val": ("area2", "area4", "area6", "area8", "area10", "area12", "area14", "area16", "area20", "area22",
            "area24", "area27", "area29", "area31", "area33", "area35", "area38"),
}

# UAVid's split folders; the test labels come as 'test_gt' (the authors' converter reads it).
UAVID_FOLDERS: dict[str, tuple[str, ...]] = {
    "train": ("uavid_train",), "val": ("uavid_val",), "test": ("test_gt", "uavid_test"),
}


# -- finders ---------------------------------------------------------------------------------------

def mmseg_folders(image_suffixes: Iterable[str] = (".png",),
                  label_for: Callable[[Path, Path], Path | None] | None = None) -> Finder:
    """``img_dir/<split>`` + ``ann_dir/<split>``, as mmseg's converters write them."""
    suffixes = tuple(image_suffixes)
    return lambda root, split: pair_folders(root / "img_dir" / split, root / "ann_dir" / split, suffixes, label_for)


def src_gt_folders(image_suffixes: Iterable[str] = (".jpg", ".png")) -> Finder:
    """``<split>/src`` + ``<split>/gt`` (UDD5, VDD): labels share the image's stem."""
    suffixes = tuple(image_suffixes)
    return lambda root, split: pair_folders(root / split / "src", root / split / "gt", suffixes)


def openearthmap_official(root: Path, split: str) -> list[Sample]:
    """``<region>/images/<name>.tif`` + ``<region>/labels/<name>.tif`` named by ``<split>.txt``.

    Names whose image is absent are skipped: the release without xBD (the one the authors
    use) lists the xBD-derived images in its split files but ships only their labels.
    """
    images = {path.name: path for path in root.glob("*/images/*.tif")}

    def pair(name: str) -> tuple[Path, Path] | None:
        image = images.get(name)
        if image is None:
            return None
        label = image.parent.parent / "labels" / name
        return (image, label) if label.is_file() else None

    return from_list(root, root / f"{split}.txt", pair)


def loveda_official(root: Path, split: str) -> list[Sample]:
    """``Train|Val/{Urban,Rural}/images_png`` + ``masks_png``, as the release's zips unpack."""
    base = root / split.capitalize()
    samples = [sample for area in ("Urban", "Rural")
               for sample in pair_folders(base / area / "images_png", base / area / "masks_png", (".png",))]
    return sorted(samples, key=lambda sample: sample.id)


def isaid_official(root: Path, split: str) -> list[Sample]:
    """DOTA images under ``<split>/images`` + iSAID masks under ``<split>/Semantic_masks`` (any depth)."""
    suffix = "_instance_color_RGB.png"
    labels = {path.name[:-len(suffix)]: path for path in files_with_suffix(root / split / "Semantic_masks", (".png",),
                                                                             recursive=True)
              if path.name.endswith(suffix)}
    samples = [Sample(image.stem, image, labels[image.stem])
               for image in files_with_suffix(root / split / "images", (".png",), recursive=True)
               if image.stem in labels]
    return sorted(samples, key=lambda sample: sample.id)


def potsdam_official(root: Path, split: str) -> list[Sample]:
    """``top_potsdam_<tile>_RGB.tif`` (2_Ortho_RGB) + ``top_potsdam_<tile>_label_noBoundary.tif``, anywhere below root."""
    images = _by_key(root.rglob("top_potsdam_*_RGB.tif"), r"top_potsdam_(\d+_\d+)_RGB")
    labels = _by_key(root.rglob("top_potsdam_*_label_noBoundary.tif"), r"top_potsdam_(\d+_\d+)_label_noBoundary")
    return _tiles(images, labels, POTSDAM_TILES.get(split, ()))


def vaihingen_official(root: Path, split: str) -> list[Sample]:
    """``top/top_mosaic_09cm_<area>.tif`` + ``top_mosaic_09cm_<area>_noBoundary.tif`` (eroded), anywhere below root."""
    images = _by_key((p for p in root.rglob("top_mosaic_09cm_area*.tif") if p.parent.name == "top"),
                     r"top_mosaic_09cm_(area\d+)")
    labels = _by_key(root.rglob("top_mosaic_09cm_area*_noBoundary.tif"), r"top_mosaic_09cm_(area\d+)_noBoundary")
    return _tiles(images, labels, VAIHINGEN_AREAS.get(split, ()))


def uavid_official(root: Path, split: str) -> list[Sample]:
    """``<split folder>/seqN/Images/*.png`` + ``seqN/Labels/*.png``; ids ``seqN/<frame>``."""
    for folder in UAVID_FOLDERS.get(split, ()):
        base = root / folder
        sequences = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        samples = [Sample(f"{seq.name}/{s.id}", s.image, s.label) for seq in sequences
                   for s in pair_folders(seq / "Images", seq / "Labels", (".png",))]
        if samples:
            return sorted(samples, key=lambda sample: sample.id)
    return []


def _by_key(paths: Iterable[Path], pattern: str) -> dict[str, Path]:
    found = {}
    for path in paths:
        match = re.fullmatch(pattern, path.stem)
        if match:
            found[match.group(1)] = path
    return found


def _tiles(images: Mapping[str, Path], labels: Mapping[str, Path], keys: Iterable[str]) -> list[Sample]:
    samples = [Sample(images[key].stem, images[key], labels[key]) for key in keys if key in images and key in labels]
    return sorted(samples, key=lambda sample: sample.id)


# -- decoders --------------------------------------------------------------------------------------

def indices_or_colours(table: Mapping[tuple[int, int, int], int], classes: int) -> LabelDecoder:
    """Index labels (one band, or three equal bands), or labels in the release's visualisation colours."""
    by_index, by_colour = indices(classes=classes), colours(table)

    def decode(raw: np.ndarray) -> np.ndarray:
        if raw.ndim == 3 and raw.shape[0] >= 3 and not (np.array_equal(raw[0], raw[1])
                                                          and np.array_equal(raw[0], raw[2])):
            return by_colour(raw)
        return by_index(raw)

    return decode


def _mmseg_layout(find: Finder, decode: LabelDecoder, description: str) -> Layout:
    return Layout("mmseg", find, decode, description)


def _official_layout(find: Finder, decode: LabelDecoder, description: str) -> Layout:
    return Layout("official", find, decode, description)


ISPRS_MMSEG = indices(reduce_zero_label=True, classes=6)  # converter: 0 boundary/other, 1-6 the classes
ISPRS_OFFICIAL = colours(ISPRS_COLOURS)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "openearthmap", "OpenEarthMap", "OpenEarthMap", "val", ("train", "val"),
        (_mmseg_layout(mmseg_folders((".tif",)), indices(classes=9), "img_dir/{split}/*.tif + ann_dir/{split}/*.tif"),
         _official_layout(openearthmap_official, indices(classes=9),
                          "<region>/images/*.tif + <region>/labels/*.tif listed in {split}.txt")),
        "openearthmap"),
    DatasetSpec(
        "loveda", "LoveDA", "LoveDA", "val", ("train", "val"),
        (_mmseg_layout(mmseg_folders(), indices(reduce_zero_label=True, classes=7),
                       "img_dir/{split}/*.png + ann_dir/{split}/*.png"),
         _official_layout(loveda_official, indices(reduce_zero_label=True, classes=7),
                          "Train|Val/{{Urban,Rural}}/images_png/*.png + masks_png/*.png")),
        "loveda"),
    DatasetSpec(
        "isaid", "iSAID", "iSAID", "val", ("train", "val"),
        (_mmseg_layout(mmseg_folders((".png",), with_label_name(lambda name: Path(name).stem
                                                                + "_instance_color_RGB.png")),
                       indices(classes=16), "img_dir/{split}/*.png + ann_dir/{split}/*_instance_color_RGB.png"),
         _official_layout(isaid_official, colours(ISAID_COLOURS, default=0),
                          "{split}/images/**/*.png + {split}/Semantic_masks/**/*_instance_color_RGB.png")),
        "isaid"),
    DatasetSpec(
        "potsdam", "Potsdam", "potsdam", "val", ("train", "val"),
        (_mmseg_layout(mmseg_folders(), ISPRS_MMSEG, "img_dir/{split}/*.png + ann_dir/{split}/*.png"),
         _official_layout(potsdam_official, ISPRS_OFFICIAL,
                          "**/top_potsdam_<tile>_RGB.tif + **/top_potsdam_<tile>_label_noBoundary.tif")),
        "potsdam"),
    DatasetSpec(
        "vaihingen", "Vaihingen", "vaihingen", "val", ("train", "val"),
        (_mmseg_layout(mmseg_folders(), ISPRS_MMSEG, "img_dir/{split}/*.png + ann_dir/{split}/*.png"),
         _official_layout(vaihingen_official, ISPRS_OFFICIAL,
                          "**/top/top_mosaic_09cm_<area>.tif + **/top_mosaic_09cm_<area>_noBoundary.tif")),
        "vaihingen"),
    DatasetSpec(
        "uavid", "UAVid", "UAVid", "test", ("train", "val", "test"),
        (_mmseg_layout(mmseg_folders(), indices(classes=7), "img_dir/{split}/*.png + ann_dir/{split}/*.png"),
         _official_layout(uavid_official, colours(UAVID_COLOURS, default=0),
                          "uavid_train|uavid_val|test_gt/seq*/Images/*.png + Labels/*.png")),
        "uavid"),
    DatasetSpec(
        "udd5", "UDD5", "UDD5", "val", ("train", "val"),
        (_official_layout(src_gt_folders(), indices_or_colours(UDD5_COLOURS, 5), "{split}/src/*.JPG + {split}/gt/*.png"),),
        "udd5"),
    DatasetSpec(
        "vdd", "VDD", "VDD", "test", ("train", "val", "test"),
        (_official_layout(src_gt_folders(), indices(classes=7), "{split}/src/*.JPG + {split}/gt/*.png"),),
        "vdd"),
)

__all__ = ["ISAID_COLOURS", "ISPRS_COLOURS", "POTSDAM_TILES", "SPECS", "UAVID_COLOURS", "UDD5_COLOURS",
           "VAIHINGEN_AREAS"]
