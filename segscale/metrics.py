"""Segmentation metrics from a confusion matrix: IoU per class, mIoU, pixel accuracy.

IoU_c = TP_c / (TP_c + FP_c + FN_c), accumulated over a whole dataset before dividing (the
PASCAL VOC convention), not averaged per image. mIoU averages the classes that occur in
the ground truth or the predictions; a class absent from both has no IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import IGNORE_INDEX


@dataclass(frozen=True)
class SegmentationScores:
    """mIoU, per-class IoU (NaN where a class never occurs), pixel accuracy, pixels counted."""

    miou: float
    class_iou: tuple[float, ...]
    pixel_accuracy: float
    pixels: int

    def as_dict(self, classes) -> dict:
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "pixels": self.pixels,
            "class_iou": {name: (None if np.isnan(v) else v) for name, v in zip(classes, self.class_iou)},
        }


class ConfusionMatrix:
    """counts[t, p]: pixels of true class t predicted as p; ignore-labelled pixels are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, labels: np.ndarray, predictions: np.ndarray) -> None:
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
        if labels.shape != predictions.shape:
            raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in size")
        keep = labels != self.ignore_index
        labels, predictions = labels[keep], predictions[keep]
        if labels.size and (labels.max() >= self.num_classes or predictions.max() >= self.num_classes):
            raise ValueError(f"class index out of range for {self.num_classes} classes")
        self.counts += np.bincount(labels * self.num_classes + predictions, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def merge(self, other: "ConfusionMatrix") -> None:
        self.counts += other.counts

    def scores(self) -> SegmentationScores:
        true_positive = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(axis=0) + self.counts.sum(axis=1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, true_positive / union, np.nan)
        total = int(self.counts.sum())
        present = ~np.isnan(iou)
        return SegmentationScores(
            miou=float(iou[present].mean()) if present.any() else float("nan"),
            class_iou=tuple(float(v) for v in iou),
            pixel_accuracy=float(true_positive.sum() / total) if total else float("nan"),
            pixels=total,
        )


def segmentation_scores(labels: np.ndarray, predictions: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> SegmentationScores:
    """The scores of one prediction against its ground truth (one image, or any set of pixels at once)."""
    matrix = ConfusionMatrix(num_classes, ignore_index)
    matrix.update(labels, predictions)
    return matrix.scores()
