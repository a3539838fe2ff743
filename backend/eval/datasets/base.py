"""What a benchmark data set is to ``rsov eval``: its samples in a folder layout, and how its labels decode.

A ``DatasetSpec`` names a data set, the split the papers report, the folder layouts it is
found in (the officially released one, and the mmseg-converted one where the authors used
it) and the image-level protocol of the authors' config. A ``Layout`` finds the (image,
label) pairs of a split under a root folder and decodes a label file into class indices
(``IGNORE`` where the pixel is not scored).

Images and labels are read with rasterio (GDAL), which reads PNG, JPEG and TIFF alike and,
like the authors' mmseg ``LoadAnnotations`` (Pillow, 'unchanged'), gives a paletted PNG's
indices rather than its colours.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from backend.errors import UserInputError

log = logging.getLogger("rsov")
IGNORE = 255  # the ignore index of mmseg's IoUMetric and of every label decoder here
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")

LabelDecoder = Callable[[np.ndarray], np.ndarray]  # raw (bands, H, W) -> (H, W) uint8 classes, IGNORE unscored


@dataclass(frozen=True)
class Sample:
    """One scored image: ``id`` is its path under the split's image folder without suffix ('/'-separated)."""

    id: str
    image: Path
    label: Path


@dataclass(frozen=True)
class Layout:
    """One folder layout of a data set: where a split's pairs are, and how its labels decode."""

    name: str  # "official", "mmseg", ...
    find: Callable[[Path, str], list[Sample]]  # (root, split) -> pairs sorted by id; [] when not this layout
    decode: LabelDecoder
    description: str  # the folders, one line, e.g. "img_dir/{split}/*.tif + ann_dir/{split}/*.tif"


@dataclass(frozen=True)
class Protocol:
    """The authors' image-level protocol: resize (keep ratio) so the long side is ``resize_long_side``,
    then slide ``window``/``stride`` windows, or run the whole resized image at once (``window`` None)."""

    resize_long_side: int = 448
    window: int | None = 224
    stride: int = 112


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # the registry key, e.g. "openearthmap"
    title: str  # as the papers write it, e.g. "OpenEarthMap"
    folder: str  # its folder under a suite's --root, e.g. "OpenEarthMap"
    split: str  # the split the papers report
    splits: tuple[str, ...]  # every split the layouts can read
    layouts: tuple[Layout, ...]  # tried in order: the first that finds pairs is used
    preset: str  # its dataset preset (class names, prob_thd, bg_idx) in backend.models.registry
    modality: str = "optical"  # or "sar"
    protocol: Protocol = Protocol()
    foreground: int | None = None  # single-class sets: the class whose IoU the papers report
    classes_key: str | None = None  # its entry in dataset_classes.json when not the preset's name

    def class_lines(self, rs_ovss: bool = False) -> list[str]:
        """The paper's class names in class-index order, synonyms by commas (``rs_ovss``: as FarSLIP's
        RS-OVSS evaluation names them, where they differ)."""
        from backend.models.registry import dataset_classes

        entry = dataset_classes()[self.classes_key or self.preset]
        return list(entry["rs_ovss_classes"] if rs_ovss and "rs_ovss_classes" in entry else entry["classes"])


# -- finding pairs ---------------------------------------------------------------------------------

def files_with_suffix(folder: Path, suffixes: Iterable[str], recursive: bool = False) -> list[Path]:
    """The files in ``folder`` whose suffix is one of ``suffixes`` (case-insensitive), sorted; [] if absent."""
    if not folder.is_dir():
        return []
    wanted = {s.lower() for s in suffixes}
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in wanted)


def pair_folders(image_dir: Path, label_dir: Path, image_suffixes: Iterable[str] = IMAGE_SUFFIXES,
                 label_for: Callable[[Path, Path], Path | None] | None = None, recursive: bool = False
                 ) -> list[Sample]:
    """Pairs of an image folder and a label folder, matched by ``label_for(image, label_dir)``.

    The default matches the label with the image's stem and any image suffix. An image
    without a label is skipped with a warning (the split is what has labels); [] when the
    image folder is not there.
    """
    label_for = label_for or _same_stem
    samples, missing = [], []
    for image in files_with_suffix(image_dir, image_suffixes, recursive):
        label = label_for(image, label_dir / image.parent.relative_to(image_dir))
        if label is None or not label.is_file():
            missing.append(image.name)
            continue
        sample_id = image.relative_to(image_dir).with_suffix("").as_posix()
        samples.append(Sample(sample_id, image, label))
    if missing and samples:
        log.warning("%d images in %s have no label in %s (first: %s); they are not scored.", len(missing),
                    image_dir, label_dir, missing[0])
    return samples


def _same_stem(image: Path, label_dir: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (label_dir / (image.stem + suffix), label_dir / (image.stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def with_label_name(rename: Callable[[str], str]) -> Callable[[Path, Path], Path | None]:
    """A ``label_for`` whose label file is ``rename(image file name)`` in the label folder."""
    return lambda image, label_dir: label_dir / rename(image.name)


def from_list(root: Path, list_file: Path, pair: Callable[[str], tuple[Path, Path] | None]) -> list[Sample]:
    """Pairs named by a split list file (one name per line): ``pair(name)`` gives (image, label)."""
    if not list_file.is_file():
        return []
    samples = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if not name:
            continue
        found = pair(name)
        if found is None:
            continue
        image, label = found
        samples.append(Sample(Path(name).with_suffix("").as_posix(), image, label))
    return sorted(samples, key=lambda s: s.id)


# -- decoding labels -------------------------------------------------------------------------------

def indices(reduce_zero_label: bool = False, mapping: Mapping[int, int] | None = None,
            ignore: Iterable[int] = (), classes: int | None = None) -> LabelDecoder:
    """Labels stored as class indices in the first band.

    ``reduce_zero_label`` is mmseg's: 0 becomes ``IGNORE`` and every other value v becomes
    v - 1. ``mapping`` then renames values (unlisted values are kept, or IGNORE if
    ``classes`` is given and they are >= ``classes``); values in ``ignore`` are not scored.
    """
    ignored = tuple(ignore)

    def decode(raw: np.ndarray) -> np.ndarray:
        label = _first_band(raw).astype(np.int64)
        unscored = np.isin(label, ignored) if ignored else np.zeros(label.shape, bool)
        if reduce_zero_label:
            unscored |= label == 0
            label = label - 1
        if mapping:
            table = np.arange(max(int(label.max(initial=0)), max(mapping)) + 2)
            for source, target in mapping.items():
                if source >= 0:
                    table[source] = target
            label = table[np.clip(label, 0, None)]
        if classes is not None:
            unscored |= (label < 0) | (label >= classes)
        out = np.clip(label, 0, IGNORE).astype(np.uint8)
        out[unscored] = IGNORE
        return out

    return decode


def colours(table: Mapping[tuple[int, int, int], int], default: int = IGNORE) -> LabelDecoder:
    """Labels stored as RGB colours: each colour in ``table`` is its class; any other colour is ``default``."""

    def decode(raw: np.ndarray) -> np.ndarray:
        if raw.shape[0] < 3:
            raise ValueError(f"a colour-coded label needs 3 bands, this one has {raw.shape[0]}")
        rgb = raw[:3].astype(np.int64)
        code = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
        out = np.full(code.shape, default, dtype=np.uint8)
        for (r, g, b), value in table.items():
            out[code == ((r << 16) | (g << 8) | b)] = value
        return out

    return decode


def binary(threshold: int = 128) -> LabelDecoder:
    """0/255 masks: values >= ``threshold`` are class 1, the rest class 0 (the authors' conversion)."""

    def decode(raw: np.ndarray) -> np.ndarray:
        return (_first_band(raw) >= threshold).astype(np.uint8)

    return decode


def _first_band(raw: np.ndarray) -> np.ndarray:
    return raw[0] if raw.ndim == 3 else raw


# -- reading ---------------------------------------------------------------------------------------

def read_raw(path: Path) -> np.ndarray:
    """Every band of a file as (bands, H, W), as stored."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read()
    except RasterioIOError as error:
        raise UserInputError(f"{path} cannot be read as an image ({error}); check the file or re-download it.",
                             "root") from None


def read_label(layout: Layout, path: Path) -> np.ndarray:
    """A label file decoded by ``layout``: (H, W) uint8 class indices, ``IGNORE`` where unscored."""
    try:
        return layout.decode(read_raw(path))
    except ValueError as error:
        raise UserInputError(f"{path} is not a label of this data set's {layout.name} layout ({error}); check the layout "
                             "in docs/datasets.md.", "root") from None


def read_rgb(path: Path) -> np.ndarray:
    """An image as (H, W, 3) uint8 RGB, as the authors' loader gives it (OpenCV, 'color').

    One band is repeated to three; a fourth (alpha) band is dropped; 16-bit samples keep
    their high byte, as OpenCV's colour read does. Other data types are refused.
    """
    raw = read_raw(path)
    if raw.shape[0] == 1:
        raw = np.repeat(raw, 3, axis=0)
    elif raw.shape[0] == 2:
        raise UserInputError(f"{path} has 2 bands; an evaluation image needs 1 (grey) or 3 (RGB).", "root")
    raw = raw[:3]
    if raw.dtype == np.uint16:
        raw = (raw >> 8).astype(np.uint8)
    elif raw.dtype != np.uint8:
        raise UserInputError(f"{path} holds {raw.dtype} samples; the benchmarks' images are 8-bit (convert it as "
                             "docs/datasets.md says).", "root")
    return np.ascontiguousarray(raw.transpose(1, 2, 0))
