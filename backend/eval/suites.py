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
    model: str  # the model preset it runs by default
    numbers: dict[str, dict[str, float]]  # model preset -> data set -> the paper's number (%), in the table's order
    source: str  # where the numbers are printed

    @property
    def datasets(self) -> list[str]:
        return list(self.numbers[self.model])


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("segearth-ov-table2", "SegEarth-OV, Table 2 (multi-class, mIoU)", "segearth-ov", {"segearth-ov":
          {"openearthmap": 40.3, "loveda": 36.9, "isaid": 21.7, "potsdam": 48.5, "vaihingen": 40.0, "uavid": 42.5,
           "udd5": 50.6, "vdd": 45.3}},
          "SegEarth-OV-2 journal paper, Table 2 (Potsdam and Vaihingen with its 'grass' prompts)"),
    Suite("segearth-ov-table3", "SegEarth-OV, Table 3 (single-class, foreground IoU)", "segearth-ov", {"segearth-ov":
          {"whu-aerial": 49.2, "whu-sat-ii": 28.4, "inria": 44.6, "xbd": 37.0, "chn6-cug": 35.4, "deepglobe": 17.8,
           "massachusetts": 11.5, "spacenet": 23.8, "wbs-si": 60.2}},
          "SegEarth-OV-2 journal paper, Table 3, row SegEarth-OV at 448 x 448"),
    Suite("segearth-ov-sar", "SegEarth-OV-2, Table 4 (SAR, SegEarth-OV + AlignEarth, mIoU)", "segearth-ov-sar",
          {"segearth-ov-sar": {"openearthmap-sar": 19.3, "ddhr-korea-sar": 48.6, "ddhr-shandong-sar": 36.6, "ddhr-xian-sar": 44.5,
           "fusar-map": 28.2, "whu-sar": 17.0, "yeseg-sar": 26.8, "pie-sar": 51.1}},
          "SegEarth-OV-2 (AlignEarth), Table 4; METHODS.md §2"),
    # RS-OVSS (NJU-LHRS): every set at prob_thd 0, bg_idx 0, lambda 0, no upsampler (eval_customized.py)
    Suite("farslip-ovss", "FarSLIP, open-vocabulary segmentation table (ViT-B/16, RS-OVSS protocol, mIoU)",
          "farslip2-vit-b-16", {
              model: dict(zip(("openearthmap", "loveda", "potsdam", "vaihingen", "udd5", "vdd", "uavid", "isaid"),
                              row))
              for model, row in (
                  ("farslip1-vit-b-16", (35.89, 33.59, 46.50, 22.34, 44.60, 40.63, 40.23, 19.76)),
                  ("farslip2-vit-b-16", (34.39, 34.23, 47.48, 22.81, 44.83, 40.82, 40.03, 18.67)))},
          "FarSLIP / RS-OVSS README table (assets/ovss.png); means 35.44 and 35.41"),
)}


def find_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UserInputError(f"unknown {{suite}} {name!r}; choose one of {', '.join(SUITES)}.", "suite") from None


def paper_number(model: str, dataset: str) -> tuple[float, str] | None:
    """(the paper's number, its table) for this model preset on this data set, if a paper reports it."""
    for suite in SUITES.values():
        if dataset in suite.numbers.get(model, {}):
            return suite.numbers[model][dataset], suite.title
    return None
