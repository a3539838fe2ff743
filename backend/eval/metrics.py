"""Semantic-segmentation scores the standard way: one confusion matrix accumulated over a whole split.

As mmseg's ``IoUMetric`` (which the papers' tables come from): pixels whose label is the
ignore index are not counted; a class's IoU = TP / (TP + FP + FN) over the split, undefined
(None) when the class is absent from both labels and predictions; mIoU is the mean of the
defined IoUs; pixel accuracy (mmseg's aAcc) = correct pixels / scored pixels; a class's
accuracy = TP / its labelled pixels. Single-class sets report the foreground class's IoU.
"""
from __future__ import annotations

import numpy as np

from backend.eval.datasets.base import IGNORE


class ConfusionMatrix:
    """``matrix[label, prediction]`` pixel counts over every ``update``."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, label: np.ndarray) -> None:
        """Count one image: ``pred`` and ``label`` (H, W) class indices of one size.

        Labels equal to the ignore index are skipped; a label or prediction outside
        0..num_classes-1 is an error (a wrong class list or decoder, not a pixel to drop).
        """
        pred, label = np.asarray(pred), np.asarray(label)
        if pred.shape != label.shape:
            raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in size")
        scored = label != self.ignore_index
        truth = label[scored].astype(np.int64)
        guess = pred[scored].astype(np.int64)
        for name, values in (("label", truth), ("prediction", guess)):
            if values.size and (values.min() < 0 or values.max() >= self.num_classes):
                raise ValueError(f"a {name} value {int(values.max())} is not one of the {self.num_classes} classes")
        self.matrix += np.bincount(truth * self.num_classes + guess,
                                   minlength=self.num_classes ** 2).reshape(self.num_classes, self.num_classes)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def scores(self, class_names: list[str], foreground: int | None = None) -> dict:
        """Per-class IoU and accuracy, mIoU, mean accuracy, pixel accuracy (fractions, not %)."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        true_positive = np.diag(self.matrix).astype(np.float64)
        labelled = self.matrix.sum(axis=1).astype(np.float64)
        predicted = self.matrix.sum(axis=0).astype(np.float64)
        union = labelled + predicted - true_positive
        iou = [float(t / u) if u > 0 else None for t, u in zip(true_positive, union)]
        accuracy = [float(t / n) if n > 0 else None for t, n in zip(true_positive, labelled)]
        total = float(labelled.sum())
        return {
            "classes": list(class_names),
            "per_class_iou": iou,
            "per_class_accuracy": accuracy,
            "miou": _mean(iou),
            "mean_accuracy": _mean(accuracy),
            "pixel_accuracy": float(true_positive.sum() / total) if total else None,
            "foreground_iou": iou[foreground] if foreground is not None else None,
            "scored_pixels": int(total),
        }

    def to_json(self) -> dict:
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index, "matrix": self.matrix.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> ConfusionMatrix:
        matrix = cls(int(data["num_classes"]), int(data["ignore_index"]))
        matrix.matrix = np.asarray(data["matrix"], dtype=np.int64).reshape(matrix.num_classes, matrix.num_classes)
        return matrix


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None
