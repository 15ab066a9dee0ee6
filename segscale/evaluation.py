"""Scoring a model on whole images: the loop shared by training's validation and ``segscale evaluate``."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .data.transforms import image_to_tensor
from .metrics import ConfusionMatrix, SegmentationScores
from .modeling.geometry import resize_bilinear
from .modeling.multiscale import MultiScaleOutput


@torch.inference_mode()
def predict_full_image(model: nn.Module, image: np.ndarray, mean, std, scales, merge: str, device) -> tuple[np.ndarray, MultiScaleOutput]:
    """(labels (H, W) int64 at input resolution, the model's output) for one uint8 RGB image."""
    batch = image_to_tensor(image, mean, std).unsqueeze(0).to(device)
    output = model(batch, scales=scales, merge=merge)
    labels = resize_bilinear(output.fused.float(), tuple(image.shape[:2])).argmax(dim=1)[0]
    return labels.cpu().numpy(), output


def evaluate_pairs(
    model: nn.Module,
    pairs: Iterable,
    num_classes: int,
    mean,
    std,
    scales,
    merge: str,
    device,
    on_image: Callable[[int], None] | None = None,
) -> SegmentationScores:
    """Dataset-level confusion matrix of a model over (image, label) pairs, at one scale set and merge."""
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes)
    try:
        for index in range(len(pairs)):
            image, label = pairs[index]
            predicted, _ = predict_full_image(model, image, mean, std, scales, merge, device)
            confusion.update(label, predicted)
            if on_image is not None:
                on_image(index)
    finally:
        model.train(was_training)
    return confusion.scores()


# --- ScaleShapes diagnostics: quality and attention by object size -------------------------

# Edges of the object-size bins, by extent (circumscribed diameter) in pixels: doublings
# from ScaleShapes' smallest object (12 px) to its largest (0.9 x 640 px).
SIZE_BIN_EDGES = (12.0, 24.0, 48.0, 96.0, 192.0, 384.0, 640.0)


def size_bin_index(extent: float, edges=SIZE_BIN_EDGES) -> int:
    """Bin of an extent: i such that edges[i] <= extent < edges[i+1], clamped to the outer bins."""
    return int(np.clip(np.searchsorted(edges, extent, side="right") - 1, 0, len(edges) - 2))


def _disc_mask(center, radius: float, shape) -> tuple[tuple[slice, slice], np.ndarray]:
    """(window, mask) of the pixels whose centres lie within ``radius`` of ``center`` (x, y)."""
    height, width = shape
    cx, cy = center
    top, bottom = max(0, int(np.floor(cy - radius))), min(height, int(np.ceil(cy + radius)) + 1)
    left, right = max(0, int(np.floor(cx - radius))), min(width, int(np.ceil(cx + radius)) + 1)
    ys, xs = np.mgrid[top:bottom, left:right]
    return (slice(top, bottom), slice(left, right)), (xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius


class SizeBinnedIoU:
    """IoU of objects grouped by extent.

    For an object of class c with visible pixels M and circumscribed disc D:
    TP = |M and pred == c|, FN = |M and pred != c|, FP = |D and pred == c and label != c|
    (class c predicted around the object where it is not). Summed over the objects of a bin,
    IoU = TP / (TP + FN + FP). An object's FP window is its own disc, so one object's spill is
    not charged to a distant object of another size.
    """

    def __init__(self, edges=SIZE_BIN_EDGES) -> None:
        self.edges = tuple(edges)
        bins = len(self.edges) - 1
        self.true_positive = np.zeros(bins, np.int64)
        self.false_negative = np.zeros(bins, np.int64)
        self.false_positive = np.zeros(bins, np.int64)
        self.objects = np.zeros(bins, np.int64)

    def update(self, objects, instances: np.ndarray, label: np.ndarray, predicted: np.ndarray) -> None:
        for obj in objects:
            visible = instances == obj.instance_id
            if not visible.any():
                continue
            b = size_bin_index(obj.extent, self.edges)
            hit = predicted[visible] == obj.class_index
            self.true_positive[b] += int(hit.sum())
            self.false_negative[b] += int((~hit).sum())
            window, disc = _disc_mask(obj.center, obj.extent / 2, label.shape)
            spill = disc & (predicted[window] == obj.class_index) & (label[window] != obj.class_index)
            self.false_positive[b] += int(spill.sum())
            self.objects[b] += 1

    def rows(self) -> list[dict]:
        rows = []
        for b in range(len(self.edges) - 1):
            denominator = self.true_positive[b] + self.false_negative[b] + self.false_positive[b]
            rows.append({
                "extent_low": self.edges[b],
                "extent_high": self.edges[b + 1],
                "objects": int(self.objects[b]),
                "iou": float(self.true_positive[b] / denominator) if denominator else None,
                "recall": float(self.true_positive[b] / (self.true_positive[b] + self.false_negative[b])) if self.objects[b] else None,
            })  # fmt: skip
        return rows


class AttentionBySize:
    """Mean attention weight on each scale for objects grouped by extent (and by class).

    An object's weight on scale s is the mean of w^s (upsampled to image resolution) over its
    visible pixels; a bin's value is the mean over its objects, so large objects do not
    outvote small ones by their pixel count.
    """

    def __init__(self, scales, classes, edges=SIZE_BIN_EDGES) -> None:
        self.scales, self.classes, self.edges = tuple(scales), tuple(classes), tuple(edges)
        self.sums = np.zeros((len(self.edges) - 1, len(self.scales)))
        self.counts = np.zeros(len(self.edges) - 1, np.int64)
        self.class_sums = np.zeros((len(self.classes), len(self.scales)))
        self.class_counts = np.zeros(len(self.classes), np.int64)
        self.dominant_pixels = np.zeros(len(self.scales), np.int64)
        self.records: list[dict] = []

    def update(self, objects, instances: np.ndarray, attention: np.ndarray) -> None:
        """attention: (S, H, W) weights at image resolution."""
        self.dominant_pixels += np.bincount(attention.argmax(axis=0).ravel(), minlength=len(self.scales))
        for obj in objects:
            visible = instances == obj.instance_id
            if not visible.any():
                continue
            weights = attention[:, visible].mean(axis=1)  # (S,)
            b = size_bin_index(obj.extent, self.edges)
            self.sums[b] += weights
            self.counts[b] += 1
            self.class_sums[obj.class_index] += weights
            self.class_counts[obj.class_index] += 1
            self.records.append({"class": obj.class_name, "extent": float(obj.extent), "weights": [float(w) for w in weights]})

    def rows(self) -> list[dict]:
        return [
            {
                "extent_low": self.edges[b],
                "extent_high": self.edges[b + 1],
                "objects": int(self.counts[b]),
                "mean_weight": {str(s): (float(self.sums[b, k] / self.counts[b]) if self.counts[b] else None) for k, s in enumerate(self.scales)},
            }
            for b in range(len(self.edges) - 1)
        ]

    def class_rows(self) -> dict:
        return {
            name: {str(s): float(self.class_sums[c, k] / self.class_counts[c]) for k, s in enumerate(self.scales)}
            for c, name in enumerate(self.classes)
            if self.class_counts[c]
        }

    def dominant_share(self) -> dict:
        total = self.dominant_pixels.sum()
        return {str(s): (float(self.dominant_pixels[k] / total) if total else None) for k, s in enumerate(self.scales)}


def labels_for_merge(score_maps: np.ndarray, attention_logits: np.ndarray | None, merge: str, size) -> np.ndarray:
    """Labels at image resolution for one merge mode, from one prediction's (S, C, h, w) score maps.

    Lets one forward pass serve all three merge modes: they differ only in Eq. 1's weights.
    """
    from .modeling.fusion import merge_score_maps

    logits = None if attention_logits is None else torch.from_numpy(attention_logits)[None]
    fused, _ = merge_score_maps(torch.from_numpy(score_maps)[None], merge, logits)
    return resize_bilinear(fused, tuple(size)).argmax(dim=1)[0].numpy()


def evaluate_scaleshapes(predictor, split: str, count: int, scales, merges, start: int = 0, on_image=None) -> dict:
    """mIoU, per-class IoU, pixel accuracy and IoU by size per merge mode; attention by size.

    Generates ScaleShapes images ``start .. start + count - 1`` of ``split`` (deterministic),
    runs the model once per image and scores every requested merge mode from that one pass.
    """
    from .data.scaleshapes import CLASSES, generate_sample

    classes = predictor.classes
    if tuple(classes) != tuple(CLASSES):
        raise ValueError(f"this checkpoint predicts {list(classes)}, not ScaleShapes' classes {list(CLASSES)}")
    needs_attention = "attention" in merges
    scales, _ = predictor.check_request(scales, "attention" if needs_attention else "average")
    confusions = {merge: ConfusionMatrix(len(classes)) for merge in merges}
    by_size = {merge: SizeBinnedIoU() for merge in merges}
    attention_by_size = AttentionBySize(scales, classes) if needs_attention else None
    for position, index in enumerate(range(start, start + count)):
        sample = generate_sample(split, index)
        prediction = predictor.predict(sample.image, scales=scales, merge="attention" if needs_attention else "average")
        for merge in merges:
            predicted = labels_for_merge(prediction.score_maps, prediction.attention_logits, merge, sample.label.shape)
            confusions[merge].update(sample.label, predicted)
            by_size[merge].update(sample.objects, sample.instances, sample.label, predicted)
        if attention_by_size is not None:
            attention = resize_bilinear(torch.from_numpy(prediction.attention)[None], sample.label.shape)[0].numpy()
            attention_by_size.update(sample.objects, sample.instances, attention)
        if on_image is not None:
            on_image(position)
    report = {
        "dataset": "scaleshapes",
        "split": split,
        "images": count,
        "start": start,
        "scales": list(scales),
        "merges": {
            merge: {**confusions[merge].scores().as_dict(classes), "iou_by_size": by_size[merge].rows()} for merge in merges
        },
    }
    if attention_by_size is not None:
        report["attention_by_size"] = attention_by_size.rows()
        report["attention_by_class"] = attention_by_size.class_rows()
        report["dominant_scale_share"] = attention_by_size.dominant_share()
    return report


def evaluate_pairs_report(predictor, pairs, count: int, scales, merges, on_image=None) -> dict:
    """mIoU, per-class IoU and pixel accuracy per merge mode over (image, label) pairs (any dataset)."""
    classes = predictor.classes
    base_merge = "attention" if "attention" in merges else "average"
    scales, _ = predictor.check_request(scales, base_merge)
    confusions = {merge: ConfusionMatrix(len(classes)) for merge in merges}
    for index in range(count):
        image, label = pairs[index]
        prediction = predictor.predict(image, scales=scales, merge=base_merge)
        for merge in merges:
            confusions[merge].update(label, labels_for_merge(prediction.score_maps, prediction.attention_logits, merge, label.shape))
        if on_image is not None:
            on_image(index)
    return {
        "images": count,
        "scales": list(scales),
        "merges": {merge: confusions[merge].scores().as_dict(classes) for merge in merges},
    }
