"""The papers' tables as suites: which model on which data sets, and the number each paper reports.

Numbers are percentages as printed in the papers (mIoU, or the foreground class's IoU for
single-class sets); ``paper_number(model, dataset)`` finds one for any run.
"""
from __future__ import annotations

from dataclasses import dataclass

from backend.errors import UserInputError


@dataclass(frozen=True)
class Suite:
    name: str
    title: str  # the table, as the paper names it
    model: str  # model preset
    numbers: dict[str, float]  # data set -> the paper's number (%), in the table's order
    source: str  # where the numbers are printed

    @property
    def datasets(self) -> list[str]:
        return list(self.numbers)


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("segearth-ov-table2", "SegEarth-OV, Table 2 (multi-class, mIoU)", "segearth-ov",
          {"openearthmap": 40.3, "loveda": 36.9, "isaid": 21.7, "potsdam": 48.5, "vaihingen": 40.0, "uavid": 42.5,
           "udd5": 50.6, "vdd": 45.3},
          "SegEarth-OV (Li et al.), Table 2; METHODS.md §1.9"),
    Suite("segearth-ov-table3", "SegEarth-OV, Table 3 (single-class, foreground IoU)", "segearth-ov",
          {"whu-aerial": 49.2, "inria": 44.6, "xbd": 37.0, "chn6-cug": 35.4, "wbs-si": 60.2},
          "SegEarth-OV (Li et al.), Table 3; METHODS.md §1.9"),
    Suite("segearth-ov-sar", "SegEarth-OV-2, Table 4 (SAR, SegEarth-OV + AlignEarth, mIoU)", "segearth-ov-sar",
          {"openearthmap-sar": 19.3, "ddhr-korea-sar": 48.6, "ddhr-shandong-sar": 36.6, "ddhr-xian-sar": 44.5,
           "fusar-map": 28.2, "whu-sar": 17.0, "yeseg-sar": 26.8, "pie-sar": 51.1},
          "SegEarth-OV-2 (AlignEarth), Table 4; METHODS.md §2"),
)}


def find_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UserInputError(f"unknown {{suite}} {name!r}; choose one of {', '.join(SUITES)}.", "suite") from None


def paper_number(model: str, dataset: str) -> tuple[float, str] | None:
    """(the paper's number, its table) for this model preset on this data set, if a paper reports it."""
    for suite in SUITES.values():
        if suite.model == model and dataset in suite.numbers:
            return suite.numbers[dataset], suite.title
    return None
