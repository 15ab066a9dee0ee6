"""Segmentation metrics from a confusion matrix: IoU per class, mIoU, pixel accuracy; and the attention's entropy.

IoU_c = TP_c / (TP_c + FP_c + FN_c), accumulated over a whole dataset before dividing (the
PASCAL VOC convention), not averaged per image. mIoU averages the classes that occur in
the ground truth or the predictions; a class absent from both has no IoU.
"""

from __future__ import annotations

import math
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

    def merge(self, other: ConfusionMatrix) -> None:
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


def attention_entropy(weights: np.ndarray, unit: str = "bits", normalized: bool = False) -> np.ndarray:
    """Per-pixel entropy of the weights over scales, H = -sum_s w^s log w^s, with 0 log 0 = 0.

    (S, ...) weights summing to 1 over S -> (...) float64, in ``unit`` "bits" (log base 2) or
    "nats" (natural log). 0 means all weight on one scale; log S means all scales equal.
    ``normalized`` divides by log S, giving 0-1 for any number of scales (then the unit does
    not matter). The one entropy of segscale: the page's entropy map, the prediction files and
    the diagnostics' mean entropy all come from here.
    """
    if unit not in ("bits", "nats"):
        raise ValueError(f"unit must be 'bits' or 'nats', got {unit!r}")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim < 1:
        raise ValueError("weights need the scale axis first, (S, ...); got a scalar")
    log = np.log2 if unit == "bits" or normalized else np.log
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, weights * log(np.where(weights > 0, weights, 1.0)), 0.0)
    entropy = np.clip(-terms.sum(axis=0), 0.0, None)
    if normalized:
        count = weights.shape[0]
        entropy = entropy / math.log2(count) if count > 1 else np.zeros_like(entropy)
    return entropy


def segmentation_scores(
    labels: np.ndarray, predictions: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> SegmentationScores:
    """The scores of one prediction against its ground truth (one image, or any set of pixels at once)."""
    matrix = ConfusionMatrix(num_classes, ignore_index)
    matrix.update(labels, predictions)
    return matrix.scores()
