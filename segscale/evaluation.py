"""Scoring a model on whole images: the loop shared by training's validation and ``segscale evaluate``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import distributed
from .data.regions import object_pixels
from .merge_labels import labels_for_merge
from .merges import FALLBACK_MERGE, LEARNED_MERGES
from .metrics import ConfusionMatrix, SegmentationScores
from .modeling.geometry import ALIGN_CORNERS, resize_bilinear


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
    """Dataset-level confusion matrix of a model over (image, label) pairs, at one scale set and merge.

    Training's validation: the model (in training or not) is scored through a float32
    :class:`~segscale.predictor.Predictor` built on a copy of it, the path ``segscale evaluate`` takes.
    """
    from .checkpoint import CheckpointMetadata
    from .config import normalize_scales
    from .inference import FastPathOptions
    from .predictor import Predictor

    was_training = model.training
    scales = normalize_scales(scales)
    metadata = CheckpointMetadata(
        model=model.config,
        classes=tuple(f"class {c}" for c in range(num_classes)),
        palette=tuple((0, 0, 0) for _ in range(num_classes)),
        mean=tuple(mean),
        std=tuple(std),
        scale_range=(min(scales), max(scales)),
    )
    try:
        predictor = Predictor(
            model,
            metadata,
            device=device,
            max_side=None,
            options=FastPathOptions(autocast="off"),
            pixel_budget=UNLIMITED_PIXELS,
        )
    finally:
        model.train(was_training)  # the Predictor put it in eval mode to copy it
    confusions = _score_pairs(predictor, pairs, range(len(pairs)), scales, (merge,), on_image)
    return confusions[merge].scores()


UNLIMITED_PIXELS = 1 << 62  # validation images are scored whole, however large


def _score_pairs(predictor, pairs, indices, scales, merges, on_image=None) -> dict[str, ConfusionMatrix]:
    """The one scoring loop over (image, label) pairs: one prediction per image serves every merge."""
    base_merge = _base_merge(merges)
    confusions = {merge: ConfusionMatrix(len(predictor.classes)) for merge in merges}
    for position, index in enumerate(indices):
        image, label = pairs[index]
        prediction = predictor.predict(image, scales=scales, merge=base_merge)
        for merge in merges:
            confusions[merge].update(label, _labels_of(prediction, merge, label.shape, predictor.align_corners))
        if on_image is not None:
            on_image(position)
    return confusions


# --- Diagnostics by object: quality and attention by object size ---------------------------

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
            window, visible = object_pixels(obj, instances)
            if not visible.any():
                continue
            b = size_bin_index(obj.extent, self.edges)
            hit = predicted[window][visible] == obj.class_index
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
            rows.append(
                {
                    "extent_low": self.edges[b],
                    "extent_high": self.edges[b + 1],
                    "objects": int(self.objects[b]),
                    "iou": float(self.true_positive[b] / denominator) if denominator else None,
                    "recall": float(self.true_positive[b] / (self.true_positive[b] + self.false_negative[b]))
                    if self.objects[b]
                    else None,
                }
            )
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

    def update(self, objects, instances: np.ndarray, attention: np.ndarray) -> None:
        """attention: (S, H, W) weights at image resolution."""
        self.dominant_pixels += np.bincount(attention.argmax(axis=0).ravel(), minlength=len(self.scales))
        for obj in objects:
            window, visible = object_pixels(obj, instances)
            if not visible.any():
                continue
            weights = attention[(slice(None), *window)][:, visible].mean(axis=1)  # (S,)
            b = size_bin_index(obj.extent, self.edges)
            self.sums[b] += weights
            self.counts[b] += 1
            self.class_sums[obj.class_index] += weights
            self.class_counts[obj.class_index] += 1

    def rows(self) -> list[dict]:
        return [
            {
                "extent_low": self.edges[b],
                "extent_high": self.edges[b + 1],
                "objects": int(self.counts[b]),
                "mean_weight": {
                    str(s): (float(self.sums[b, k] / self.counts[b]) if self.counts[b] else None)
                    for k, s in enumerate(self.scales)
                },
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


def _base_merge(merges) -> str:
    """The merge of the one forward pass every asked merge is derived from: the one with a head
    (its pass also yields the score maps average and max need), else average."""
    return next((m for m in LEARNED_MERGES if m in merges), FALLBACK_MERGE)


def _labels_of(prediction, merge: str, size, align_corners: bool = ALIGN_CORNERS) -> np.ndarray:
    return labels_for_merge(
        prediction.score_maps,
        prediction.attention_logits,
        merge,
        size,
        gate_logits=prediction.gate_logits,
        scales=prediction.scales,
        align_corners=align_corners,
    )


@dataclass(frozen=True)
class ObjectRecord:
    """One object (a ScaleShapes shape, or a region of a ground-truth mask), as a scoring pass saw it.

    weights: mean w^s over its visible pixels, per scale (None without attention).
    dominant_scale: the scale with the largest mean weight (None without attention).
    recall: per merge (in the order of the pass's ``merges``), the share of its visible
        pixels labelled with its class.
    """

    image_index: int
    instance_id: int
    class_index: int
    class_name: str
    extent: float
    visible_pixels: int
    weights: tuple[float, ...] | None
    dominant_scale: float | None
    recall: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class ObjectScoring:
    """What one pass of a checkpoint over labelled images measured, every merge from one forward pass.

    ``segscale evaluate`` (:meth:`to_report`, on ScaleShapes) and ``segscale diagnose``
    (:class:`segscale.diagnostics.ScaleDiagnostics`) both build their reports from it.
    Shapes: M merges, S scales, B size bins.

    Attributes:
        dataset, split, start, count: the images, ``start .. start + count - 1`` of ``split`` of ``dataset``.
        scales, merges, classes: the S and M axes, and the class names.
        confusions: (M,) dataset-level confusion matrices.
        by_size: (M,) IoU of objects by size bin.
        attention_by_size: the mean weights by size and class, or None when "attention" is
            not among the merges.
        objects: one :class:`ObjectRecord` per visible object, in image and instance order.
        seconds: wall time of the pass (of its slowest process under torchrun).
        ablation_by_size: leave one scale out with the pass's own merge (what each scale decides,
            by object size, and the mIoU without it:
            :class:`~segscale.diagnostics.ablation.AblationBySize`); None for a single scale.
        bin_edges: the B + 1 edges of the size bins (px of extent).
        objects_from: how the objects were found: None for ScaleShapes' generator, else a sentence
            (the regions of the ground-truth masks, :func:`segscale.data.regions.mask_regions`).
    """

    split: str
    start: int
    count: int
    scales: tuple[float, ...]
    merges: tuple[str, ...]
    classes: tuple[str, ...]
    confusions: tuple[ConfusionMatrix, ...]
    by_size: tuple[SizeBinnedIoU, ...]
    attention_by_size: AttentionBySize | None
    objects: tuple[ObjectRecord, ...]
    seconds: float
    ablation_by_size: object | None = None
    dataset: str = "scaleshapes"
    bin_edges: tuple[float, ...] = SIZE_BIN_EDGES
    objects_from: str | None = None

    def scores(self) -> tuple[SegmentationScores, ...]:
        """(M,) mIoU, per-class IoU and pixel accuracy per merge."""
        return tuple(c.scores() for c in self.confusions)

    def to_report(self) -> dict:
        """The JSON report of ``segscale evaluate``: scores and IoU by size per merge; attention by size."""
        report = {
            "dataset": self.dataset,
            "split": self.split,
            "images": self.count,
            "start": self.start,
            "scales": list(self.scales),
            "merges": {
                merge: {**scores.as_dict(self.classes), "iou_by_size": by_size.rows()}
                for merge, scores, by_size in zip(self.merges, self.scores(), self.by_size)
            },
        }
        if self.attention_by_size is not None:
            report["attention_by_size"] = self.attention_by_size.rows()
            report["attention_by_class"] = self.attention_by_size.class_rows()
            report["dominant_scale_share"] = self.attention_by_size.dominant_share()
        return report


def score_scaleshapes(
    predictor,
    split: str = "val",
    count: int = 50,
    scales=None,
    merges: Sequence[str] | None = None,
    start: int = 0,
    on_image: Callable[[int], None] | None = None,
    context: distributed.DistributedContext | None = None,
) -> ObjectScoring:
    """Run a checkpoint over ScaleShapes images ``start .. start + count - 1`` of ``split`` and score every merge.

    One forward pass per image serves every merge (they differ only in Eq. 1's weights).
    Deterministic: the images are a pure function of (split, index), and the model runs in
    eval mode. The objects are the generator's, each with the extent it was drawn at.

    Args:
        predictor: a :class:`~segscale.predictor.Predictor` for ScaleShapes' classes.
        scales: the scale set (None: the checkpoint's).
        merges: the merges to score (None: every one the model has; attention needs a head).
        on_image: called with 0, 1, ... after each of this process's images (a progress bar).
        context: under torchrun, this process's place (:func:`segscale.distributed.distributed_context`):
            each rank scores its :func:`~segscale.distributed.shard` of the images, then the
            counts are summed and the object records gathered, so every rank returns what one
            process scoring all the images would (counts exactly; float sums up to the order
            of addition). None: one process scores every image.
    """
    from .data.scaleshapes import CLASSES, generate_sample

    classes = tuple(predictor.classes)
    if classes != tuple(CLASSES):
        raise ValueError(f"this checkpoint predicts {list(classes)}, not ScaleShapes' classes {list(CLASSES)}")

    def read(index: int):
        sample = generate_sample(split, index)
        return sample.image, sample.label, sample.objects, sample.instances

    return _score_objects(
        predictor, read, "scaleshapes", split, start, count, scales, merges, SIZE_BIN_EDGES, None, on_image, context
    )


# Size bins for objects found in ground-truth masks: ScaleShapes' doublings from 12 px, on past its 640 px
# ceiling to 3,072 px, so that a Cityscapes road (2,048 x 1,024 px) lands in a bin of its own size.
REGION_BIN_EDGES = (12.0, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0, 1536.0, 3072.0)


def score_labelled_pairs(
    predictor,
    pairs,
    start: int = 0,
    count: int | None = None,
    scales=None,
    merges: Sequence[str] | None = None,
    on_image: Callable[[int], None] | None = None,
    context: distributed.DistributedContext | None = None,
    *,
    dataset: str = "pairs",
    split: str = "",
) -> ObjectScoring:
    """Run a checkpoint over (image, label) pairs ``start .. start + count - 1`` (VOC, ADE20K, Cityscapes, a
    folder) and score every merge, as :func:`score_scaleshapes` does; the objects are the connected regions of
    each class in the labels (:func:`segscale.data.regions.mask_regions`). ``dataset`` and ``split`` only name
    the images in the tables; the labels index ``predictor.classes``, 255 ignored."""
    from .data.regions import MIN_REGION_EXTENT, mask_regions

    classes = tuple(predictor.classes)
    count = len(pairs) - start if count is None else count

    def read(index: int):
        image, label = pairs[index]
        try:
            objects, instances = mask_regions(label, classes)
        except ValueError as error:
            raise ValueError(f"{dataset} image {index}: {error}") from None
        return image, label, objects, instances

    objects_from = (
        "connected regions (8-connected) of each class in the ground-truth masks; background, ignored pixels "
        f"and regions under {MIN_REGION_EXTENT:g} px across left out; extent: the diameter of the disc around "
        "a region's centroid that holds it"
    )
    return _score_objects(
        predictor, read, dataset, split, start, count, scales, merges, REGION_BIN_EDGES, objects_from, on_image, context
    )


def _score_objects(
    predictor, read, dataset, split, start, count, scales, merges, edges, objects_from, on_image, context
) -> ObjectScoring:
    """The scoring pass behind both: ``read(index)`` gives (image, label, objects, instance map) of an image."""
    from .config import MERGE_MODES

    classes = tuple(predictor.classes)
    if isinstance(count, bool) or int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if merges is None:
        merges = predictor.offered_merges
    merges = tuple(dict.fromkeys(merges))
    for merge in merges:
        if merge not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge!r}; valid: {', '.join(MERGE_MODES)}")
    base_merge = _base_merge(merges)
    scales, _ = predictor.check_request(scales, base_merge)
    context = context or distributed.DistributedContext()

    started = time.perf_counter()
    confusions = tuple(ConfusionMatrix(len(classes)) for _ in merges)
    by_size = tuple(SizeBinnedIoU(edges) for _ in merges)
    # Chen's w^s or the hierarchical chain's effective weights: both are weights over scales summing to 1.
    attention_by_size = AttentionBySize(scales, classes, edges) if base_merge in LEARNED_MERGES else None
    ablation_by_size = None
    if len(scales) > 1:  # one pass's score maps give the fusion without each scale at no extra network cost
        from .diagnostics.ablation import AblationBySize

        ablation_by_size = AblationBySize(scales, len(classes), base_merge, edges)
    records_by_image: list[tuple[int, list[ObjectRecord]]] = []
    for position, index in enumerate(context.share(range(start, start + int(count)))):
        image, label, objects, instances = read(index)
        records: list[ObjectRecord] = []
        records_by_image.append((index, records))
        prediction = predictor.predict(image, scales=scales, merge=base_merge)
        size = label.shape
        predicted = [_labels_of(prediction, m, size, predictor.align_corners) for m in merges]
        for k in range(len(merges)):
            confusions[k].update(label, predicted[k])
            by_size[k].update(objects, instances, label, predicted[k])
        attention = None
        if attention_by_size is not None:
            attention = resize_bilinear(torch.from_numpy(prediction.attention)[None], size)[0].numpy()  # (S, H, W)
            attention_by_size.update(objects, instances, attention)
        if ablation_by_size is not None:
            ablation_by_size.update(
                prediction.scale_ablation(base_merge),
                objects,
                instances,
                label,
                lambda extent: size_bin_index(extent, edges),
            )
        for obj in objects:
            window, visible = object_pixels(obj, instances)
            pixels = int(visible.sum())
            if not pixels:
                continue
            weights = None if attention is None else attention[(slice(None), *window)][:, visible].mean(axis=1)
            records.append(
                ObjectRecord(
                    image_index=index,
                    instance_id=obj.instance_id,
                    class_index=obj.class_index,
                    class_name=obj.class_name,
                    extent=float(obj.extent),
                    visible_pixels=pixels,
                    weights=None if weights is None else tuple(float(w) for w in weights),
                    dominant_scale=None if weights is None else float(scales[int(weights.argmax())]),
                    recall=tuple(float((p[window][visible] == obj.class_index).mean()) for p in predicted),
                )
            )
        if on_image is not None:
            on_image(position)
    seconds = time.perf_counter() - started
    if context.is_distributed:
        for accumulator in (*confusions, *by_size, attention_by_size):
            if accumulator is not None:
                distributed.all_reduce_attributes(accumulator, _SUMMED_ARRAYS[type(accumulator)])
        if ablation_by_size is not None:
            from .diagnostics.ablation import ABLATION_SUMMED_ARRAYS

            distributed.all_reduce_attributes(ablation_by_size, ABLATION_SUMMED_ARRAYS)
        records_by_image = distributed.gather_rows(records_by_image)
        seconds = max(distributed.gather_rows([seconds]))  # the pass lasts as long as its slowest rank
    return ObjectScoring(
        split=split,
        start=int(start),
        count=int(count),
        scales=tuple(scales),
        merges=merges,
        classes=classes,
        confusions=confusions,
        by_size=by_size,
        attention_by_size=attention_by_size,
        objects=tuple(
            record for _, records in sorted(records_by_image, key=lambda item: item[0]) for record in records
        ),
        seconds=seconds,
        ablation_by_size=ablation_by_size,
        dataset=dataset,
        bin_edges=tuple(edges),
        objects_from=objects_from,
    )


# The numpy arrays of each scoring accumulator that add up over images (and so over ranks).
_SUMMED_ARRAYS = {
    ConfusionMatrix: ("counts",),
    SizeBinnedIoU: ("true_positive", "false_negative", "false_positive", "objects"),
    AttentionBySize: ("sums", "counts", "class_sums", "class_counts", "dominant_pixels"),
}


def evaluate_scaleshapes(
    predictor, split: str, count: int, scales, merges, start: int = 0, on_image=None, context=None
) -> dict:
    """mIoU, per-class IoU, pixel accuracy and IoU by size per merge mode; attention by size.

    The report of ``segscale evaluate`` on ScaleShapes images ``start .. start + count - 1``
    of ``split``: :meth:`ObjectScoring.to_report` of one :func:`score_scaleshapes` pass
    (``context``: that function's, for torchrun).
    """
    return score_scaleshapes(predictor, split, count, scales, merges, start, on_image, context).to_report()


def evaluate_pairs_report(
    predictor, pairs, count: int, scales, merges, on_image=None, context=None, start: int = 0
) -> dict:
    """mIoU, per-class IoU and pixel accuracy per merge mode
    over (image, label) pairs ``start .. start + count - 1`` (any dataset).

    ``context``: under torchrun each rank scores its shard of the pairs and the confusion
    matrices are summed, as in :func:`score_scaleshapes`.
    """
    classes = predictor.classes
    base_merge = _base_merge(merges)
    scales, _ = predictor.check_request(scales, base_merge)
    context = context or distributed.DistributedContext()
    indices = context.share(range(start, start + count))
    confusions = _score_pairs(predictor, pairs, indices, scales, merges, on_image)
    if context.is_distributed:
        for confusion in confusions.values():
            distributed.all_reduce_attributes(confusion, _SUMMED_ARRAYS[ConfusionMatrix])
    return {
        "images": count,
        "start": start,
        "scales": list(scales),
        "merges": {merge: confusions[merge].scores().as_dict(classes) for merge in merges},
    }
