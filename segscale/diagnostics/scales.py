"""Scales over many images: which scale the attention trusts, against object size
and class (labelled images: ScaleShapes or a data set read from disk) or per image (uploads, without)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import distributed
from ..evaluation import ObjectRecord, ObjectScoring, score_labelled_pairs, score_scaleshapes, size_bin_index
from ..formatting import count_of, format_scale_set, scale_label
from ..merges import ATTENTION, LEARNED_MERGES
from ..metrics import SegmentationScores, attention_entropy
from ..modeling.geometry import resize_bilinear
from .formatting import floats, rows_to_csv


@dataclass(frozen=True, eq=False)
class ScaleDiagnostics:
    """Which scale the attention trusts, against object size and class, over labelled images.

    Shapes: B size bins (``bin_edges``, px of extent), S scales, K classes, M merges.

    Attributes:
        split, start, count: the images, ``start .. start + count - 1`` of ``split``.
        dataset: which data set: "scaleshapes", or what the images were read as (voc, ade20k, folder, ...).
        objects_from: how the objects were found: None for ScaleShapes' generator (each shape as drawn),
            else a sentence (the connected regions of each class in the ground-truth masks).
        scales, merges, classes: the S, M and K axes.
        objects: one :class:`ObjectRecord` per visible object (the tidy table).
        objects_per_bin: (B,). objects_per_class: (K,).
        weight_by_extent: (B, S) mean over a bin's objects of their mean w^s; NaN for an empty bin.
        weight_by_class: (K, S), the same per class.
        dominant_share: (S,) share of all pixels where scale s has the largest weight.
        (the three above are None when "attention" is not among the merges.)
        scores: (M,) mIoU, per-class IoU and pixel accuracy per merge, over all images.
        iou_by_size: (M,) IoU of objects per size bin (rows of :class:`SizeBinnedIoU`).
        seconds: wall time of the whole run.
        ablation_merge: the merge left one scale out of (the pass's own); None for a single scale,
            and then the three below are None too.
        decided_by_extent: (B, S) share of a bin's object pixels whose label changes without scale s.
        decided_share: (S,) share of all pixels whose label changes without scale s.
        miou_without: (S,) mIoU of ``ablation_merge`` without scale s.
    """

    split: str
    start: int
    count: int
    scales: tuple[float, ...]
    merges: tuple[str, ...]
    classes: tuple[str, ...]
    bin_edges: tuple[float, ...]
    objects: tuple[ObjectRecord, ...]
    objects_per_bin: np.ndarray
    objects_per_class: np.ndarray
    weight_by_extent: np.ndarray | None
    weight_by_class: np.ndarray | None
    dominant_share: np.ndarray | None
    scores: tuple[SegmentationScores, ...]
    iou_by_size: tuple[tuple[dict, ...], ...]
    seconds: float
    ablation_merge: str | None = None
    decided_by_extent: np.ndarray | None = None
    decided_share: np.ndarray | None = None
    miou_without: np.ndarray | None = None
    dataset: str = "scaleshapes"
    objects_from: str | None = None

    @classmethod
    def from_scoring(cls, scoring: ObjectScoring) -> ScaleDiagnostics:
        """The tables of one scoring pass: objects by size and class, dominant shares, scores."""
        records = scoring.objects
        edges = scoring.bin_edges
        objects_per_bin = np.bincount([size_bin_index(r.extent, edges) for r in records], minlength=len(edges) - 1)
        objects_per_class = np.bincount([r.class_index for r in records], minlength=len(scoring.classes))
        weight_by_extent = weight_by_class = dominant = None
        attention = scoring.attention_by_size
        if attention is not None:
            weight_by_extent = _safe_mean(attention.sums, attention.counts)
            weight_by_class = _safe_mean(attention.class_sums, attention.class_counts)
            dominant = attention.dominant_pixels / attention.dominant_pixels.sum()
        ablation = getattr(scoring, "ablation_by_size", None)
        return cls(
            split=scoring.split,
            start=scoring.start,
            count=scoring.count,
            scales=scoring.scales,
            merges=scoring.merges,
            classes=scoring.classes,
            bin_edges=tuple(edges),
            objects=records,
            objects_per_bin=objects_per_bin,
            objects_per_class=objects_per_class,
            weight_by_extent=weight_by_extent,
            weight_by_class=weight_by_class,
            dominant_share=dominant,
            scores=scoring.scores(),
            iou_by_size=tuple(tuple(b.rows()) for b in scoring.by_size),
            seconds=scoring.seconds,
            ablation_merge=None if ablation is None else ablation.merge,
            decided_by_extent=None if ablation is None else ablation.decided_by_extent(),
            decided_share=None if ablation is None else ablation.decided_share(),
            miou_without=None if ablation is None else ablation.miou_without(),
            dataset=scoring.dataset,
            objects_from=scoring.objects_from,
        )

    @property
    def has_ablation(self) -> bool:
        return self.decided_by_extent is not None

    def ablation_rows(self) -> list[dict]:
        """Leave one scale out: per scale, the mIoU without it and the share of pixels it decides, overall
        and per object size bin (None where a bin is empty)."""
        if not self.has_ablation:
            return []
        rows = []
        for k, scale in enumerate(self.scales):
            row = {
                "scale": scale,
                f"mIoU without it ({self.ablation_merge})": float(self.miou_without[k]),
                "decides (all pixels)": float(self.decided_share[k]),
            }
            for b in range(len(self.bin_edges) - 1):
                value = self.decided_by_extent[b, k]
                row[f"decides {self.bin_edges[b]:g}-{self.bin_edges[b + 1]:g} px"] = (
                    None if np.isnan(value) else float(value)
                )
            rows.append(row)
        return rows

    def ablation_text(self) -> list[str]:
        """The leave-one-scale-out tables as terminal lines."""
        from .ablation import ABLATION_DEFINITION, SINGLE_SCALE_ABLATION

        if not self.has_ablation:
            return ["", f"leave one scale out: {SINGLE_SCALE_ABLATION}"]
        heads = "".join(f"{'s=' + scale_label(s):>9}" for s in self.scales)
        own = self.miou(self.ablation_merge) if self.ablation_merge in self.merges else None
        lines = [
            "",
            f"leave one scale out ({self.ablation_merge}): {ABLATION_DEFINITION}",
            f"{'':<12}{heads}",
            f"{'mIoU w/o':<12}"
            + "".join(f"{v:9.4f}" for v in self.miou_without)
            + ("" if own is None else f"  (with every scale: {own:.4f})"),
            f"{'decides':<12}" + "".join(f"{v:9.2%}" for v in self.decided_share) + "  of all pixels",
            "share of object pixels each scale decides, by extent (px):",
        ]
        for b in range(len(self.bin_edges) - 1):
            cells = "".join(f"{'-':>9}" if np.isnan(v) else f"{v:9.2%}" for v in self.decided_by_extent[b])
            lines.append(f"{self.bin_edges[b]:>4g}-{self.bin_edges[b + 1]:<7g}{cells}")
        return lines

    @property
    def has_attention(self) -> bool:
        return self.weight_by_extent is not None

    def miou(self, merge: str) -> float:
        return self.scores[self._merge_index(merge)].miou

    def _merge_index(self, merge: str) -> int:
        if merge not in self.merges:
            raise ValueError(f"merge {merge!r} was not scored; scored: {', '.join(self.merges)}")
        return self.merges.index(merge)

    def object_rows(self) -> list[dict]:
        """The tidy per-object table (the CSV's rows), as flat dicts."""
        rows = []
        for obj in self.objects:
            b = size_bin_index(obj.extent, self.bin_edges)
            row = {
                "image_index": obj.image_index,
                "instance_id": obj.instance_id,
                "class": obj.class_name,
                "extent_px": round(obj.extent, 3),
                "size_bin": f"{self.bin_edges[b]:g}-{self.bin_edges[b + 1]:g}",
                "visible_pixels": obj.visible_pixels,
            }
            for k, scale in enumerate(self.scales):
                row[f"weight_s{scale_label(scale)}"] = None if obj.weights is None else round(obj.weights[k], 6)
            row["dominant_scale"] = obj.dominant_scale
            row.update({f"recall_{m}": round(r, 6) for m, r in zip(self.merges, obj.recall)})
            rows.append(row)
        return rows

    def to_csv(self) -> str:
        """The per-object table as CSV text (header included; empty cells for missing values)."""
        return rows_to_csv(self.object_rows(), self._csv_fields())

    def _csv_fields(self) -> list[str]:
        return (
            ["image_index", "instance_id", "class", "extent_px", "size_bin", "visible_pixels"]
            + [f"weight_s{scale_label(s)}" for s in self.scales]
            + ["dominant_scale"]
            + [f"recall_{m}" for m in self.merges]
        )

    def extent_rows(self) -> list[dict]:
        """Mean weight per scale for each size bin (None where a bin is empty or without attention)."""
        return [
            {
                "extent_low": self.bin_edges[b],
                "extent_high": self.bin_edges[b + 1],
                "objects": int(self.objects_per_bin[b]),
                **{
                    f"weight_s{scale_label(s)}": _none_if_nan(self.weight_by_extent, b, k)
                    for k, s in enumerate(self.scales)
                },
            }
            for b in range(len(self.bin_edges) - 1)
        ]

    def class_rows(self) -> list[dict]:
        return [
            {
                "class": name,
                "objects": int(self.objects_per_class[c]),
                **{
                    f"weight_s{scale_label(s)}": _none_if_nan(self.weight_by_class, c, k)
                    for k, s in enumerate(self.scales)
                },
            }
            for c, name in enumerate(self.classes)
        ]

    def merge_rows(self) -> list[dict]:
        return [
            {"merge": m, "mIoU": s.miou, "pixel_accuracy": s.pixel_accuracy} for m, s in zip(self.merges, self.scores)
        ]

    def to_text(self) -> str:
        """The aggregates as aligned tables for a terminal."""
        scale_heads = "".join(f"{'s=' + scale_label(s):>9}" for s in self.scales)
        lines = [
            f"{self.title} {self.start}..{self.start + self.count - 1}: {count_of(self.count, 'image')}, "
            f"{len(self.objects)} visible objects, scales {format_scale_set(self.scales)}, {self.seconds:.1f} s",
        ]
        if self.objects_from:
            lines.append(f"objects: {self.objects_from}")
        lines += ["", f"{'merge':<11}{'mIoU':>8}{'pix acc':>9}"]
        lines += [f"{m:<11}{s.miou:8.4f}{s.pixel_accuracy:9.4f}" for m, s in zip(self.merges, self.scores)]
        if not self.has_attention:
            lines.append(f"(no attention weights: the {ATTENTION!r} merge was not scored)")
            return "\n".join(lines + self.ablation_text())
        lines += [
            "",
            "mean attention weight per scale, by object extent (px):",
            f"{'extent':<12}{scale_heads}  objects",
        ]
        for b in range(len(self.bin_edges) - 1):
            cells = "".join(f"{'-':>9}" if np.isnan(v) else f"{v:9.3f}" for v in self.weight_by_extent[b])
            lines.append(
                f"{self.bin_edges[b]:>4g}-{self.bin_edges[b + 1]:<7g}{cells}  {int(self.objects_per_bin[b]):7d}"
            )
        lines += ["", "by class:", f"{'class':<12}{scale_heads}  objects"]
        for c, name in enumerate(self.classes):
            if self.objects_per_class[c]:
                cells = "".join(f"{v:9.3f}" for v in self.weight_by_class[c])
                lines.append(f"{name[:11]:<12}{cells}  {int(self.objects_per_class[c]):7d}")
        lines += ["", f"{'dominates':<12}" + "".join(f"{v:9.1%}" for v in self.dominant_share) + "  of all pixels"]
        return "\n".join(lines + self.ablation_text())

    @property
    def title(self) -> str:
        """The images' source for a heading: "ScaleShapes val", "ade20k val", "folder"."""
        name = "ScaleShapes" if self.dataset == "scaleshapes" else self.dataset
        return f"{name} {self.split}" if self.split else name

    def to_dict(self) -> dict:
        """The aggregates as JSON-ready plain data (the per-object rows are :meth:`to_csv`)."""
        found = {} if self.objects_from is None else {"objects_from": self.objects_from, "classes": list(self.classes)}
        return {
            "dataset": self.dataset,
            "split": self.split,
            "start": self.start,
            "images": self.count,
            "objects": len(self.objects),
            **found,
            "scales": list(self.scales),
            "merges": {
                m: {**s.as_dict(self.classes), "iou_by_size": list(rows)}
                for m, s, rows in zip(self.merges, self.scores, self.iou_by_size)
            },
            "weight_by_extent": self.extent_rows() if self.has_attention else None,
            "weight_by_class": self.class_rows() if self.has_attention else None,
            "dominant_share": (
                {scale_label(s): float(v) for s, v in zip(self.scales, self.dominant_share)}
                if self.has_attention
                else None
            ),
            "seconds": round(self.seconds, 3),
            "leave_one_scale_out": (
                {"merge": self.ablation_merge, "per_scale": self.ablation_rows()} if self.has_ablation else None
            ),
        }


def scale_diagnostics(predictor, *args, **kwargs) -> ScaleDiagnostics:
    """Run a checkpoint over ScaleShapes images ``start .. start + count - 1`` of ``split`` and tabulate its scales.

    The tables of one :func:`~segscale.evaluation.score_scaleshapes` pass (the pass that
    ``segscale evaluate`` reports too), called with these arguments: ``split="val"``,
    ``count=50``, ``scales``, ``merges``, ``start=0``, ``on_image`` and ``context`` (under
    torchrun, each rank scores its shard and every rank gets the whole tables).
    """
    return ScaleDiagnostics.from_scoring(score_scaleshapes(predictor, *args, **kwargs))


def dataset_diagnostics(predictor, pairs, *args, **kwargs) -> ScaleDiagnostics:
    """Run a checkpoint over (image, label) pairs read from disk (VOC, ADE20K, Cityscapes, a folder) and tabulate
    its scales, objects being the connected regions of each class in the labels.

    The tables of one :func:`~segscale.evaluation.score_labelled_pairs` pass, called with these arguments:
    ``start=0``, ``count`` (None: to the end), ``scales``, ``merges``, ``on_image``, ``context`` and the
    keywords ``dataset`` and ``split`` (names for the tables).
    """
    return ScaleDiagnostics.from_scoring(score_labelled_pairs(predictor, pairs, *args, **kwargs))


@dataclass(frozen=True)
class ImageAttentionRecord:
    """The attention of one image without ground truth (all at image resolution).

    mean_weights: (S,) mean w^s over the image's pixels.
    dominant_share: (S,) share of its pixels where scale s has the largest weight.
    mean_entropy_bits: mean over pixels of -sum_s w^s log2 w^s (0: one scale; log2 S: all equal).
    """

    name: str
    size: tuple[int, int]
    mean_weights: tuple[float, ...]
    dominant_share: tuple[float, ...]
    mean_entropy_bits: float


@dataclass(frozen=True)
class ImageSetDiagnostics:
    """The attention over a set of images without ground truth (uploads).

    merge: whose weights these are: "attention" (Chen's w^s) or "hierarchical" (the effective
        weights of Tao et al.'s chain of gates).
    images: one :class:`ImageAttentionRecord` each.
    mean_weights: (S,) the per-image mean weights averaged over images (each image counts once).
    dominant_share: (S,) share of all pixels of all images where scale s dominates.
    mean_entropy_bits: per-image mean entropies averaged over images; max_entropy_bits = log2 S.
    """

    scales: tuple[float, ...]
    images: tuple[ImageAttentionRecord, ...]
    mean_weights: tuple[float, ...]
    dominant_share: tuple[float, ...]
    mean_entropy_bits: float
    max_entropy_bits: float
    seconds: float
    merge: str = ATTENTION

    def image_rows(self) -> list[dict]:
        rows = []
        for record in self.images:
            row = {"image": record.name, "height": record.size[0], "width": record.size[1]}
            row.update({f"weight_s{scale_label(s)}": w for s, w in zip(self.scales, record.mean_weights)})
            row.update({f"dominant_s{scale_label(s)}": d for s, d in zip(self.scales, record.dominant_share)})
            row["entropy_bits"] = record.mean_entropy_bits
            rows.append(row)
        return rows

    def to_csv(self) -> str:
        fields = (
            ["image", "height", "width"]
            + [f"weight_s{scale_label(s)}" for s in self.scales]
            + [f"dominant_s{scale_label(s)}" for s in self.scales]
            + ["entropy_bits"]
        )
        return rows_to_csv(self.image_rows(), fields)

    def to_text(self) -> str:
        scale_heads = "".join(f"{'w s=' + scale_label(s):>10}" for s in self.scales)
        dominant_heads = "".join(f"{'dom s=' + scale_label(s):>11}" for s in self.scales)
        width = max(12, *(len(r.name[:30]) + 2 for r in self.images))
        lines = [
            (
                f"{count_of(len(self.images), 'image')}, scales "
                f"{format_scale_set(self.scales)}, {self.merge} weights, {self.seconds:.1f} s"
            ),
            f"{'image':<{width}}{scale_heads}{dominant_heads}{'entropy':>9}",
        ]
        for r in self.images:
            lines.append(
                f"{r.name[:30]:<{width}}"
                + "".join(f"{w:10.3f}" for w in r.mean_weights)
                + "".join(f"{d:11.1%}" for d in r.dominant_share)
                + f"{r.mean_entropy_bits:9.3f}"
            )
        lines.append(
            f"{'all':<{width}}"
            + "".join(f"{w:10.3f}" for w in self.mean_weights)
            + "".join(f"{d:11.1%}" for d in self.dominant_share)
            + f"{self.mean_entropy_bits:9.3f}"
        )
        lines.append(f"entropy in bits: 0 = all weight on one scale, {self.max_entropy_bits:.3f} = all scales equal")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "images": len(self.images),
            "scales": list(self.scales),
            "merge": self.merge,
            "mean_weights": {scale_label(s): w for s, w in zip(self.scales, self.mean_weights)},
            "dominant_share": {scale_label(s): d for s, d in zip(self.scales, self.dominant_share)},
            "mean_entropy_bits": self.mean_entropy_bits,
            "max_entropy_bits": self.max_entropy_bits,
            "per_image": self.image_rows(),
            "seconds": round(self.seconds, 3),
        }


def image_diagnostics(
    predictor,
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    scales=None,
    on_image: Callable[[int], None] | None = None,
    context: distributed.DistributedContext | None = None,
) -> ImageSetDiagnostics:
    """The attention over images without ground truth: weight, dominance and entropy per scale.

    Args:
        predictor: a :class:`~segscale.predictor.Predictor` whose model has an attention head (its
            w^s) or a gate head (the effective weights of its chain of gates).
        images: (H, W, 3) uint8 RGB arrays (e.g. ``load_image(...).rgb``).
        names: one name per image (default "image 1", ...).
        scales: the scale set (None: the checkpoint's).
        on_image: called with 0, 1, ... after each of this process's images.
        context: under torchrun, each rank runs its shard of the images and every rank gets
            the records of all of them, in the order given.
    """
    merge = predictor.inspection_merge  # attention, else hierarchical: the model's learned weights over scales
    if merge not in LEARNED_MERGES:
        raise ValueError(
            "this checkpoint has neither an attention head nor a "
            "gate head, so there are no learned weights to summarise"
        )
    if len(images) == 0:
        raise ValueError("no images given")
    names = tuple(names) if names is not None else tuple(f"image {k + 1}" for k in range(len(images)))
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    scales, _ = predictor.check_request(scales, merge)
    context = context or distributed.DistributedContext()
    started = time.perf_counter()
    rows = []  # (position, record, dominant pixel counts (S,)), for this process's images
    for k, position in enumerate(context.share(range(len(images)))):
        name, image = names[position], images[position]
        prediction = predictor.predict(image, scales=scales, merge=merge)
        size = tuple(prediction.labels.shape)
        attention = resize_bilinear(torch.from_numpy(prediction.attention)[None], size)[0].numpy()  # (S, H, W)
        counts = np.bincount(attention.argmax(axis=0).ravel(), minlength=len(scales))
        record = ImageAttentionRecord(
            name=str(name),
            size=size,  # type: ignore[arg-type]
            mean_weights=floats(attention.reshape(len(scales), -1).mean(axis=1, dtype=np.float64)),
            dominant_share=floats(counts / counts.sum()),
            mean_entropy_bits=float(attention_entropy(attention, unit="bits").mean()),
        )
        rows.append((position, record, counts))
        if on_image is not None:
            on_image(k)
    seconds = time.perf_counter() - started
    if context.is_distributed:
        rows = sorted(distributed.gather_rows(rows), key=lambda row: row[0])
        seconds = max(distributed.gather_rows([seconds]))
    records = [record for _, record, _ in rows]
    dominant_pixels = np.sum([counts for _, _, counts in rows], axis=0)
    return ImageSetDiagnostics(
        scales=tuple(scales),
        images=tuple(records),
        mean_weights=floats(np.mean([r.mean_weights for r in records], axis=0)),
        dominant_share=floats(dominant_pixels / dominant_pixels.sum()),
        mean_entropy_bits=float(np.mean([r.mean_entropy_bits for r in records])),
        max_entropy_bits=math.log2(len(scales)),
        seconds=seconds,
        merge=merge,
    )


def _safe_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[:, None] > 0, sums / np.maximum(counts[:, None], 1), np.nan)


def _none_if_nan(table: np.ndarray | None, row: int, col: int) -> float | None:
    if table is None or np.isnan(table[row, col]):
        return None
    return float(table[row, col])
