"""One image, every merge: attention, average and max pooling from one
forward pass, where they disagree, and against the ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..losses import IGNORE_INDEX
from ..merge_labels import labels_for_merge
from ..merges import HEADS, merges_with
from ..metrics import ConfusionMatrix, SegmentationScores


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One merge on one image.

    labels: (H, W) int64. scores: mIoU, per-class IoU and pixel accuracy against the ground
    truth (None without it). errors: (H, W) bool, True where the label is wrong (False on
    ignore-labelled pixels; None without ground truth). correct_where_disagree: of the scored
    pixels where the merges disagree, the share this one gets right (None without ground
    truth or without such pixels).
    """

    method: str
    labels: np.ndarray
    scores: SegmentationScores | None
    errors: np.ndarray | None
    correct_where_disagree: float | None


@dataclass(frozen=True, eq=False)
class MergeComparison:
    """Every merge of one prediction, side by side.

    classes: the class names. results: one :class:`MethodResult` per merge (attention,
    average, max; average and max only for a model without an attention head).
    disagreement: (H, W) bool, True where not all merges give the same label.
    agreement: (a, b, share of pixels where a and b agree) for every pair.
    ground_truth: (H, W) labels, or None.
    """

    classes: tuple[str, ...]
    results: tuple[MethodResult, ...]
    disagreement: np.ndarray
    agreement: tuple[tuple[str, str, float], ...]
    ground_truth: np.ndarray | None

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(r.method for r in self.results)

    @property
    def disagreement_share(self) -> float:
        return float(self.disagreement.mean())

    @property
    def has_ground_truth(self) -> bool:
        return self.ground_truth is not None

    def result(self, method: str) -> MethodResult:
        for item in self.results:
            if item.method == method:
                return item
        raise ValueError(f"no {method!r} merge here; compared: {', '.join(self.methods)}")

    def summary_rows(self) -> list[dict]:
        """One row per merge: disagreement handling and, with ground truth, mIoU, pixel accuracy, per-class IoU."""
        rows = []
        for r in self.results:
            row: dict = {"merge": r.method}
            if r.scores is not None:
                row["mIoU"] = r.scores.miou
                row["pixel accuracy"] = r.scores.pixel_accuracy
                row["wrong pixels"] = int(r.errors.sum())
                row["right where merges disagree"] = r.correct_where_disagree
                row.update(
                    {f"IoU {name}": (None if np.isnan(v) else v) for name, v in zip(self.classes, r.scores.class_iou)}
                )
            rows.append(row)
        return rows

    def to_text(self) -> str:
        """The comparison as an aligned table for a terminal."""
        lines = [
            f"merges compared: {', '.join(self.methods)} (from one forward pass)",
            (
                f"pixels where they disagree: {int(self.disagreement.sum())} "
                f"of {self.disagreement.size} ({self.disagreement_share:.2%})"
            ),
            "pairwise agreement: " + ", ".join(f"{a}/{b} {share:.2%}" for a, b, share in self.agreement),
        ]
        if not self.has_ground_truth:
            lines.append("no ground truth: IoU and error maps need a ScaleShapes sample or a label image")
            return "\n".join(lines)
        header = f"{'merge':<13}{'mIoU':>8}{'pix acc':>9}{'wrong':>9}{'right@dis':>11}"
        lines += ["", header, "-" * len(header)]
        for r in self.results:
            right = "-" if r.correct_where_disagree is None else f"{r.correct_where_disagree:.3f}"
            lines.append(
                f"{r.method:<13}{r.scores.miou:8.4f}{r.scores.pixel_accuracy:9.4f}{int(r.errors.sum()):9d}{right:>11}"
            )
        lines.append("right@dis: share of the pixels where the merges disagree that this merge labels correctly")
        # IoU per class as rows, so that every class keeps its whole name and 21 classes still fit a terminal.
        width = max(len("IoU per class"), *(len(name) for name in self.classes)) + 2
        header = f"{'IoU per class':<{width}}" + "".join(f"{r.method:>13}" for r in self.results)
        lines += ["", header, "-" * len(header)]
        for c, name in enumerate(self.classes):
            values = (r.scores.class_iou[c] for r in self.results)
            lines.append(f"{name:<{width}}" + "".join(f"{'-':>13}" if np.isnan(v) else f"{v:13.3f}" for v in values))
        lines.append("-: the class is neither in the ground truth nor predicted")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "methods": list(self.methods),
            "pixels": int(self.disagreement.size),
            "disagreement_share": self.disagreement_share,
            "agreement": [{"a": a, "b": b, "share": share} for a, b, share in self.agreement],
            "ground_truth": self.has_ground_truth,
            "results": {
                r.method: (
                    None
                    if r.scores is None
                    else {
                        **r.scores.as_dict(self.classes),
                        "wrong_pixels": int(r.errors.sum()),
                        "correct_where_disagree": r.correct_where_disagree,
                    }
                )
                for r in self.results
            },
        }


def available_merges(prediction) -> tuple[str, ...]:
    """The merges one prediction can be scored with: attention when it has attention logits,
    hierarchical when it has gate logits, average and max always."""
    heads = [head for head in HEADS if getattr(prediction, head.logits, None) is not None]
    return merges_with(heads)


def compare_merges(
    prediction, ground_truth: np.ndarray | None = None, classes: Sequence[str] | None = None
) -> MergeComparison:
    """Attention, average and max pooling from one prediction's score maps, and against the ground truth if given.

    Args:
        prediction: a :class:`~segscale.predictor.Prediction` (any merge).
        ground_truth: (H, W) integer labels of the predicted image (255 is ignored), or None.
        classes: the class names; needed with ground truth (defaults to "class 0", ...).
    """
    num_classes = prediction.score_maps.shape[1]
    classes = tuple(classes) if classes is not None else tuple(f"class {c}" for c in range(num_classes))
    if len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names for a prediction with {num_classes} classes")
    size = tuple(prediction.labels.shape)
    if ground_truth is not None:
        ground_truth = np.asarray(ground_truth)
        if tuple(ground_truth.shape) != size:
            hint = (
                " (the image was scaled down before prediction; compare at the predicted size)"
                if prediction.was_downscaled
                else ""
            )
            raise ValueError(f"ground truth is {ground_truth.shape}, the prediction {size}: they must match{hint}")
        valid = ground_truth != IGNORE_INDEX
        if valid.any() and (ground_truth[valid].min() < 0 or ground_truth[valid].max() >= num_classes):
            raise ValueError(f"ground truth holds labels outside 0..{num_classes - 1} (and {IGNORE_INDEX} for ignore)")
    methods = available_merges(prediction)
    labels = {
        m: labels_for_merge(
            prediction.score_maps,
            prediction.attention_logits,
            m,
            size,
            gate_logits=prediction.gate_logits,
            scales=prediction.scales,
        )
        for m in methods
    }
    stack = np.stack([labels[m] for m in methods])  # (M, H, W)
    disagreement = (stack != stack[0]).any(axis=0)
    agreement = tuple(
        (a, b, float((labels[a] == labels[b]).mean())) for k, a in enumerate(methods) for b in methods[k + 1 :]
    )
    results = []
    for m in methods:
        scores = errors = correct = None
        if ground_truth is not None:
            matrix = ConfusionMatrix(num_classes)
            matrix.update(ground_truth, labels[m])
            scores = matrix.scores()
            errors = valid & (labels[m] != ground_truth)
            contested = disagreement & valid
            correct = float((labels[m][contested] == ground_truth[contested]).mean()) if contested.any() else None
        results.append(MethodResult(m, labels[m], scores, errors, correct))
    return MergeComparison(classes, tuple(results), disagreement, agreement, ground_truth)
