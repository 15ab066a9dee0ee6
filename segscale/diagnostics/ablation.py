"""What each scale decides, read off one pass's score maps: leave one scale out, max's pick, per-scale confidence.

Three exact views that need no extra network pass, for every merge and for a network with no
attention head at all (an imported torchvision model merging by average or max):

* :func:`scale_ablation` -- for each scale s, the same merge over the other S-1 score maps:
  attention renormalises Eq. 2 over the remaining logits, hierarchical runs the chain of gates
  without s (:func:`segscale.modeling.fusion.hierarchical_chain`, in whatever direction it
  chains), average and max pool the rest. The pixels whose label changes are the ones s
  decides. Every merge goes through :func:`segscale.modeling.fusion.merge_score_maps`, so no
  merge is written twice.
* :func:`max_deciding_scale` -- max pooling takes, per pixel *and class*, the largest score
  over scales; for the class that wins, the scale it came from is the scale that decided.
* :func:`scale_confidence` -- each scale's top-class probability (softmax over classes of its
  own f^s), and where the scales' own labels disagree, the most confident one.

Labels are compared at image resolution, the way :class:`~segscale.predictor.Prediction`'s
labels are made (fused map upsampled bilinearly, then the argmax; :mod:`.image_labels` does it without
upsampling every class at every pixel). The label with every scale is
recomputed here from the same float32 score maps, so a change is due to the left-out scale and
never to the fast path's bf16 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..formatting import format_percent, format_scale_set, scale_label
from ..merges import HIERARCHICAL
from ..modeling.fusion import merge_score_maps
from .image_labels import GridToImage, argmax_over_rows

# One sentence each, shown beside the maps on the pages and printed by the commands.
ABLATION_DEFINITION = (
    "Without this scale: the same merge over the other scales' score maps (attention renormalised over "
    "the rest); the marked pixels change label, so this scale decides them."
)
MAX_DECIDING_NOTE = (
    "Max pooling keeps, per pixel and per class, the largest score over the scales; shown is the scale "
    "whose score won for the predicted class. Unlike attention's weights it is chosen per class, "
    "not shared by all classes, and it is all or nothing: 1 for the scale taken, 0 for the others."
)
CONFIDENCE_DEFINITION = (
    "Each scale's top-class probability (softmax over classes of its own score map fˢ); where the "
    "scales' own labels disagree, the most confident scale."
)
SINGLE_SCALE_ABLATION = "One scale: there is no other scale to fuse without it, so nothing to leave out."

NO_SCALE = -1  # in the index maps: no scale decides this pixel (or, for confidence, the scales agree)
SEVERAL_SCALES = -2  # in the decision map: leaving out any of two or more scales changes the label


def _arrays(prediction):
    """The score maps (S, C, h, w) and the attention and gate logits (S, h, w, or None), float32."""

    def optional(name):
        value = getattr(prediction, name, None)
        return None if value is None else np.asarray(value, dtype=np.float32)

    return np.asarray(prediction.score_maps, dtype=np.float32), optional("attention_logits"), optional("gate_logits")


def _fused_over(arrays, merge: str, scales, keep):
    """``merge`` over the scales in ``keep`` only, through the one place merges are written.

    ``keep``: a list of scale indices -> (1, C, h, w); or a list of B such lists, all as long, for a
    merge that does not read the scales' values (not hierarchical) -> (B, C, h, w), one call for all.
    The scales are picked in numpy: indexing a small tensor costs more in thread start-up than in work."""
    maps, logits, gates = arrays
    batched = bool(keep) and isinstance(keep[0], list)
    index = np.asarray(keep if batched else [keep])  # (B, S')

    def subset(values):
        return None if values is None else torch.from_numpy(np.ascontiguousarray(values[index]))

    chosen = [scales[k] for k in index[0]]
    fused, _ = merge_score_maps(subset(maps), merge, subset(logits), gate_logits=subset(gates), scales=chosen)
    return fused


@dataclass(frozen=True, eq=False)
class ScaleAblation:
    """Leave-one-scale-out of one prediction for one merge.

    Shapes: S scales, (H, W) the image as predicted.

    Attributes:
        scales: the S scales, in the order of every S axis.
        merge: the merge fused with and without each scale.
        labels: (H, W), the merge over all S scales.
        without: (S, H, W), the merge over every scale but s.
            Both uint8 where the classes fit in a byte (every network here), else int64: a fraction of
            the memory traffic of int64, which is most of these views' cost.
        changed: (S, H, W) bool, ``without[s] != labels``: the pixels scale s decides.
    """

    scales: tuple[float, ...]
    merge: str
    labels: np.ndarray
    without: np.ndarray
    changed: np.ndarray

    @property
    def shares(self) -> tuple[float, ...]:
        """(S,) the share of the image whose label changes without scale s."""
        return tuple(float(np.count_nonzero(c)) / c.size for c in self.changed)

    @property
    def any_share(self) -> float:
        return 1.0 - float(self._decision_counts[1]) / self.decision_map.size  # all but where no scale decides

    @cached_property
    def decision_map(self) -> np.ndarray:
        """(H, W) int8 (int64 past 127 scales): the one scale whose absence changes the label,
        :data:`SEVERAL_SCALES` where leaving out any of several does, :data:`NO_SCALE` where none does."""
        # One pass per scale over one byte per pixel: numpy's sum and argmax along a short leading axis of
        # an image are several times slower.
        count = np.zeros(self.changed.shape[1:], np.int16)
        decision = np.full(self.changed.shape[1:], NO_SCALE, np.int8 if len(self.scales) < 128 else np.int64)
        for k, changed in enumerate(self.changed):
            count += changed
            np.copyto(decision, k, where=changed)
        np.copyto(decision, SEVERAL_SCALES, where=count > 1)
        return decision

    @cached_property
    def _decision_counts(self) -> np.ndarray:
        """(S + 2,) pixels of the decision map per value: several scales, no scale, then scale 0, 1, ..."""
        values = (SEVERAL_SCALES, NO_SCALE, *range(len(self.scales)))
        return np.array([np.count_nonzero(self.decision_map == v) for v in values])  # cheaper than a bincount

    @property
    def sole_shares(self) -> tuple[float, ...]:
        """(S,) the share of the image that scale s alone decides; with :attr:`several_share` they add
        up to :attr:`any_share`."""
        counts = self._decision_counts
        return tuple(float(v) / self.decision_map.size for v in counts[2:])

    @property
    def several_share(self) -> float:
        return float(self._decision_counts[0]) / self.decision_map.size

    def rows(self, classes=None) -> list[dict]:
        """One row per scale: its share decided, alone decided, and the label most often taken over without it."""
        rows = []
        for k, scale in enumerate(self.scales):
            row = {
                "scale": scale,
                "pixels that change without it": self.shares[k],
                "decided by it alone": self.sole_shares[k],
            }
            if classes is not None:
                changed = self.changed[k]
                if changed.any():  # the smallest label on a tie, as np.unique's counts would give
                    counts = np.bincount(self.without[k][changed])
                    row["most common label without it"] = str(classes[int(counts.argmax())])
                else:
                    row["most common label without it"] = "-"
            rows.append(row)
        return rows

    def to_text(self) -> str:
        """The shares as a few aligned lines for a terminal."""
        lines = [
            f"leave one scale out ({self.merge}, scales {format_scale_set(self.scales)}): {ABLATION_DEFINITION}",
            f"  {'scale':<8}{'changes':>10}{'alone':>10}",
        ]
        for k, scale in enumerate(self.scales):
            lines.append(
                f"  {scale_label(scale):<8}{format_percent(self.shares[k], 2):>10}"
                f"{format_percent(self.sole_shares[k], 2):>10}"
            )
        lines.append(
            f"  any one scale decides {format_percent(self.any_share, 2)} of the image; "
            f"several scales each would change {format_percent(self.several_share, 2)}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "merge": self.merge,
            "scales": list(self.scales),
            "definition": ABLATION_DEFINITION,
            "changed_share": dict(zip(map(str, self.scales), self.shares)),
            "decided_alone_share": dict(zip(map(str, self.scales), self.sole_shares)),
            "several_share": self.several_share,
            "any_share": self.any_share,
        }


def _check_merge(prediction, merge: str) -> None:
    from .merges import available_merges

    merges = available_merges(prediction)
    if merge not in merges:
        raise ValueError(
            f"this prediction cannot be merged by {merge!r} (it has no such head); use one of: {', '.join(merges)}"
        )


def scale_ablation(prediction, merge: str | None = None) -> ScaleAblation:
    """Leave each scale out in turn and fuse the rest with ``merge`` (the prediction's own by default).

    Args:
        prediction: a :class:`~segscale.predictor.Prediction` (or anything with its ``score_maps``,
            ``attention_logits``, ``gate_logits``, ``scales``, ``merge`` and ``labels``).
        merge: "attention" and "hierarchical" need the prediction's logits; average and max always work.

    Raises ValueError for a single scale (nothing to leave out) or a merge the prediction cannot do.
    """
    merge = prediction.merge if merge is None else merge
    _check_merge(prediction, merge)
    scales = tuple(float(s) for s in prediction.scales)
    if len(scales) < 2:
        raise ValueError(f"scales {format_scale_set(scales)}: {SINGLE_SCALE_ABLATION} Pick two or more scales.")
    size = tuple(prediction.labels.shape)
    arrays = _arrays(prediction)
    everything = list(range(len(scales)))
    rest = [[k for k in everything if k != s] for s in everything]
    with torch.inference_mode():
        align = getattr(prediction, "align_corners", True)  # how the model resizes (its trunk's convention)
        to_image = GridToImage(arrays[0].shape[-2:], size, align)
        fused_all = _fused_over(arrays, merge, scales, everything)
        reference = to_image.winners(fused_all)
        labels = to_image.labels(fused_all, reference)
        if merge == HIERARCHICAL:  # each chain has its own scales: one call per left-out scale
            fused = [_fused_over(arrays, merge, scales, keep) for keep in rest]
        else:  # the other merges ignore the scales' values: every leave-one-out in one batch
            fused = _fused_over(arrays, merge, scales, rest).split(1)
        without = np.empty((len(scales), *size), labels.dtype)
        changed = np.zeros((len(scales), *size), bool)
        for k, one in enumerate(fused):
            to_image.labels_beside(one, reference, labels, out=without[k], changed=changed[k])
    return ScaleAblation(scales, merge, labels, without, changed)


def max_deciding_scale(score_maps: np.ndarray) -> np.ndarray:
    """(S, C, h, w) score maps -> (h, w) int64: the scale max pooling took for the class it predicts.

    The predicted class is argmax_c max_s f^s_c; the deciding scale is argmax_s f^s of that class
    (the first scale on a tie, as the max itself reads it).
    """
    score_maps = np.asarray(score_maps)
    if score_maps.ndim != 4:
        raise ValueError(f"score maps must be (S, C, h, w), got shape {score_maps.shape}")
    count, classes, *grid = score_maps.shape
    flat = score_maps.reshape(count, classes, -1)
    winner = argmax_over_rows(flat.max(axis=0))  # (h w,)
    picked = np.take_along_axis(flat, winner[None, None], axis=1)[:, 0]  # (S, h w): each scale's score of it
    return argmax_over_rows(picked).reshape(grid)


def max_deciding_weights(score_maps: np.ndarray) -> np.ndarray:
    """(S, C, h, w) -> (S, h, w) float32: 1 where scale s is max pooling's deciding scale, else 0.

    Max pooling's weight row: Eq. 1 with these weights gives the winning class's fused score
    exactly (and only that class's)."""
    deciding = max_deciding_scale(score_maps)
    return (np.arange(score_maps.shape[0])[:, None, None] == deciding[None]).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ScaleConfidence:
    """How sure each scale is of its own label, on the model's grid (h, w).

    top_probability: (S, h, w) float32, max_c softmax_c(f^s_c).
    top_class: (S, h, w) int64, each scale's own label argmax_c f^s_c.
    disagree: (h, w) bool, True where not every scale gives the same label.
    most_confident: (h, w) int64, where they disagree the scale with the largest top-class
        probability; :data:`NO_SCALE` where they agree.
    """

    scales: tuple[float, ...]
    top_probability: np.ndarray
    top_class: np.ndarray
    disagree: np.ndarray
    most_confident: np.ndarray

    @property
    def disagree_share(self) -> float:
        return float(self.disagree.mean())

    @property
    def most_confident_shares(self) -> tuple[float, ...]:
        """(S,) the share of the grid where the scales disagree and scale s is the most confident."""
        return tuple(float((self.most_confident == k).mean()) for k in range(len(self.scales)))

    @property
    def mean_top_probability(self) -> tuple[float, ...]:
        return tuple(float(p.mean()) for p in self.top_probability)

    def to_text(self) -> str:
        lines = [
            f"per-scale confidence: {CONFIDENCE_DEFINITION}",
            f"  the scales' own labels disagree on {format_percent(self.disagree_share, 2)} of the grid",
            f"  {'scale':<8}{'mean top p':>12}{'most sure':>11}",
        ]
        for k, scale in enumerate(self.scales):
            lines.append(
                f"  {scale_label(scale):<8}{self.mean_top_probability[k]:12.3f}"
                f"{format_percent(self.most_confident_shares[k], 2):>11}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "scales": list(self.scales),
            "disagree_share": self.disagree_share,
            "mean_top_probability": dict(zip(map(str, self.scales), self.mean_top_probability)),
            "most_confident_share": dict(zip(map(str, self.scales), self.most_confident_shares)),
        }


def scale_confidence(score_maps: np.ndarray, scales) -> ScaleConfidence:
    """Per-scale top-class probability and, where the scales disagree, the most confident scale.

    score_maps: (S, C, h, w) f^s on the common grid; scales: the S scales.
    The exponentials are summed in float64: in float32, probabilities near 1 would round to 1."""
    scores = np.asarray(score_maps, dtype=np.float32)
    if scores.ndim != 4:
        raise ValueError(f"score maps must be (S, C, h, w), got shape {scores.shape}")
    scales = tuple(float(s) for s in scales)
    if len(scales) != scores.shape[0]:
        raise ValueError(f"{len(scales)} scales for {scores.shape[0]} score maps")
    shifted = scores - scores.max(axis=1, keepdims=True)
    # The top class's probability is exp(0) / sum_c exp(f_c - max f): no need for the whole softmax.
    top_probability = 1.0 / np.exp(shifted).sum(axis=1, dtype=np.float64)  # (S, h, w)
    count, classes, *grid = scores.shape
    top_class = np.stack([argmax_over_rows(f.reshape(classes, -1)).reshape(grid) for f in scores])
    disagree = (top_class != top_class[:1]).any(axis=0)
    surest = argmax_over_rows(top_probability.reshape(count, -1)).reshape(grid)
    most_confident = np.where(disagree, surest, NO_SCALE)
    return ScaleConfidence(scales, top_probability.astype(np.float32), top_class, disagree, most_confident)


class AblationBySize:
    """Leave one scale out over many labelled images: what each scale decides, by object size, and the
    mIoU without each scale. Every array is a sum over images, so torchrun's ranks add theirs up.

    decided: (B, S) visible object pixels in size bin b whose label changes without scale s.
    object_pixels: (B,) visible object pixels per bin.
    decided_all: (S,) pixels of the whole images (background included) that change without s.
    pixels: (1,) pixels of the whole images.
    confusion_without: (S, K, K) confusion matrix (true, predicted) of the merge without scale s.
    """

    def __init__(self, scales, num_classes: int, merge: str, edges) -> None:
        self.scales, self.merge, self.edges = tuple(scales), merge, tuple(edges)
        self.num_classes = int(num_classes)
        bins, count = len(self.edges) - 1, len(self.scales)
        self.decided = np.zeros((bins, count), np.int64)
        self.object_pixels = np.zeros(bins, np.int64)
        self.decided_all = np.zeros(count, np.int64)
        self.pixels = np.zeros(1, np.int64)
        self.confusion_without = np.zeros((count, self.num_classes, self.num_classes), np.int64)

    def update(self, ablation: ScaleAblation, objects, instances: np.ndarray, label: np.ndarray, bin_of) -> None:
        from ..data.regions import object_pixels
        from ..metrics import ConfusionMatrix

        self.decided_all += ablation.changed.reshape(len(self.scales), -1).sum(axis=1)
        self.pixels += label.size
        for k in range(len(self.scales)):
            matrix = ConfusionMatrix(self.num_classes)
            matrix.update(label, ablation.without[k])
            self.confusion_without[k] += matrix.counts
        for obj in objects:
            window, visible = object_pixels(obj, instances)
            if not visible.any():
                continue
            b = bin_of(obj.extent)
            self.object_pixels[b] += int(visible.sum())
            self.decided[b] += ablation.changed[(slice(None), *window)][:, visible].sum(axis=1)

    def decided_by_extent(self) -> np.ndarray:
        """(B, S) share of a bin's object pixels that scale s decides; NaN for an empty bin."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.object_pixels[:, None] > 0, self.decided / self.object_pixels[:, None], np.nan)

    def decided_share(self) -> np.ndarray:
        """(S,) share of all pixels that scale s decides."""
        return self.decided_all / max(1, int(self.pixels[0]))

    def miou_without(self) -> np.ndarray:
        """(S,) mIoU of the merge without scale s."""
        from ..metrics import ConfusionMatrix

        values = []
        for counts in self.confusion_without:
            matrix = ConfusionMatrix(self.num_classes)
            matrix.counts = counts.copy()
            values.append(matrix.scores().miou)
        return np.asarray(values)


# The arrays of :class:`AblationBySize` that add up over images (and so over torchrun's ranks).
ABLATION_SUMMED_ARRAYS = ("decided", "object_pixels", "decided_all", "pixels", "confusion_without")


def deciding_scale_at(deciding: np.ndarray, size) -> np.ndarray:
    """(h, w) scale indices on the grid -> (H, W) at image resolution, nearest cell (no index is blended)."""
    from ..modeling.geometry import resize_labels

    return resize_labels(torch.from_numpy(np.ascontiguousarray(deciding))[None], tuple(size))[0].numpy()


def index_shares(indices: np.ndarray, count: int) -> tuple[float, ...]:
    """(S,) the share of the map taken by each scale index 0..count-1 (other values count in the total only)."""
    indices = np.asarray(indices)
    return tuple(float((indices == k).mean()) for k in range(count))


def max_deciding_text(deciding: np.ndarray, scales) -> str:
    """One line: the share of the grid each scale decides under max pooling."""
    shares = index_shares(deciding, len(scales))
    parts = ", ".join(f"{scale_label(s)}: {format_percent(v)}" for s, v in zip(scales, shares))
    return f"max pooling's deciding scale (the scale whose score won for the predicted class): {parts}"


@dataclass(frozen=True)
class PixelWithout:
    """One pixel without each scale: the fused label with every scale and with each one left out, per merge.

    Labels at the pixel are made as the image's are: each fused map g sampled bilinearly at the pixel
    (:func:`segscale.diagnostics.grid.bilinear_at`), then the argmax over classes.

    labels: merge -> the label with every scale. without: merge -> (S,) the label without scale s.
    top_probability: (S,) each scale's own top-class probability at the pixel's nearest cell.
    own_labels: (S,) each scale's own label (argmax of f^s) at that cell.
    """

    row: int
    col: int
    scales: tuple[float, ...]
    merges: tuple[str, ...]
    labels: dict
    without: dict
    top_probability: tuple[float, ...]
    own_labels: tuple[int, ...]

    def deciding_scales(self, merge: str) -> tuple[float, ...]:
        """The scales whose absence changes this pixel's label under ``merge``."""
        return tuple(s for s, label in zip(self.scales, self.without[merge]) if label != self.labels[merge])

    def rows(self, classes) -> list[dict]:
        """One row per scale: its own label and confidence, then per merge the label without it (``*``: changed)."""
        rows = []
        for k, scale in enumerate(self.scales):
            row = {
                "scale": scale,
                "own label": str(classes[self.own_labels[k]]),
                "top-class probability": self.top_probability[k],
            }
            for merge in self.merges:
                label = self.without[merge][k]
                mark = " *" if label != self.labels[merge] else ""
                row[f"{merge} without it"] = f"{classes[label]}{mark}"
            rows.append(row)
        return rows

    def to_text(self, classes) -> str:
        lines = [f"without each scale, at pixel (row {self.row}, col {self.col}) (* the label changes):"]
        for merge in self.merges:
            parts = ", ".join(
                f"without {scale_label(s)}: {classes[label]}{' *' if label != self.labels[merge] else ''}"
                for s, label in zip(self.scales, self.without[merge])
            )
            lines.append(f"  {merge:<12} all scales: {classes[self.labels[merge]]}; {parts}")
        confident = ", ".join(
            f"{scale_label(s)}: {classes[c]} p={p:.3f}"
            for s, c, p in zip(self.scales, self.own_labels, self.top_probability)
        )
        lines.append(f"  each scale's own label and its probability: {confident}")
        return "\n".join(lines)


def pixel_without(prediction, row: int, col: int, merges=None) -> PixelWithout:
    """The fused label at one pixel with every scale and without each, for ``merges`` (default: every one the
    prediction can do). ValueError for a single scale."""
    from .grid import bilinear_at, nearest_cell
    from .merges import available_merges

    merges = tuple(available_merges(prediction) if merges is None else merges)
    for merge in merges:
        _check_merge(prediction, merge)
    scales = tuple(float(s) for s in prediction.scales)
    if len(scales) < 2:
        raise ValueError(f"scales {format_scale_set(scales)}: {SINGLE_SCALE_ABLATION}")
    size = tuple(int(v) for v in prediction.labels.shape)
    arrays = _arrays(prediction)
    everything = list(range(len(scales)))
    align_corners = getattr(prediction, "align_corners", True)  # sampled as the model upsampled its labels

    def label(merge, keep):
        fused = _fused_over(arrays, merge, scales, keep)
        scores, _ = bilinear_at(fused[0].numpy(), int(row), int(col), size, align_corners)
        return int(scores.argmax())

    with torch.inference_mode():
        labels = {m: label(m, everything) for m in merges}
        without = {m: tuple(label(m, [k for k in everything if k != s]) for s in everything) for m in merges}
    i, j = nearest_cell(int(row), int(col), size, tuple(prediction.score_maps.shape[-2:]), align_corners)
    confidence = scale_confidence(prediction.score_maps[:, :, i : i + 1, j : j + 1], scales)
    return PixelWithout(
        row=int(row),
        col=int(col),
        scales=scales,
        merges=merges,
        labels=labels,
        without=without,
        top_probability=tuple(float(p) for p in confidence.top_probability[:, 0, 0]),
        own_labels=tuple(int(c) for c in confidence.top_class[:, 0, 0]),
    )
