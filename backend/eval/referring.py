"""Referring-segmentation scores over a split: P@0.5, overall IoU (oIoU) and mean IoU (mIoU).

The protocol of the RRSIS-D and RefSegRS benchmarks (LAVT's evaluation, kept by RMSIN and
LGCE): one predicted mask per (image, expression) sample;

- IoU of a sample = |pred ∧ gt| / |pred ∨ gt|;
- P@0.5 = the share of samples whose IoU is at least 0.5 (the authors' ``iou >= 0.5``);
- oIoU = Σ I / Σ U over the split (large objects weigh more);
- mIoU = the mean of the per-sample IoUs.

A sample whose prediction and ground truth are both empty has I = U = 0: it counts as IoU 1
(a correct "nothing there"), adds nothing to Σ I and Σ U, and passes P@0.5 (ours; the
authors' code scores it 0, but their benchmarks have no empty target).
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.5


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts |pred ∧ gt| and |pred ∨ gt| of two boolean (H, W) masks of one size."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"masks must be two (H, W) arrays of one size, not {pred.shape} and {gt.shape}")
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


class ReferringScores:
    """Accumulates samples with ``add`` and reports ``result()`` over all of them."""

    def __init__(self) -> None:
        self.ious: list[float] = []
        self.intersection = 0
        self.union = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> float:
        """Score one sample (boolean (H, W) masks, same size); its IoU."""
        intersection, union = intersection_union(pred, gt)
        iou = 1.0 if union == 0 else intersection / union
        self.ious.append(iou)
        self.intersection += intersection
        self.union += union
        return iou

    def result(self) -> dict[str, float]:
        """``p_at_0_5``, ``oiou``, ``miou`` (fractions in [0, 1]) and ``count``; all 0 before any sample.

        oIoU is 1 when every sample so far was empty/empty (Σ U = 0).
        """
        count = len(self.ious)
        if count == 0:
            return {"p_at_0_5": 0.0, "oiou": 0.0, "miou": 0.0, "count": 0}
        ious = np.asarray(self.ious)
        oiou = 1.0 if self.union == 0 else self.intersection / self.union
        return {"p_at_0_5": float(np.mean(ious >= THRESHOLD)), "oiou": float(oiou), "miou": float(ious.mean()),
                "count": count}
