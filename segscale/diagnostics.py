"""What the teaching and diagnostic views compute: one pixel's Eq. 1-2, merges side by side, scales over many images.

Three layers of looking inside a multi-scale prediction (Chen et al., CVPR 2016):

* :func:`pixel_breakdown` -- one pixel: the attention logits h^s, the softmax of Eq. 2 step by
  step, the scores f^s_c and their weighted sum g_c of Eq. 1, the winner of every scale and of
  every merge (attention, average and max pooling);
* :func:`compare_merges` -- one image: the labels of every merge from one forward pass, where
  they disagree, and, given the ground truth, each one's IoU and error map;
* :func:`scale_diagnostics` and :func:`image_diagnostics` -- many images: which scale the
  attention trusts, against object size and class (ScaleShapes, with ground truth) or per
  image (uploaded images, without).

Everything here is numpy in, frozen dataclasses out (picklable, so a page can cache them);
nothing imports Streamlit. Figures of these results live in :mod:`segscale.plots`.

Where Eq. 1 holds exactly. The model fuses on the stride-8 grid of the largest scale and
upsamples only the fused map g to the image (bilinear, corners aligned). Upsampling a
weighted sum with position-dependent weights is not the weighted sum of the upsampled maps,
so the equations are shown at the grid cell nearest the chosen pixel; the label at the
pixel itself is g interpolated between its four surrounding cells.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .config import MERGE_MODES
from .evaluation import SIZE_BIN_EDGES, AttentionBySize, SizeBinnedIoU, labels_for_merge, size_bin_index
from .losses import IGNORE_INDEX
from .metrics import ConfusionMatrix, SegmentationScores
from .modeling.geometry import resize_bilinear

__all__ = [
    "CellFusion",
    "ImageAttentionRecord",
    "ImageSetDiagnostics",
    "MergeComparison",
    "MethodResult",
    "ObjectRecord",
    "PixelBreakdown",
    "ScaleDiagnostics",
    "SoftmaxSteps",
    "available_merges",
    "cell_center",
    "cell_footprint",
    "cell_mean_colours",
    "compare_merges",
    "image_diagnostics",
    "nearest_cell",
    "nearest_cells",
    "pixel_at_cell",
    "salient_pixel",
    "pixel_breakdown",
    "scale_diagnostics",
]


# ============================================================================ the pixel inspector


def _aligned_position(index: float, source: int, target: int) -> float:
    """Where sample ``index`` of a ``source``-long axis lands on a ``target``-long one, corners aligned."""
    if source == 1:
        return 0.0
    return index * (target - 1) / (source - 1)


def nearest_cell(row: int, col: int, image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The grid cell nearest to image pixel (row, col).

    Cell k of an h-cell axis sits on image coordinate k (H - 1) / (h - 1) (corners aligned,
    :mod:`segscale.modeling.geometry`), so pixel r is nearest to cell round(r (h - 1) / (H - 1));
    halves round up.
    """
    return tuple(  # type: ignore[return-value]
        min(cells - 1, int(math.floor(_aligned_position(p, pixels, cells) + 0.5)))
        for p, pixels, cells in zip((row, col), image_size, grid)
    )


def cell_center(cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[float, float]:
    """(y, x) image coordinates of a grid cell's centre (the inverse map of :func:`nearest_cell`)."""
    return tuple(_aligned_position(k, cells, pixels) for k, pixels, cells in zip(cell, image_size, grid))  # type: ignore[return-value]


def nearest_cells(pixels: int, cells: int) -> np.ndarray:
    """(pixels,) the nearest cell of every pixel along one axis (the vector form of :func:`nearest_cell`)."""
    if cells == 1 or pixels == 1:
        return np.zeros(pixels, np.int64)
    positions = np.arange(pixels, dtype=np.float64) * (cells - 1) / (pixels - 1)
    return np.minimum(cells - 1, np.floor(positions + 0.5)).astype(np.int64)


def cell_footprint(cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), inclusive: the image pixels whose nearest grid cell is ``cell``.

    About ``stride`` pixels a side (8 for DeepLab-LargeFOV); half that at the image border,
    where the first and last cells sit on the first and last pixels (corners aligned).
    """
    bounds = []
    for k, pixels, cells in zip(cell, image_size, grid):
        if not 0 <= k < cells:
            raise ValueError(f"cell {tuple(cell)} is outside the {grid[0]} x {grid[1]} grid")
        members = np.flatnonzero(nearest_cells(pixels, cells) == k)
        if members.size:
            bounds.append((int(members[0]), int(members[-1])))
        else:  # a grid finer than the image (not DeepLab's): the pixel the cell sits on
            centre = min(pixels - 1, int(math.floor(_aligned_position(k, cells, pixels) + 0.5)))
            bounds.append((centre, centre))
    (top, bottom), (left, right) = bounds
    return top, left, bottom, right


def pixel_at_cell(cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The image pixel a grid cell sits on (its centre, rounded): what clicking a cell picks."""
    y, x = cell_center(cell, image_size, grid)
    return min(image_size[0] - 1, int(math.floor(y + 0.5))), min(image_size[1] - 1, int(math.floor(x + 0.5)))


def cell_mean_colours(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8: each grid cell coloured by the mean of the pixels nearest to it.

    The image as the stride-8 grid sees it, one colour per cell: the picture behind the
    pixel inspector's clickable grid.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    rows, cols = nearest_cells(height, grid[0]), nearest_cells(width, grid[1])
    index = (rows[:, None] * grid[1] + cols[None, :]).ravel()
    counts = np.bincount(index, minlength=grid[0] * grid[1]).astype(np.float64)
    channels = [np.bincount(index, weights=image[..., k].ravel().astype(np.float64), minlength=grid[0] * grid[1]) for k in range(3)]
    means = np.stack(channels, axis=-1) / np.maximum(counts, 1)[:, None]
    return np.clip(means + 0.5, 0, 255).astype(np.uint8).reshape(grid[0], grid[1], 3)


def salient_pixel(prediction) -> tuple[int, int]:
    """A pixel worth inspecting first: the cell where the most frequent predicted object class scores highest.

    "Object class" is any class but index 0 (the background of every segscale dataset);
    when only the background is predicted, the cell where class 1 comes closest to winning.
    Returns the pixel that cell sits on, as (row, col) of the predicted image.
    """
    fused = np.asarray(prediction.fused, dtype=np.float64)  # (C, h, w)
    num_classes = fused.shape[0]
    if num_classes < 2:
        chosen_map = fused[0]
    else:
        counts = np.bincount(np.asarray(prediction.labels).ravel().astype(np.int64), minlength=num_classes)[:num_classes]
        chosen = int(counts[1:].argmax()) + 1
        others = np.delete(fused, chosen, axis=0).max(axis=0)
        chosen_map = fused[chosen] - others  # the margin by which it wins (or loses)
    cell = np.unravel_index(int(chosen_map.argmax()), chosen_map.shape)
    return pixel_at_cell((int(cell[0]), int(cell[1])), tuple(prediction.labels.shape), tuple(fused.shape[-2:]))


def _bilinear_at(maps: np.ndarray, row: int, col: int, image_size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """maps (C, h, w) sampled at image pixel (row, col) as the upsampling does -> (C,), and the cells used (top, left, bottom, right)."""
    height, width = maps.shape[-2:]
    y = _aligned_position(row, image_size[0], height)
    x = _aligned_position(col, image_size[1], width)
    top, left = min(int(math.floor(y)), height - 1), min(int(math.floor(x)), width - 1)
    bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
    dy, dx = y - top, x - left
    values = maps.astype(np.float64)
    upper = values[:, top, left] * (1 - dx) + values[:, top, right] * dx
    lower = values[:, bottom, left] * (1 - dx) + values[:, bottom, right] * dx
    return upper * (1 - dy) + lower * dy, (top, left, bottom, right)


@dataclass(frozen=True)
class SoftmaxSteps:
    """Eq. 2 at one cell, step by step, in float64 from the model's float32 logits.

    w^s = exp(h^s) / sum_t exp(h^t), computed as exp(h^s - m) / sum_t exp(h^t - m) with
    m = max_t h^t: the same value, without overflow. Every tuple runs over the scales.
    """

    logits: tuple[float, ...]  # h^s
    max_logit: float  # m
    shifted: tuple[float, ...]  # h^s - m
    exps: tuple[float, ...]  # exp(h^s - m)
    exp_sum: float  # sum_t exp(h^t - m)
    weights: tuple[float, ...]  # w^s


@dataclass(frozen=True)
class CellFusion:
    """One merge at one cell.

    method: "attention", "average" or "max".
    weights: (S,) w^s of Eq. 1 (1/S for average); None for max, whose pick differs per class.
    terms: (S, C) w^s f^s_c, the summands of Eq. 1; None for max.
    fused: (C,) g_c.
    source_scales: max only: (C,) index of the scale each class's maximum came from.
    winner: argmax_c g_c.
    """

    method: str
    weights: tuple[float, ...] | None
    terms: tuple[tuple[float, ...], ...] | None
    fused: tuple[float, ...]
    source_scales: tuple[int, ...] | None
    winner: int


@dataclass(frozen=True)
class PixelBreakdown:
    """Eq. 1 and Eq. 2 with the numbers of one pixel (at its nearest grid cell).

    Shapes: S scales, C classes; (H, W) the image as predicted, (h, w) the stride-8 grid.

    Attributes:
        row, col: the pixel asked about, in the predicted image.
        image_size: (H, W). grid: (h, w). cell: (i, j), the grid cell nearest the pixel.
        cell_center: (y, x) image coordinates the cell sits on.
        scales, classes: of the prediction (S and C axes). merge: the prediction's own merge.
        shown_classes: indices of the classes to show: the top-k of the prediction's own
            fusion at the cell, then the chosen class if it was not among them.
        scores: (S, C) f^s_c at the cell, every class.
        scale_winners: (S,) argmax_c f^s_c per scale.
        softmax: Eq. 2 step by step; None when the prediction has no attention logits.
        fusions: attention (when there are logits), average and max at the cell.
        stored_weights: (S,) w^s at the cell as the model computed it (None for max).
        stored_fused: (C,) g at the cell as the model computed it.
        pixel_scores: (C,) g bilinearly interpolated at the pixel itself, as the labels are.
        interpolation_cells: (top, left, bottom, right) grid rows/columns interpolated between.
        pixel_label: the prediction's label at the pixel.
        note: a sentence when the label at the pixel is not the cell's winner; else None.
    """

    row: int
    col: int
    image_size: tuple[int, int]
    grid: tuple[int, int]
    cell: tuple[int, int]
    cell_center: tuple[float, float]
    scales: tuple[float, ...]
    classes: tuple[str, ...]
    merge: str
    shown_classes: tuple[int, ...]
    scores: tuple[tuple[float, ...], ...]
    scale_winners: tuple[int, ...]
    softmax: SoftmaxSteps | None
    fusions: tuple[CellFusion, ...]
    stored_weights: tuple[float, ...] | None
    stored_fused: tuple[float, ...]
    pixel_scores: tuple[float, ...]
    interpolation_cells: tuple[int, int, int, int]
    pixel_label: int
    note: str | None

    # ---- lookups

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(f.method for f in self.fusions)

    def fusion(self, method: str) -> CellFusion:
        """The :class:`CellFusion` of ``method``; ValueError naming the available ones."""
        for item in self.fusions:
            if item.method == method:
                return item
        raise ValueError(f"no {method!r} fusion at this pixel; available: {', '.join(self.methods)}")

    @property
    def own(self) -> CellFusion:
        """The fusion the prediction itself used."""
        return self.fusion(self.merge)

    @property
    def cell_winner(self) -> int:
        return self.own.winner

    def class_name(self, index: int) -> str:
        return self.classes[index]

    # ---- tables for a page (lists of flat dicts, ready for st.dataframe)

    def scale_rows(self) -> list[dict]:
        """One row per scale: h^s, the softmax steps, w^s, f^s_c of the shown classes, the scale's winner."""
        rows = []
        for s, scale in enumerate(self.scales):
            row: dict = {"scale": scale}
            if self.softmax is not None:
                row.update({
                    "h": self.softmax.logits[s],
                    "h - max h": self.softmax.shifted[s],
                    "exp(h - max h)": self.softmax.exps[s],
                    "w": self.softmax.weights[s],
                })  # fmt: skip
            row.update({f"f[{self.classes[c]}]": self.scores[s][c] for c in self.shown_classes})
            row["winner"] = self.classes[self.scale_winners[s]]
            rows.append(row)
        return rows

    def merge_rows(self) -> list[dict]:
        """One row per merge: g_c of the shown classes and the winner."""
        return [
            {"merge": f.method, **{f"g[{self.classes[c]}]": f.fused[c] for c in self.shown_classes}, "winner": self.classes[f.winner]}
            for f in self.fusions
        ]

    # ---- text

    def to_text(self) -> str:
        """Eq. 2 and Eq. 1 with this pixel's numbers, aligned for a terminal."""
        names = self.classes
        height, width = self.image_size
        lines = [
            f"pixel (row {self.row}, col {self.col}) of the image ({height} rows x {width} cols) -> grid cell "
            f"(row {self.cell[0]}, col {self.cell[1]}) of the stride-8 grid ({self.grid[0]} x {self.grid[1]}), "
            f"which sits on pixel ({self.cell_center[0]:.1f}, {self.cell_center[1]:.1f})",
            f"scales {_scale_list(self.scales)}; this prediction merges by {self.merge}",
            "Eq. 1-2 hold exactly on the grid; the label at a pixel comes from g upsampled between cells.",
            "",
        ]
        scale_names = [f"s={_fmt_scale(s)}" for s in self.scales]
        if self.softmax is not None:
            sm = self.softmax
            lines += [
                "Eq. 2   w^s = exp(h^s) / sum_t exp(h^t)   (computed as exp(h^s - max h) / sum: the same value)",
                f"  {'scale':<8}{'h^s':>10}{'h^s - max':>12}{'exp(.)':>12}{'w^s':>10}",
            ]
            for s in range(len(self.scales)):
                lines.append(
                    f"  {scale_names[s]:<8}{sm.logits[s]:10.4f}{sm.shifted[s]:12.4f}{sm.exps[s]:12.6f}{sm.weights[s]:10.4f}"
                )
            lines += [f"  {'sum':<8}{'':>10}{'':>12}{sm.exp_sum:12.6f}{sum(sm.weights):10.4f}", ""]
        else:
            lines += [
                f"Eq. 2   not shown: this prediction was merged by {self.merge} pooling and carries no attention logits.",
                "",
            ]

        shown = self.shown_classes
        label_width = max(12, *(len(names[c]) + 2 for c in shown))
        lines.append("f^s_c at the cell (top classes of the fusion; * marks each scale's winner)")
        lines.append(f"  {'class':<{label_width}}" + "".join(f"{n:>12}" for n in scale_names))
        for c in shown:
            cells = "".join(
                f"{self.scores[s][c]:11.4f}{'*' if self.scale_winners[s] == c else ' '}" for s in range(len(self.scales))
            )
            lines.append(f"  {names[c]:<{label_width}}{cells}")
        lines.append(f"  {'winner':<{label_width}}" + "".join(f"{names[w]:>12}" for w in self.scale_winners))
        lines.append("")

        for fusion in self.fusions:
            lines += self._fusion_text(fusion, shown, scale_names)
            lines.append("")

        pixel_name = names[self.pixel_label]
        top, left, bottom, right = self.interpolation_cells
        lines.append(
            f"label at pixel (row {self.row}, col {self.col}): {pixel_name} (g upsampled bilinearly from cells "
            f"rows {top}-{bottom}, cols {left}-{right}; winner of the cell: {names[self.cell_winner]})"
        )
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)

    def _fusion_text(self, fusion: CellFusion, shown, scale_names) -> list[str]:
        names = self.classes
        equation = {
            "attention": "Eq. 1   g_c = sum_s w^s f^s_c   (attention: w^s from Eq. 2)",
            "average": f"average pooling   g_c = sum_s (1/{len(self.scales)}) f^s_c",
            "max": "max pooling   g_c = max_s f^s_c   (per class; no weights shared across classes)",
        }[fusion.method]
        marker = "  <- this prediction" if fusion.method == self.merge else ""
        lines = [equation + marker]
        width = max(len(names[c]) for c in shown)
        for c in shown:
            if fusion.terms is not None:
                sums = " + ".join(f"{fusion.weights[s]:.4f} x {_signed(self.scores[s][c])}" for s in range(len(self.scales)))
                lines.append(f"  g_{names[c]:<{width}} = {sums} = {_number(fusion.fused[c], 4)}")
            else:
                picks = ", ".join(_signed(self.scores[s][c]) for s in range(len(self.scales)))
                source = scale_names[fusion.source_scales[c]]
                lines.append(f"  g_{names[c]:<{width}} = max({picks}) = {_number(fusion.fused[c], 4)}  (from {source})")
        lines.append(f"  winner: {names[fusion.winner]} (g = {_number(fusion.fused[fusion.winner], 4)})")
        return lines

    # ---- LaTeX for st.latex

    def latex_eq2(self) -> str | None:
        """Eq. 2 with this cell's numbers (one aligned block), or None without attention logits."""
        if self.softmax is None:
            return None
        sm = self.softmax
        exps = " + ".join(f"e^{{{_latex_number(h)}}}" for h in sm.logits)
        lines = [r"w^{(s)} &= \frac{\exp(h^{(s)})}{\sum_{t=1}^{S} \exp(h^{(t)})}"]
        for s, scale in enumerate(self.scales):
            lines.append(
                rf"w^{{({_fmt_scale(scale)})}} &= \frac{{e^{{{_latex_number(sm.logits[s])}}}}}{{{exps}}} = {sm.weights[s]:.4f}"
            )
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def latex_eq1(self, method: str | None = None) -> str:
        """Eq. 1 (or the average / max special case) for the shown classes, with this cell's numbers."""
        fusion = self.fusion(method or self.merge)
        scales = self.scales
        if fusion.method == "max":
            lines = [r"g_c &= \max_{s} f^{(s)}_c"]
        else:
            weight = r"w^{(s)}" if fusion.method == "attention" else rf"\tfrac{{1}}{{{len(scales)}}}"
            lines = [rf"g_c &= \sum_{{s=1}}^{{S}} {weight}\, f^{{(s)}}_c"]
        for c in self.shown_classes:
            name = rf"g_{{\text{{{_latex_text(self.classes[c])}}}}}"
            if fusion.terms is not None:
                summands = " + ".join(
                    rf"{fusion.weights[s]:.3f} \cdot {_latex_number(self.scores[s][c])}" for s in range(len(scales))
                )
            else:
                summands = r"\max(" + ", ".join(_latex_number(self.scores[s][c]) for s in range(len(scales))) + ")"
            lines.append(rf"{name} &= {summands} = {_latex_number(fusion.fused[c])}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def latex_blocks(self) -> list[str]:
        """The blocks a page shows with ``st.latex``, in order: Eq. 2 (when there is attention), then Eq. 1."""
        eq2 = self.latex_eq2()
        return ([eq2] if eq2 else []) + [self.latex_eq1()]

    def to_latex(self) -> str:
        """All of :meth:`latex_blocks` as one display (``st.latex(b.to_latex())``)."""
        return "\\begin{gathered}\n" + " \\\\[10pt]\n".join(self.latex_blocks()) + "\n\\end{gathered}"

    def to_dict(self) -> dict:
        """JSON-ready plain data (the ``--json`` of ``segscale inspect``)."""
        names = self.classes
        data = {
            "pixel": {"row": self.row, "col": self.col},
            "image_size": list(self.image_size),
            "grid": list(self.grid),
            "cell": {"row": self.cell[0], "col": self.cell[1], "center": list(self.cell_center)},
            "scales": list(self.scales),
            "merge": self.merge,
            "shown_classes": [names[c] for c in self.shown_classes],
            "scores": {names[c]: [self.scores[s][c] for s in range(len(self.scales))] for c in range(len(names))},
            "scale_winners": [names[w] for w in self.scale_winners],
            "softmax": None,
            "fusions": {},
            "pixel_label": names[self.pixel_label],
            "pixel_scores": dict(zip(names, self.pixel_scores)),
            "note": self.note,
        }
        if self.softmax is not None:
            sm = self.softmax
            data["softmax"] = {
                "logits": list(sm.logits), "max_logit": sm.max_logit, "shifted": list(sm.shifted),
                "exps": list(sm.exps), "exp_sum": sm.exp_sum, "weights": list(sm.weights),
            }  # fmt: skip
        for f in self.fusions:
            data["fusions"][f.method] = {
                "weights": None if f.weights is None else list(f.weights),
                "fused": dict(zip(names, f.fused)),
                "winner": names[f.winner],
                **({"source_scales": {names[c]: self.scales[s] for c, s in enumerate(f.source_scales)}} if f.source_scales else {}),
            }
        return data


def available_merges(prediction) -> tuple[str, ...]:
    """The merges one prediction can be scored with: all three when it has attention logits, else average and max."""
    return MERGE_MODES if prediction.attention_logits is not None else tuple(m for m in MERGE_MODES if m != "attention")


def _cell_fusions(scores: np.ndarray, logits: np.ndarray | None) -> tuple[SoftmaxSteps | None, tuple[CellFusion, ...]]:
    """scores (S, C) and logits (S,) or None, float64 -> the softmax steps and every fusion at one cell."""
    num_scales = scores.shape[0]
    fusions = []
    softmax = None
    if logits is not None:
        max_logit = float(logits.max())
        shifted = logits - max_logit
        exps = np.exp(shifted)
        exp_sum = float(exps.sum())
        weights = exps / exp_sum
        softmax = SoftmaxSteps(_floats(logits), max_logit, _floats(shifted), _floats(exps), exp_sum, _floats(weights))
        fusions.append(_weighted("attention", weights, scores))
    fusions.append(_weighted("average", np.full(num_scales, 1.0 / num_scales), scores))
    source = scores.argmax(axis=0)  # (C,) first maximum, as torch.amax's value
    fused = scores.max(axis=0)
    fusions.append(CellFusion("max", None, None, _floats(fused), tuple(int(s) for s in source), int(fused.argmax())))
    return softmax, tuple(fusions)


def _weighted(method: str, weights: np.ndarray, scores: np.ndarray) -> CellFusion:
    terms = weights[:, None] * scores  # (S, C)
    fused = terms.sum(axis=0)
    return CellFusion(method, _floats(weights), tuple(_floats(t) for t in terms), _floats(fused), None, int(fused.argmax()))


def pixel_breakdown(prediction, row: int, col: int, classes: Sequence[str], top_k: int = 3, chosen_class: int | str | None = None) -> PixelBreakdown:
    """Eq. 1 and Eq. 2 with the numbers of one pixel of a :class:`~segscale.predictor.Prediction`.

    Args:
        prediction: a prediction of any merge; with attention logits all three merges are
            shown, without them (average- or max-trained models) average and max.
        row, col: the pixel, in the image as predicted (``prediction.image``).
        classes: the class names (``predictor.classes``).
        top_k: how many classes to show, the highest g_c of the prediction's own merge first.
        chosen_class: a class (index or name) to show as well, if not among the top-k.
    """
    classes = tuple(classes)
    num_scales, num_classes, grid_h, grid_w = prediction.score_maps.shape
    if len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names for a prediction with {num_classes} classes")
    image_size = tuple(int(v) for v in prediction.labels.shape)
    height, width = image_size
    if isinstance(row, bool) or isinstance(col, bool) or not (0 <= int(row) < height and 0 <= int(col) < width):
        raise ValueError(
            f"pixel (row {row}, col {col}) is outside the {width}x{height} image; rows run 0..{height - 1}, cols 0..{width - 1}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    row, col = int(row), int(col)
    grid = (grid_h, grid_w)
    cell = nearest_cell(row, col, image_size, grid)  # type: ignore[arg-type]
    i, j = cell

    scores = prediction.score_maps[:, :, i, j].astype(np.float64)  # (S, C)
    logits = None if prediction.attention_logits is None else prediction.attention_logits[:, i, j].astype(np.float64)
    softmax, fusions = _cell_fusions(scores, logits)
    own = next(f for f in fusions if f.method == prediction.merge)
    order = np.argsort(-np.asarray(own.fused), kind="stable")
    shown = [int(c) for c in order[: min(top_k, num_classes)]]
    if chosen_class is not None:
        chosen = _class_index(chosen_class, classes)
        if chosen not in shown:
            shown.append(chosen)

    pixel_scores, cells_used = _bilinear_at(prediction.fused, row, col, image_size)  # type: ignore[arg-type]
    pixel_label = int(prediction.labels[row, col])
    note = None
    if pixel_label != own.winner:
        note = (
            f"the label at the pixel ({classes[pixel_label]}) differs from its nearest cell's winner "
            f"({classes[own.winner]}): the pixel lies between cells, and g interpolated there favours "
            f"{classes[pixel_label]}."
        )
    return PixelBreakdown(
        row=row,
        col=col,
        image_size=image_size,  # type: ignore[arg-type]
        grid=grid,
        cell=cell,
        cell_center=cell_center(cell, image_size, grid),  # type: ignore[arg-type]
        scales=tuple(float(s) for s in prediction.scales),
        classes=classes,
        merge=prediction.merge,
        shown_classes=tuple(shown),
        scores=tuple(_floats(s) for s in scores),
        scale_winners=tuple(int(c) for c in scores.argmax(axis=1)),
        softmax=softmax,
        fusions=fusions,
        stored_weights=None if prediction.attention is None else _floats(prediction.attention[:, i, j]),
        stored_fused=_floats(prediction.fused[:, i, j]),
        pixel_scores=_floats(pixel_scores),
        interpolation_cells=cells_used,
        pixel_label=pixel_label,
        note=note,
    )


# ============================================================================ merge comparison


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
                row.update({f"IoU {name}": (None if np.isnan(v) else v) for name, v in zip(self.classes, r.scores.class_iou)})
            rows.append(row)
        return rows

    def to_text(self) -> str:
        """The comparison as an aligned table for a terminal."""
        lines = [
            f"merges compared: {', '.join(self.methods)} (from one forward pass)",
            f"pixels where they disagree: {int(self.disagreement.sum())} of {self.disagreement.size} ({self.disagreement_share:.2%})",
            "pairwise agreement: " + ", ".join(f"{a}/{b} {share:.2%}" for a, b, share in self.agreement),
        ]
        if not self.has_ground_truth:
            lines.append("no ground truth: IoU and error maps need a ScaleShapes sample or a label image")
            return "\n".join(lines)
        names = [name[:9] for name in self.classes]
        header = f"{'merge':<11}{'mIoU':>8}{'pix acc':>9}{'wrong':>9}{'right@dis':>11}  " + " ".join(f"{n:>9}" for n in names)
        lines += ["", header, "-" * len(header)]
        for r in self.results:
            right = "-" if r.correct_where_disagree is None else f"{r.correct_where_disagree:.3f}"
            ious = " ".join(f"{'-':>9}" if np.isnan(v) else f"{v:9.3f}" for v in r.scores.class_iou)
            lines.append(
                f"{r.method:<11}{r.scores.miou:8.4f}{r.scores.pixel_accuracy:9.4f}{int(r.errors.sum()):9d}{right:>11}  {ious}"
            )
        lines.append("right@dis: share of the pixels where the merges disagree that this merge labels correctly")
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
                    None if r.scores is None else {
                        **r.scores.as_dict(self.classes),
                        "wrong_pixels": int(r.errors.sum()),
                        "correct_where_disagree": r.correct_where_disagree,
                    }
                )
                for r in self.results
            },  # fmt: skip
        }


def compare_merges(prediction, ground_truth: np.ndarray | None = None, classes: Sequence[str] | None = None) -> MergeComparison:
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
            hint = " (the image was scaled down before prediction; compare at the predicted size)" if prediction.was_downscaled else ""
            raise ValueError(f"ground truth is {ground_truth.shape}, the prediction {size}: they must match{hint}")
        valid = ground_truth != IGNORE_INDEX
        if valid.any() and (ground_truth[valid].min() < 0 or ground_truth[valid].max() >= num_classes):
            raise ValueError(f"ground truth holds labels outside 0..{num_classes - 1} (and {IGNORE_INDEX} for ignore)")
    methods = available_merges(prediction)
    labels = {m: labels_for_merge(prediction.score_maps, prediction.attention_logits, m, size) for m in methods}
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


# ============================================================================ scales over many images


@dataclass(frozen=True)
class ObjectRecord:
    """One ScaleShapes object, as the diagnostics saw it.

    weights: mean w^s over its visible pixels, per scale (None without attention).
    dominant_scale: the scale with the largest mean weight (None without attention).
    recall: per merge (in the order of :attr:`ScaleDiagnostics.merges`), the share of its
        visible pixels labelled with its class.
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
class ScaleDiagnostics:
    """Which scale the attention trusts, against object size and class, over ScaleShapes images.

    Shapes: B size bins (``bin_edges``, px of extent), S scales, K classes, M merges.

    Attributes:
        split, start, count: the images, ``start .. start + count - 1`` of ``split``.
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
                row[f"weight_s{_fmt_scale(scale)}"] = None if obj.weights is None else round(obj.weights[k], 6)
            row["dominant_scale"] = obj.dominant_scale
            row.update({f"recall_{m}": round(r, 6) for m, r in zip(self.merges, obj.recall)})
            rows.append(row)
        return rows

    def to_csv(self) -> str:
        """The per-object table as CSV text (header included; empty cells for missing values)."""
        return _rows_to_csv(self.object_rows(), self._csv_fields())

    def _csv_fields(self) -> list[str]:
        return (
            ["image_index", "instance_id", "class", "extent_px", "size_bin", "visible_pixels"]
            + [f"weight_s{_fmt_scale(s)}" for s in self.scales]
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
                **{f"weight_s{_fmt_scale(s)}": _none_if_nan(self.weight_by_extent, b, k) for k, s in enumerate(self.scales)},
            }
            for b in range(len(self.bin_edges) - 1)
        ]

    def class_rows(self) -> list[dict]:
        return [
            {
                "class": name,
                "objects": int(self.objects_per_class[c]),
                **{f"weight_s{_fmt_scale(s)}": _none_if_nan(self.weight_by_class, c, k) for k, s in enumerate(self.scales)},
            }
            for c, name in enumerate(self.classes)
        ]

    def merge_rows(self) -> list[dict]:
        return [
            {"merge": m, "mIoU": s.miou, "pixel_accuracy": s.pixel_accuracy}
            for m, s in zip(self.merges, self.scores)
        ]

    def to_text(self) -> str:
        """The aggregates as aligned tables for a terminal."""
        scale_heads = "".join(f"{'s=' + _fmt_scale(s):>9}" for s in self.scales)
        lines = [
            f"ScaleShapes {self.split} {self.start}..{self.start + self.count - 1}: {self.count} images, "
            f"{len(self.objects)} visible objects, scales {_scale_list(self.scales)}, {self.seconds:.1f} s",
            "",
            f"{'merge':<11}{'mIoU':>8}{'pix acc':>9}",
        ]
        lines += [f"{m:<11}{s.miou:8.4f}{s.pixel_accuracy:9.4f}" for m, s in zip(self.merges, self.scores)]
        if not self.has_attention:
            lines.append("(no attention weights: the 'attention' merge was not scored)")
            return "\n".join(lines)
        lines += ["", "mean attention weight per scale, by object extent (px):", f"{'extent':<12}{scale_heads}  objects"]
        for b in range(len(self.bin_edges) - 1):
            cells = "".join(f"{'-':>9}" if np.isnan(v) else f"{v:9.3f}" for v in self.weight_by_extent[b])
            lines.append(f"{self.bin_edges[b]:>4g}-{self.bin_edges[b + 1]:<7g}{cells}  {int(self.objects_per_bin[b]):7d}")
        lines += ["", "by class:", f"{'class':<12}{scale_heads}  objects"]
        for c, name in enumerate(self.classes):
            if self.objects_per_class[c]:
                cells = "".join(f"{v:9.3f}" for v in self.weight_by_class[c])
                lines.append(f"{name[:11]:<12}{cells}  {int(self.objects_per_class[c]):7d}")
        lines += ["", f"{'dominates':<12}" + "".join(f"{v:9.1%}" for v in self.dominant_share) + "  of all pixels"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The aggregates as JSON-ready plain data (the per-object rows are :meth:`to_csv`)."""
        return {
            "dataset": "scaleshapes",
            "split": self.split,
            "start": self.start,
            "images": self.count,
            "objects": len(self.objects),
            "scales": list(self.scales),
            "merges": {
                m: {**s.as_dict(self.classes), "iou_by_size": list(rows)} for m, s, rows in zip(self.merges, self.scores, self.iou_by_size)
            },
            "weight_by_extent": self.extent_rows() if self.has_attention else None,
            "weight_by_class": self.class_rows() if self.has_attention else None,
            "dominant_share": (
                {_fmt_scale(s): float(v) for s, v in zip(self.scales, self.dominant_share)} if self.has_attention else None
            ),
            "seconds": round(self.seconds, 3),
        }


def scale_diagnostics(
    predictor,
    split: str = "val",
    count: int = 50,
    scales=None,
    merges: Sequence[str] | None = None,
    start: int = 0,
    on_image: Callable[[int], None] | None = None,
) -> ScaleDiagnostics:
    """Run a checkpoint over ScaleShapes images ``start .. start + count - 1`` of ``split`` and tabulate its scales.

    One forward pass per image serves every merge (they differ only in Eq. 1's weights).
    Deterministic: the images are a pure function of (split, index), and the model runs in
    eval mode.

    Args:
        predictor: a :class:`~segscale.predictor.Predictor` for ScaleShapes' classes.
        scales: the scale set (None: the checkpoint's).
        merges: the merges to score (None: every one the model has; attention needs a head).
        on_image: called with 0, 1, ... after each image (a progress bar).
    """
    from .data.scaleshapes import CLASSES, generate_sample

    classes = tuple(predictor.classes)
    if classes != tuple(CLASSES):
        raise ValueError(f"this checkpoint predicts {list(classes)}, not ScaleShapes' classes {list(CLASSES)}")
    if isinstance(count, bool) or int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    has_head = predictor.has_attention_head
    if merges is None:
        merges = MERGE_MODES if has_head else tuple(m for m in MERGE_MODES if m != "attention")
    merges = tuple(dict.fromkeys(merges))
    for merge in merges:
        if merge not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge!r}; valid: {', '.join(MERGE_MODES)}")
    with_attention = "attention" in merges
    base_merge = "attention" if with_attention else "average"
    scales, _ = predictor.check_request(scales, base_merge)

    started = time.perf_counter()
    confusions = [ConfusionMatrix(len(classes)) for _ in merges]
    by_size = [SizeBinnedIoU(SIZE_BIN_EDGES) for _ in merges]
    attention_by_size = AttentionBySize(scales, classes, SIZE_BIN_EDGES) if with_attention else None
    records: list[ObjectRecord] = []
    for position, index in enumerate(range(start, start + int(count))):
        sample = generate_sample(split, index)
        prediction = predictor.predict(sample.image, scales=scales, merge=base_merge)
        size = sample.label.shape
        predicted = [labels_for_merge(prediction.score_maps, prediction.attention_logits, m, size) for m in merges]
        for k in range(len(merges)):
            confusions[k].update(sample.label, predicted[k])
            by_size[k].update(sample.objects, sample.instances, sample.label, predicted[k])
        attention = None
        if attention_by_size is not None:
            attention = resize_bilinear(torch.from_numpy(prediction.attention)[None], size)[0].numpy()  # (S, H, W)
            attention_by_size.update(sample.objects, sample.instances, attention)
        for obj in sample.objects:
            visible = sample.instances == obj.instance_id
            pixels = int(visible.sum())
            if not pixels:
                continue
            weights = None if attention is None else attention[:, visible].mean(axis=1)
            records.append(
                ObjectRecord(
                    image_index=index,
                    instance_id=obj.instance_id,
                    class_index=obj.class_index,
                    class_name=obj.class_name,
                    extent=float(obj.extent),
                    visible_pixels=pixels,
                    weights=None if weights is None else _floats(weights),
                    dominant_scale=None if weights is None else float(scales[int(weights.argmax())]),
                    recall=tuple(float((p[visible] == obj.class_index).mean()) for p in predicted),
                )
            )
        if on_image is not None:
            on_image(position)

    bins = len(SIZE_BIN_EDGES) - 1
    objects_per_bin = np.bincount([size_bin_index(r.extent) for r in records], minlength=bins)
    objects_per_class = np.bincount([r.class_index for r in records], minlength=len(classes))
    weight_by_extent = weight_by_class = dominant = None
    if attention_by_size is not None:
        weight_by_extent = _safe_mean(attention_by_size.sums, attention_by_size.counts)
        weight_by_class = _safe_mean(attention_by_size.class_sums, attention_by_size.class_counts)
        total = attention_by_size.dominant_pixels.sum()
        dominant = attention_by_size.dominant_pixels / total
    return ScaleDiagnostics(
        split=split,
        start=int(start),
        count=int(count),
        scales=tuple(scales),
        merges=merges,
        classes=classes,
        bin_edges=tuple(SIZE_BIN_EDGES),
        objects=tuple(records),
        objects_per_bin=objects_per_bin,
        objects_per_class=objects_per_class,
        weight_by_extent=weight_by_extent,
        weight_by_class=weight_by_class,
        dominant_share=dominant,
        scores=tuple(c.scores() for c in confusions),
        iou_by_size=tuple(tuple(b.rows()) for b in by_size),
        seconds=time.perf_counter() - started,
    )


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

    def image_rows(self) -> list[dict]:
        rows = []
        for record in self.images:
            row = {"image": record.name, "height": record.size[0], "width": record.size[1]}
            row.update({f"weight_s{_fmt_scale(s)}": w for s, w in zip(self.scales, record.mean_weights)})
            row.update({f"dominant_s{_fmt_scale(s)}": d for s, d in zip(self.scales, record.dominant_share)})
            row["entropy_bits"] = record.mean_entropy_bits
            rows.append(row)
        return rows

    def to_csv(self) -> str:
        fields = (
            ["image", "height", "width"]
            + [f"weight_s{_fmt_scale(s)}" for s in self.scales]
            + [f"dominant_s{_fmt_scale(s)}" for s in self.scales]
            + ["entropy_bits"]
        )
        return _rows_to_csv(self.image_rows(), fields)

    def to_text(self) -> str:
        scale_heads = "".join(f"{'w s=' + _fmt_scale(s):>10}" for s in self.scales)
        dominant_heads = "".join(f"{'dom s=' + _fmt_scale(s):>11}" for s in self.scales)
        width = max(12, *(len(r.name[:30]) + 2 for r in self.images))
        lines = [
            f"{len(self.images)} images, scales {_scale_list(self.scales)}, {self.seconds:.1f} s",
            f"{'image':<{width}}{scale_heads}{dominant_heads}{'entropy':>9}",
        ]
        for r in self.images:
            lines.append(
                f"{r.name[:30]:<{width}}" + "".join(f"{w:10.3f}" for w in r.mean_weights)
                + "".join(f"{d:11.1%}" for d in r.dominant_share) + f"{r.mean_entropy_bits:9.3f}"
            )  # fmt: skip
        lines.append(
            f"{'all':<{width}}" + "".join(f"{w:10.3f}" for w in self.mean_weights)
            + "".join(f"{d:11.1%}" for d in self.dominant_share) + f"{self.mean_entropy_bits:9.3f}"
        )  # fmt: skip
        lines.append(f"entropy in bits: 0 = all weight on one scale, {self.max_entropy_bits:.3f} = all scales equal")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "images": len(self.images),
            "scales": list(self.scales),
            "mean_weights": {_fmt_scale(s): w for s, w in zip(self.scales, self.mean_weights)},
            "dominant_share": {_fmt_scale(s): d for s, d in zip(self.scales, self.dominant_share)},
            "mean_entropy_bits": self.mean_entropy_bits,
            "max_entropy_bits": self.max_entropy_bits,
            "per_image": self.image_rows(),
            "seconds": round(self.seconds, 3),
        }


def entropy_bits(weights: np.ndarray) -> np.ndarray:
    """(S, ...) weights summing to 1 over S -> (...) entropy -sum_s w log2 w, with 0 log 0 = 0."""
    weights = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, weights * np.log2(np.where(weights > 0, weights, 1.0)), 0.0)
    return np.clip(-terms.sum(axis=0), 0.0, None)


def image_diagnostics(
    predictor,
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    scales=None,
    on_image: Callable[[int], None] | None = None,
) -> ImageSetDiagnostics:
    """The attention over images without ground truth: weight, dominance and entropy per scale.

    Args:
        predictor: a :class:`~segscale.predictor.Predictor` whose model has an attention head.
        images: (H, W, 3) uint8 RGB arrays (e.g. ``load_image(...).rgb``).
        names: one name per image (default "image 1", ...).
        scales: the scale set (None: the checkpoint's).
    """
    if not predictor.has_attention_head:
        raise ValueError("this checkpoint has no attention head, so there are no attention weights to summarise")
    if len(images) == 0:
        raise ValueError("no images given")
    names = tuple(names) if names is not None else tuple(f"image {k + 1}" for k in range(len(images)))
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    scales, _ = predictor.check_request(scales, "attention")
    started = time.perf_counter()
    records = []
    dominant_pixels = np.zeros(len(scales), np.int64)
    for k, (name, image) in enumerate(zip(names, images)):
        prediction = predictor.predict(image, scales=scales, merge="attention")
        size = tuple(prediction.labels.shape)
        attention = resize_bilinear(torch.from_numpy(prediction.attention)[None], size)[0].numpy()  # (S, H, W)
        counts = np.bincount(attention.argmax(axis=0).ravel(), minlength=len(scales))
        dominant_pixels += counts
        records.append(
            ImageAttentionRecord(
                name=str(name),
                size=size,  # type: ignore[arg-type]
                mean_weights=_floats(attention.reshape(len(scales), -1).mean(axis=1, dtype=np.float64)),
                dominant_share=_floats(counts / counts.sum()),
                mean_entropy_bits=float(entropy_bits(attention).mean()),
            )
        )
        if on_image is not None:
            on_image(k)
    return ImageSetDiagnostics(
        scales=tuple(scales),
        images=tuple(records),
        mean_weights=_floats(np.mean([r.mean_weights for r in records], axis=0)),
        dominant_share=_floats(dominant_pixels / dominant_pixels.sum()),
        mean_entropy_bits=float(np.mean([r.mean_entropy_bits for r in records])),
        max_entropy_bits=math.log2(len(scales)),
        seconds=time.perf_counter() - started,
    )


# ============================================================================ small helpers


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values).ravel())


def _safe_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[:, None] > 0, sums / np.maximum(counts[:, None], 1), np.nan)


def _none_if_nan(table: np.ndarray | None, row: int, col: int) -> float | None:
    if table is None or np.isnan(table[row, col]):
        return None
    return float(table[row, col])


def _rows_to_csv(rows: list[dict], fields: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def _class_index(chosen: int | str, classes: tuple[str, ...]) -> int:
    if isinstance(chosen, str):
        if chosen not in classes:
            raise ValueError(f"unknown class {chosen!r}; classes: {', '.join(classes)}")
        return classes.index(chosen)
    if isinstance(chosen, bool) or not 0 <= int(chosen) < len(classes):
        raise ValueError(f"class index {chosen!r} out of range 0..{len(classes) - 1}")
    return int(chosen)


def _fmt_scale(scale: float) -> str:
    return f"{scale:g}"


def _scale_list(scales) -> str:
    return "{" + ", ".join(_fmt_scale(s) for s in scales) + "}"


def _number(value: float, digits: int) -> str:
    """Fixed decimals, or 3 significant digits for values too small to show that way (an untrained model's scores)."""
    if value != 0 and abs(value) < 0.5 * 10 ** (1 - digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _signed(value: float) -> str:
    return f"({_number(value, 4)})" if value < 0 else _number(value, 4)


def _latex_number(value: float) -> str:
    text = _number(value, 3)
    scientific = "e" in text
    if scientific:
        mantissa, exponent = text.split("e")
        text = rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return f"({text})" if value < 0 or scientific else text


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "^": r"\^{}", "#": r"\#",
                  "&": r"\&", "%": r"\%", "$": r"\$", "~": r"\~{}"}  # fmt: skip


def _latex_text(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
