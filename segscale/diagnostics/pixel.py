"""One pixel's Eq. 1-2: the attention logits h^s, the softmax of Eq. 2 step by step, the scores f^s_c and every merge.

Where Eq. 1 holds exactly. The model fuses on the score-map grid of the largest scale and
upsamples only the fused map g to the image (bilinear, in the trunk's convention: the
prediction's ``align_corners``, which the grid functions of :mod:`.grid` follow). Upsampling a
weighted sum with position-dependent weights is not the weighted sum of the upsampled maps,
so the equations are shown at the grid cell nearest the chosen pixel; the label at the
pixel itself is g interpolated between its four surrounding cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..formatting import format_number, format_scale_set, scale_label
from ..merges import ATTENTION, AVERAGE, HIERARCHICAL, LEARNED_MERGES, MAX
from ..merges import formula as merge_formula
from .formatting import floats, latex_number, latex_text, signed
from .gates import EFFECTIVE_WEIGHTS_NOTE, GateChain, gate_chain_at
from .grid import bilinear_at, cell_center, nearest_cell

# Terms of Eq. 1 per written line: a class name, two "0.333 · (−1.234)" terms and the result fit the pixel
# inspector's numbers column at 1,280 px (three ran off it); more scales continue on the next lines.
EQ1_TERMS_PER_LINE = 2
# Up to this many scales Eq. 2 writes the whole sum of exponentials under each fraction; past it, once, as Z.
EQ2_WHOLE_DENOMINATOR_MAX = 3


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

    method: "attention", "average", "max" or "hierarchical".
    weights: (S,) w^s of Eq. 1 (1/S for average, the gate chain's effective weights for hierarchical); None for max,
        whose pick differs per class.
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

    Shapes: S scales, C classes; (H, W) the image as predicted, (h, w) the score-map grid of the largest scale.

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
        gate_chain: Tao et al.'s chain of gates at the cell, written out
            (:class:`~segscale.diagnostics.gates.GateChain`); None without gate logits.
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
    gate_chain: GateChain | None = None

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
                row.update(
                    {
                        "h": self.softmax.logits[s],
                        "h - max h": self.softmax.shifted[s],
                        "exp(h - max h)": self.softmax.exps[s],
                        "w": self.softmax.weights[s],
                    }
                )
            row.update({f"f[{self.classes[c]}]": self.scores[s][c] for c in self.shown_classes})
            row["winner"] = self.classes[self.scale_winners[s]]
            rows.append(row)
        return rows

    def merge_rows(self) -> list[dict]:
        """One row per merge: g_c of the shown classes and the winner."""
        return [
            {
                "merge": f.method,
                **{f"g[{self.classes[c]}]": f.fused[c] for c in self.shown_classes},
                "winner": self.classes[f.winner],
            }
            for f in self.fusions
        ]

    # ---- text

    def to_text(self) -> str:
        """Eq. 2 and Eq. 1 with this pixel's numbers, aligned for a terminal."""
        names = self.classes
        height, width = self.image_size
        lines = [
            f"pixel (row {self.row}, col {self.col}) of the image ({height} rows x {width} cols) -> grid cell "
            f"(row {self.cell[0]}, col {self.cell[1]}) of the largest scale's grid ({self.grid[0]} x {self.grid[1]}), "
            f"which sits on pixel ({self.cell_center[0]:.1f}, {self.cell_center[1]:.1f})",
            f"scales {format_scale_set(self.scales)}; this prediction merges by {self.merge}",
            "Eq. 1-2 hold exactly on the grid; the label at a pixel comes from g upsampled between cells.",
            "",
        ]
        scale_names = [f"s={scale_label(s)}" for s in self.scales]
        if self.softmax is not None:
            sm = self.softmax
            lines += [
                "Eq. 2   w^s = exp(h^s) / sum_t exp(h^t)   (computed as exp(h^s - max h) / sum: the same value)",
                f"  {'scale':<8}{'h^s':>10}{'h^s - max':>12}{'exp(.)':>12}{'w^s':>10}",
            ]
            for s in range(len(self.scales)):
                lines.append(
                    f"  {scale_names[s]:<8}{sm.logits[s]:10.4f}"
                    f"{sm.shifted[s]:12.4f}{sm.exps[s]:12.6f}{sm.weights[s]:10.4f}"
                )
            lines += [f"  {'sum':<8}{'':>10}{'':>12}{sm.exp_sum:12.6f}{sum(sm.weights):10.4f}", ""]
        elif self.gate_chain is not None:
            lines += [
                "Eq. 2   not used: hierarchical attention weighs the scales by a chain of gates, written out below.",
                "",
            ]
        else:
            lines += [
                f"Eq. 2   not shown: this prediction was merged by {self.merge} and carries no attention logits.",
                "",
            ]

        shown = self.shown_classes
        label_width = max(12, *(len(names[c]) + 2 for c in shown))
        lines.append("f^s_c at the cell (top classes of the fusion; * marks each scale's winner)")
        lines.append(f"  {'class':<{label_width}}" + "".join(f"{n:>12}" for n in scale_names))
        for c in shown:
            cells = "".join(
                f"{self.scores[s][c]:11.4f}{'*' if self.scale_winners[s] == c else ' '}"
                for s in range(len(self.scales))
            )
            lines.append(f"  {names[c]:<{label_width}}{cells}")
        lines.append(f"  {'winner':<{label_width}}" + "".join(f"{names[w]:>12}" for w in self.scale_winners))
        lines.append("")
        if self.gate_chain is not None:
            lines += self.gate_chain.to_text(self.scores, names, shown)
            lines += [f"  ({EFFECTIVE_WEIGHTS_NOTE})", ""]

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
        equation = merge_formula(fusion.method, len(self.scales))
        marker = "  <- this prediction" if fusion.method == self.merge else ""
        lines = [equation + marker]
        width = max(len(names[c]) for c in shown)
        for c in shown:
            if fusion.terms is not None:
                sums = " + ".join(
                    f"{fusion.weights[s]:.4f} x {signed(self.scores[s][c])}" for s in range(len(self.scales))
                )
                lines.append(f"  g_{names[c]:<{width}} = {sums} = {format_number(fusion.fused[c], 4)}")
            else:
                picks = ", ".join(signed(self.scores[s][c]) for s in range(len(self.scales)))
                source = scale_names[fusion.source_scales[c]]
                lines.append(
                    f"  g_{names[c]:<{width}} = max({picks}) = {format_number(fusion.fused[c], 4)}  (from {source})"
                )
        lines.append(f"  winner: {names[fusion.winner]} (g = {format_number(fusion.fused[fusion.winner], 4)})")
        return lines

    # ---- LaTeX for st.latex

    def latex_eq2(self) -> str | None:
        """Eq. 2 with this cell's numbers (one aligned block), or None without attention logits."""
        if self.softmax is None:
            return None
        sm = self.softmax
        powers = [f"e^{{{latex_number(h, operand=False)}}}" for h in sm.logits]  # an exponent needs no parentheses
        lines = [r"w^{(s)} &= \frac{\exp(h^{(s)})}{\sum_{t=1}^{S} \exp(h^{(t)})}"]
        if len(powers) <= EQ2_WHOLE_DENOMINATOR_MAX:
            denominator = " + ".join(powers)
        else:  # the sum once, as Z, a few powers a line: five in every fraction ran off the inspector's column
            chunks = [" + ".join(powers[k : k + 3]) for k in range(0, len(powers), 3)]
            lines.append(r"Z &= \textstyle\sum_{t} e^{h^{(t)}} = " + (" +{} \\\\\n" + r"&\quad ").join(chunks))
            denominator = "Z"
        for s, scale in enumerate(self.scales):
            fraction = rf"\frac{{{powers[s]}}}{{{denominator}}}"
            lines.append(rf"w^{{({scale_label(scale)})}} &= {fraction} = {sm.weights[s]:.4f}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def latex_eq1(self, method: str | None = None, terms_per_line: int = EQ1_TERMS_PER_LINE) -> str:
        """Eq. 1 (or the average / max special case) for the shown classes, with this cell's numbers.

        Each class's sum is broken after every ``terms_per_line`` terms (its result ends the last
        line), so the block stays as narrow as the page's numbers column at any scale count.
        """
        fusion = self.fusion(method or self.merge)
        scales = self.scales
        if fusion.method == MAX:
            lines = [r"g_c &= \max_{s} f^{(s)}_c"]
        else:
            weight = r"w^{(s)}" if fusion.method in LEARNED_MERGES else rf"\tfrac{{1}}{{{len(scales)}}}"
            lines = [rf"g_c &= \sum_{{s=1}}^{{S}} {weight}\, f^{{(s)}}_c"]
        for c in self.shown_classes:
            name = rf"g_{{\text{{{latex_text(self.classes[c])}}}}}"
            if fusion.terms is not None:
                terms = [
                    rf"{fusion.weights[s]:.3f} \cdot {latex_number(self.scores[s][c])}" for s in range(len(scales))
                ]
                joiner = " + "
            else:
                terms = [latex_number(self.scores[s][c], operand=False) for s in range(len(scales))]
                joiner = ", "
            chunks = [joiner.join(terms[k : k + terms_per_line]) for k in range(0, len(terms), terms_per_line)]
            if fusion.terms is None:
                chunks[0], chunks[-1] = r"\max(" + chunks[0], chunks[-1] + ")"
            continued = " +{}" if fusion.terms is not None else ","  # {} keeps the + binary at a line end
            lines.append(rf"{name} &= {chunks[0]}" + (continued if len(chunks) > 1 else ""))
            lines += [
                rf"&\quad {chunk}" + (continued if k < len(chunks) - 2 else "") for k, chunk in enumerate(chunks[1:])
            ]
            lines[-1] += rf" = {latex_number(fusion.fused[c], operand=False)}"
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def latex_blocks(self) -> list[str]:
        """The blocks a page shows with ``st.latex``, in order: Eq. 2 (when there is attention) or the
        chain of gates (hierarchical), then Eq. 1."""
        eq2 = self.latex_eq2()
        chain = None if self.gate_chain is None else self.gate_chain.latex_gates()
        return [block for block in (eq2, chain) if block] + [self.latex_eq1()]

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
            "gate_chain": None if self.gate_chain is None else self.gate_chain.to_dict(names),
        }
        if self.softmax is not None:
            sm = self.softmax
            data["softmax"] = {
                "logits": list(sm.logits),
                "max_logit": sm.max_logit,
                "shifted": list(sm.shifted),
                "exps": list(sm.exps),
                "exp_sum": sm.exp_sum,
                "weights": list(sm.weights),
            }
        for f in self.fusions:
            data["fusions"][f.method] = {
                "weights": None if f.weights is None else list(f.weights),
                "fused": dict(zip(names, f.fused)),
                "winner": names[f.winner],
                **(
                    {"source_scales": {names[c]: self.scales[s] for c, s in enumerate(f.source_scales)}}
                    if f.source_scales
                    else {}
                ),
            }
        return data


def _cell_fusions(
    scores: np.ndarray, logits: np.ndarray | None, hierarchical_weights: np.ndarray | None = None
) -> tuple[SoftmaxSteps | None, tuple[CellFusion, ...]]:
    """scores (S, C) and logits (S,) or None, float64 -> the softmax steps and every fusion at one cell.

    ``hierarchical_weights``: the gate chain's effective weights (S,) at the cell, from a
    hierarchical prediction; Eq. 1 with them is the chain's fused score (the chain itself is
    written out by :mod:`.gates`)."""
    num_scales = scores.shape[0]
    fusions = []
    softmax = None
    if logits is not None:
        max_logit = float(logits.max())
        shifted = logits - max_logit
        exps = np.exp(shifted)
        exp_sum = float(exps.sum())
        weights = exps / exp_sum
        softmax = SoftmaxSteps(floats(logits), max_logit, floats(shifted), floats(exps), exp_sum, floats(weights))
        fusions.append(_weighted(ATTENTION, weights, scores))
    fusions.append(_weighted(AVERAGE, np.full(num_scales, 1.0 / num_scales), scores))
    source = scores.argmax(axis=0)  # (C,) first maximum, as torch.amax's value
    fused = scores.max(axis=0)
    fusions.append(CellFusion(MAX, None, None, floats(fused), tuple(int(s) for s in source), int(fused.argmax())))
    if hierarchical_weights is not None:
        fusions.append(_weighted(HIERARCHICAL, hierarchical_weights, scores))
    return softmax, tuple(fusions)


def _weighted(method: str, weights: np.ndarray, scores: np.ndarray) -> CellFusion:
    terms = weights[:, None] * scores  # (S, C)
    fused = terms.sum(axis=0)
    return CellFusion(
        method, floats(weights), tuple(floats(t) for t in terms), floats(fused), None, int(fused.argmax())
    )


def pixel_breakdown(
    prediction, row: int, col: int, classes: Sequence[str], top_k: int = 3, chosen_class: int | str | None = None
) -> PixelBreakdown:
    """Eq. 1 and Eq. 2 with the numbers of one pixel of a :class:`~segscale.predictor.Prediction`.

    Args:
        prediction: a prediction of any merge; with attention logits all three merges are
            shown, without them (average- or max-trained models) average and max; with gate
            logits (hierarchical) average, max and hierarchical, and the chain of gates.
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
            f"pixel (row {row}, col {col}) is outside the {width}x{height} "
            f"image; rows run 0..{height - 1}, cols 0..{width - 1}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    row, col = int(row), int(col)
    grid = (grid_h, grid_w)
    align_corners = getattr(prediction, "align_corners", True)  # how g was upsampled to the labels
    cell = nearest_cell(row, col, image_size, grid, align_corners)  # type: ignore[arg-type]
    i, j = cell

    scores = prediction.score_maps[:, :, i, j].astype(np.float64)  # (S, C)
    logits = None if prediction.attention_logits is None else prediction.attention_logits[:, i, j].astype(np.float64)
    chain = None
    if getattr(prediction, "gate_logits", None) is not None:
        # Recomputed in float64 from the gate logits, as Eq. 2 is from the attention logits; the
        # model's own float32 weights stay in stored_weights to compare.
        chain = gate_chain_at(scores, prediction.gate_logits[:, i, j], prediction.scales)
    hierarchical = None if chain is None else np.asarray(chain.weights_in_scale_order())
    softmax, fusions = _cell_fusions(scores, logits, hierarchical)
    own = next(f for f in fusions if f.method == prediction.merge)
    order = np.argsort(-np.asarray(own.fused), kind="stable")
    shown = [int(c) for c in order[: min(top_k, num_classes)]]
    if chosen_class is not None:
        chosen = _class_index(chosen_class, classes)
        if chosen not in shown:
            shown.append(chosen)

    pixel_scores, cells_used = bilinear_at(prediction.fused, row, col, image_size, align_corners)  # type: ignore[arg-type]
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
        cell_center=cell_center(cell, image_size, grid, align_corners),  # type: ignore[arg-type]
        scales=tuple(float(s) for s in prediction.scales),
        classes=classes,
        merge=prediction.merge,
        shown_classes=tuple(shown),
        scores=tuple(floats(s) for s in scores),
        scale_winners=tuple(int(c) for c in scores.argmax(axis=1)),
        softmax=softmax,
        fusions=fusions,
        stored_weights=None if prediction.attention is None else floats(prediction.attention[:, i, j]),
        stored_fused=floats(prediction.fused[:, i, j]),
        pixel_scores=floats(pixel_scores),
        interpolation_cells=cells_used,
        pixel_label=pixel_label,
        note=note,
        gate_chain=chain,
    )


def _class_index(chosen: int | str, classes: tuple[str, ...]) -> int:
    if isinstance(chosen, str):
        if chosen not in classes:
            raise ValueError(f"unknown class {chosen!r}; classes: {', '.join(classes)}")
        return classes.index(chosen)
    if isinstance(chosen, bool) or not 0 <= int(chosen) < len(classes):
        raise ValueError(f"class index {chosen!r} out of range 0..{len(classes) - 1}")
    return int(chosen)
