"""The benchmark data sets ``rsov eval`` reads, by name, and the split of one found under a root folder.

``optical`` holds SegEarth-OV's Table 2 sets (multi-class), ``single_class`` its building,
road and water sets (Table 3), ``sar`` SegEarth-OV-2's SAR sets (Table 4).
"""
from __future__ import annotations

from pathlib import Path

from backend.errors import UserInputError
from backend.eval.datasets import optical, sar, single_class
from backend.eval.datasets.base import IGNORE, DatasetSpec, Layout, Protocol, Sample, read_label, read_rgb

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (*optical.SPECS, *single_class.SPECS, *sar.SPECS)}

__all__ = ["DATASETS", "IGNORE", "DatasetSpec", "Layout", "Protocol", "Sample", "find_dataset", "open_split",
           "read_label", "read_rgb"]


def find_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserInputError(f"unknown {{dataset}} {name!r}; choose one of {', '.join(DATASETS)}.", "dataset") from None


def open_split(spec: DatasetSpec, root: Path, split: str | None = None) -> tuple[Layout, list[Sample]]:
    """The layout found under ``root`` and the (image, label) pairs of ``split`` (the paper's by default)."""
    split = split or spec.split
    if split not in spec.splits:
        raise UserInputError(f"{spec.title} has no split {split!r}; choose one of {', '.join(spec.splits)}.", "split")
    if not Path(root).is_dir():
        raise UserInputError(f"{{root}} {root} is not a folder; give the folder {spec.title} was unpacked into.",
                             "root")
    for layout in spec.layouts:
        samples = layout.find(Path(root), split)
        if samples:
            return layout, samples
    tried = "; ".join(f"{layout.name}: {layout.description.format(split=split)}" for layout in spec.layouts)
    raise UserInputError(f"{{root}} {root} holds no {spec.title} {split} split in a known layout ({tried}); "
                         "see docs/datasets.md.", "root")
