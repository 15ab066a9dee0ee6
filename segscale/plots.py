"""Figures: pure functions, data in, matplotlib Figure out.

Every matplotlib figure of segscale is made here: the diagnostics' (:mod:`segscale.diagnostics`),
the merge comparison, the leave-one-scale-out and model diagrams, and one prediction's side by
side (:func:`side_by_side_figure`, the main view as one figure). Every function returns a Figure,
except :func:`figure_png`, which saves one as PNG bytes. The pictures drawn in them are arrays
from :mod:`segscale.visualize`; the files saved from a prediction are :mod:`segscale.outputs`'.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot's
global state, so a Streamlit page (``st.pyplot(figure)``) and the command line can build them
from any thread, and nothing leaks between calls.

Colours come from :mod:`segscale.palette`: scale k of a set has the colour it has on every
page (:func:`segscale.palette.scale_colour`), so a reader who learns "blue is the first scale"
on one plot can read the next, and the dominant-scale map too.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, FixedLocator, NullLocator

from .formatting import format_percent, format_scale_set, scale_label
from .merges import ATTENTION, GATE_HEAD, MERGES, weighing_merge
from .palette import ATTENTION_CMAP, ENTROPY_CMAP, SCORE_CMAP, colorize_labels, scale_colour, unit_rgb
from .trunks import TRUNKS
from .visualize import (
    SINGLE_SCALE_NOTE,
    decided_image,
    decision_map_image,
    disagreement_image,
    error_image,
    legend_shares,
)

if TYPE_CHECKING:
    from .visualize import PredictionView

__all__ = [
    "diagnostics_figures",
    "decided_by_extent_figure",
    "dominant_share_figure",
    "figure_png",
    "image_weights_figure",
    "merge_comparison_figure",
    "merge_scores_figure",
    "model_diagram_figure",
    "scale_ablation_figure",
    "side_by_side_figure",
    "weight_by_class_figure",
    "weight_by_extent_figure",
]


def _scale_colours(count: int) -> list[tuple[float, float, float]]:
    """The page's colours of ``count`` scales (:mod:`segscale.palette`), as matplotlib takes them."""
    return [unit_rgb(scale_colour(k)) for k in range(count)]


def _scale_name(scale: float) -> str:
    return f"s = {scale_label(scale)}"


def figure_png(figure: Figure, dpi: int = 100, *, tight: bool = True) -> bytes:
    """PNG bytes of a figure, on white.

    ``tight`` crops the page to what is drawn (the diagnostics' figures); a figure that lays
    out its own margins, legends and colour bars (:func:`side_by_side_figure`) is saved whole.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white", bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def _weights_of(merges) -> tuple[str, str]:
    """(axis label, who trusts the scales) for weights from ``merges``: a hierarchical model's are the
    effective weights of its gates, not a softmax attention's."""
    merge = weighing_merge(merges)
    return f"mean {merge.weights}", merge.trust


def weight_by_extent_figure(
    diagnostics, show_objects: bool = True, zoom: bool = False, title: str | None = None
) -> Figure:
    """Mean attention weight of each scale against object extent (log x axis).

    One line per scale through the size bins (plotted at each bin's geometric centre, empty
    bins left out), and with ``show_objects`` every object as a faint dot at its own extent.
    The dashed line is 1/S, what average pooling would give every scale. The y axis runs
    0-1 (weights are shares), or with ``zoom`` just around the bin means, for a model whose
    weights stay close to 1/S.
    """
    _require_attention(diagnostics)
    scales = diagnostics.scales
    edges = np.asarray(diagnostics.bin_edges, dtype=float)
    centres = np.sqrt(edges[:-1] * edges[1:])
    colours = _scale_colours(len(scales))
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    axes = figure.add_subplot()
    if show_objects and diagnostics.objects:
        extents = np.array([o.extent for o in diagnostics.objects])
        weights = np.array([o.weights for o in diagnostics.objects])  # (N, S)
        for k in range(len(scales)):
            axes.scatter(extents, weights[:, k], s=9, color=colours[k], alpha=0.25, linewidths=0)
    for k, scale in enumerate(scales):
        values = diagnostics.weight_by_extent[:, k]
        keep = ~np.isnan(values)
        axes.plot(centres[keep], values[keep], marker="o", color=colours[k], linewidth=2, label=_scale_name(scale))
    axes.axhline(
        1 / len(scales), color="0.5", linestyle="--", linewidth=1, label=f"1/S = {1 / len(scales):.2f} (average)"
    )
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(FixedLocator(edges))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([f"{e:g}" for e in edges])
    axes.set_xlim(edges[0] * 0.9, edges[-1] * 1.1)
    if zoom:
        means = diagnostics.weight_by_extent[~np.isnan(diagnostics.weight_by_extent)]
        low, high = min(means.min(initial=1.0), 1 / len(scales)), max(means.max(initial=0.0), 1 / len(scales))
        margin = max(0.01, 0.15 * (high - low))
        axes.set_ylim(max(0.0, low - margin), min(1.0, high + margin))
    else:
        axes.set_ylim(0, 1)
    axes.set_xlabel("object extent (circumscribed diameter, px; log scale)")
    weight_label, trusting = _weights_of(diagnostics.merges)
    axes.set_ylabel(weight_label)
    axes.grid(True, which="major", alpha=0.3)
    counts = ", ".join(str(int(n)) for n in diagnostics.objects_per_bin)
    axes.set_title(
        title or f"Which scale {trusting}, by object size\n({len(diagnostics.objects)} objects; per bin: {counts})"
    )
    axes.legend(loc="best", fontsize="small")
    return figure


def weight_by_class_figure(diagnostics, title: str | None = None) -> Figure:
    """Mean attention weight of each scale per class (grouped bars; classes without objects left out)."""
    _require_attention(diagnostics)
    present = [c for c in range(len(diagnostics.classes)) if diagnostics.objects_per_class[c] > 0]
    labels = [f"{diagnostics.classes[c]}\n({int(diagnostics.objects_per_class[c])})" for c in present]
    values = diagnostics.weight_by_class[present] if present else np.zeros((0, len(diagnostics.scales)))
    figure = _grouped_bars(
        labels,
        values,
        [_scale_name(s) for s in diagnostics.scales],
        _scale_colours(len(diagnostics.scales)),
        ylabel=_weights_of(diagnostics.merges)[0],
        title=title or "Mean weight per scale, by class (objects)",
        reference=1 / len(diagnostics.scales),
    )
    return figure


def image_weights_figure(image_set, title: str | None = None) -> Figure:
    """Mean attention weight of each scale per uploaded image (grouped bars)."""
    labels = [_short(r.name) for r in image_set.images]
    values = np.array([r.mean_weights for r in image_set.images])
    return _grouped_bars(
        labels,
        values,
        [_scale_name(s) for s in image_set.scales],
        _scale_colours(len(image_set.scales)),
        ylabel=_weights_of((image_set.merge,))[0],
        title=title or "Mean weight per scale, by image",
        reference=1 / len(image_set.scales),
    )


def dominant_share_figure(scales: Sequence[float], shares: Sequence[float], title: str | None = None) -> Figure:
    """Share of pixels on which each scale has the largest attention weight (bars, one per scale)."""
    shares = np.asarray(shares, dtype=float)
    figure = Figure(figsize=(5.0, 3.6), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(scales))
    bars = axes.bar(positions, shares, color=_scale_colours(len(scales)))
    axes.bar_label(bars, labels=[f"{v:.0%}" for v in shares], padding=2, fontsize="small")
    axes.set_xticks(positions, [_scale_name(s) for s in scales])
    axes.set_ylim(0, max(1.0, float(shares.max(initial=0)) * 1.1))
    axes.set_ylabel("share of pixels")
    axes.set_title(title or "Pixels each scale dominates (largest $w^s$)")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def merge_scores_figure(
    methods: Sequence[str],
    mious: Sequence[float],
    pixel_accuracies: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """mIoU (and pixel accuracy, if given) per merge method (bars)."""
    rows = [list(mious)] + ([list(pixel_accuracies)] if pixel_accuracies is not None else [])
    names = ["mIoU"] + (["pixel accuracy"] if pixel_accuracies is not None else [])
    values = np.array(rows, dtype=float).T  # (M, metrics)
    figure = _grouped_bars(
        list(methods),
        values,
        names,
        ["#4c72b0", "#c9d3e6"][: len(names)],
        ylabel="score",
        title=title or "mIoU per merge method",
        value_labels=True,
    )
    axes = figure.axes[0]
    for tick, method in zip(axes.get_xticklabels(), methods):
        tick.set_color(MERGES[method].colour if method in MERGES else "black")
    return figure


def diagnostics_figures(diagnostics) -> dict[str, Figure]:
    """Every figure of a :class:`~segscale.diagnostics.ScaleDiagnostics`, by file stem."""
    figures = {
        "miou_by_merge": merge_scores_figure(
            diagnostics.merges, [s.miou for s in diagnostics.scores], [s.pixel_accuracy for s in diagnostics.scores]
        )
    }
    if diagnostics.has_attention:
        figures["weight_by_extent"] = weight_by_extent_figure(diagnostics)
        figures["weight_by_class"] = weight_by_class_figure(diagnostics)
        figures["dominant_share"] = dominant_share_figure(diagnostics.scales, diagnostics.dominant_share)
    if getattr(diagnostics, "has_ablation", False):
        figures["decided_by_extent"] = decided_by_extent_figure(diagnostics)
    return figures


def merge_comparison_figure(comparison, image: np.ndarray, palette, title: str = "") -> Figure:
    """The image, each merge's labels, where they disagree and (with ground truth) each one's errors.

    Rows: [image, labels per merge..., disagreement], then with ground truth
    [ground truth, error map per merge...]. Error maps are red where wrong, grey where the
    ground truth says "ignore".
    """
    methods = comparison.methods
    columns = len(methods) + 2
    rows = 2 if comparison.has_ground_truth else 1
    height, width = image.shape[:2]
    panel = 3.0
    figure = Figure(figsize=(panel * columns, panel * rows * height / width + 0.6 * rows), layout="constrained")
    grid = figure.add_gridspec(rows, columns)

    def show(r, c, array, caption):
        axes = figure.add_subplot(grid[r, c])
        axes.imshow(array, interpolation="nearest")
        axes.set_title(caption, fontsize="small")
        axes.set_axis_off()

    show(0, 0, image, "image")
    for k, result in enumerate(comparison.results):
        caption = result.method if result.scores is None else f"{result.method} (mIoU {result.scores.miou:.3f})"
        show(0, k + 1, colorize_labels(result.labels, palette), caption)
    show(
        0,
        columns - 1,
        disagreement_image(comparison.disagreement, image),
        f"merges disagree ({comparison.disagreement_share:.1%} of pixels)",
    )
    if comparison.has_ground_truth:
        show(1, 0, colorize_labels(comparison.ground_truth, palette), "ground truth")
        ignore = comparison.ground_truth == 255
        for k, result in enumerate(comparison.results):
            wrong = result.errors.sum() / max(1, (~ignore).sum())
            show(1, k + 1, error_image(result.errors, comparison.ground_truth), f"{result.method} errors ({wrong:.1%})")
        figure.add_subplot(grid[1, columns - 1]).set_axis_off()
    if title:
        figure.suptitle(title)
    return figure


SHARE_NET_NAMES = {name: trunk.display for name, trunk in TRUNKS.items()}  # the diagram's, from the registry


def model_diagram_figure(
    scales: Sequence[float],
    head_kind: str | None = "shared",
    title: str | None = None,
    trunk: str = "vgg16_largefov",
    head: str | None = None,
) -> Figure:
    """A schematic of the model for a reader new to it: share-net, attention head, Eq. 2, Eq. 1.

    One row per scale: the resized image, the shared trunk (named after ``trunk``, a trunk
    kind), its score map f^s and attention logit h^s; then the softmax over scales and the
    weighted sum. ``head_kind``: "shared" (one head applied to each scale), "paper" (one head
    over all scales' features) or None (no head: average or max pooling). ``head``: the name of
    the merge's head (:mod:`segscale.merges`); None or the attention head draws Eq. 2, the gate
    head of hierarchical attention its chain of sigmoid gates instead.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    scales = list(scales)
    count = len(scales)
    colours = _scale_colours(count)
    row_height = 1.15
    height = max(2.6, row_height * count + 0.4)
    figure = Figure(figsize=(11.5, 0.75 + 0.8 * height), layout="constrained")
    axes = figure.add_subplot()
    axes.set_xlim(0, 11.5)
    axes.set_ylim(0, height)
    axes.set_axis_off()
    middle = height / 2

    def box(x, y, w, h, text, face="#f2f2f2", edge="0.35", size=9.5, weight="normal"):
        patch = FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.03,rounding_size=0.08",
            facecolor=face,
            edgecolor=edge,
            linewidth=1.2,
            zorder=2,
        )
        axes.add_patch(patch)
        axes.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, zorder=3)

    def arrow(x0, y0, x1, y1, colour="0.3", **style):
        axes.add_patch(
            FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=11, color=colour, linewidth=1.1, zorder=1, **style
            )
        )

    centres = [middle + row_height * ((count - 1) / 2 - k) for k in range(count)]
    trunk_bottom, trunk_top = centres[-1] - 0.45, centres[0] + 0.45
    box(0.1, middle - 0.45, 1.2, 0.9, "image", face="#ffffff", weight="bold")
    box(
        3.0,
        trunk_bottom,
        1.7,
        trunk_top - trunk_bottom,
        SHARE_NET_NAMES.get(trunk, trunk) + "\n\nthe same\nweights at\nevery scale\n(share-net)",
        face="#e8eef7",
    )
    for k, (scale, y) in enumerate(zip(scales, centres)):
        colour = colours[k]
        arrow(1.3, middle, 1.65, y)
        box(1.65, y - 0.3, 1.1, 0.6, f"resize\ns = {scale:g}", face="#ffffff", edge=colour)
        arrow(2.75, y, 3.0, y, colour)
        arrow(4.7, y + 0.17, 5.25, y + 0.17, colour)
        box(5.25, y + 0.0, 1.45, 0.36, f"score map $f^{{{k + 1}}}$", face="#ffffff", edge=colour, size=9)
        if head_kind is not None:
            arrow(4.7, y - 0.22, 5.25, y - 0.22, colour)
            features = "fc7 features" if trunk == "vgg16_largefov" else "last features"  # torchvision's have no fc7
            box(5.25, y - 0.4, 1.45, 0.34, features, face="#ffffff", edge=colour, size=8.5)
        # every score map goes round the head to the fusion (drawn behind the boxes)
        arrow(6.7, y + 0.18, 10.75, middle + 0.55, "0.6", connectionstyle="arc3,rad=-0.1", linestyle="--")
    gates = head == GATE_HEAD.name
    if head_kind is not None:
        across = "applied to\neach scale" if head_kind == "shared" else "over all scales'\nfeatures at once"
        name, logits = ("gate head", "$q^s$") if gates else ("attention head", "$h^s$")
        box(
            7.0,
            trunk_bottom,
            1.5,
            trunk_top - trunk_bottom,
            f"{name}\n(3x3 conv, ReLU,\n1x1 conv)\n{across}\n\nlogits {logits}",
            face="#fdf0e2",
        )
        for y in centres:
            arrow(6.7, y - 0.23, 7.0, y - 0.23)
        weighing = (
            "sigmoid\ngates, chained\nover scales\n$\\to w^s$" if gates else "softmax\nover scales\n(Eq. 2)\n$\\to w^s$"
        )
        box(8.75, middle - 0.55, 1.15, 1.1, weighing, face="#fdf0e2")
        arrow(8.5, middle, 8.75, middle)
        arrow(9.9, middle, 10.1, middle)
        fuse_text = "$g = \\sum_s w^s f^s$\n(Eq. 1)"
    else:
        fuse_text = "g = mean or\nmax over s"
    box(10.1, middle - 0.55, 1.3, 1.1, fuse_text, face="#e6f2e6", weight="bold")
    axes.set_title(title or "Attention to scale: one network at every scale, weights per pixel", fontsize=11)
    return figure


# ----------------------------------------------------------------------------- one prediction, side by side


def side_by_side_figure(view: PredictionView, prediction, classes, title: str = ""):
    """The page's side-by-side view as one matplotlib Figure (no pyplot, so it is safe in threads).

    Rows: the input per scale, its labels, the chosen class's map, its attention weights
    (for attention and average; the effective weights for hierarchical), then the fused labels, the dominant scale and
    the entropy. One column per scale. Colour bars use the same fixed ranges as the page.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    scale_count = len(view.scales)
    columns = max(scale_count, 3)
    rows = [("input", "input at scale"), ("labels", "labels (argmax of $f^s$)")]
    kind = "P(class)" if view.score_kind == "probability" else "score $f^s_c$"
    class_name = classes[view.class_index]
    rows.append(("class_map", f"{class_name}: {kind}"))
    fusing = scale_count > 1  # one scale has nothing to fuse: its weight map is all 1, its entropy all 0
    if fusing and any(column.attention is not None for column in view.scales):
        # Hierarchical attention has no softmax: its row holds the chain's effective weights, products of gates.
        weight_name = weighing_merge([prediction.merge]).weights
        rows.append(("attention", weight_name))
    height, width = view.size
    panel = 3.0  # inches per image column
    title_room, top_room, bottom_room, right_room = 0.3, (0.7 if title else 0.25), 0.65, 1.9
    row_height = panel * 0.96 * height / width + title_room
    figure_height = top_room + row_height * (len(rows) + 1) + bottom_room
    figure = Figure(figsize=(panel * columns + right_room, figure_height), dpi=100)
    grid = figure.add_gridspec(
        len(rows) + 1,
        columns,
        hspace=title_room / row_height * 1.2,
        wspace=0.04,
        left=0.1 / (panel * columns + right_room),
        right=panel * columns / (panel * columns + right_room),
        top=1 - top_room / figure_height,
        bottom=bottom_room / figure_height,
    )
    if title:
        figure.suptitle(title, fontsize=11, y=1 - 0.2 / figure_height, va="top")

    for r, (field, name) in enumerate(rows):
        for c, column in enumerate(view.scales):
            axes = figure.add_subplot(grid[r, c])
            axes.imshow(getattr(column, field), interpolation="nearest")
            text = f"scale {scale_label(column.scale)}: {name}"
            if field == "input":
                text += f" ({column.input_size[1]}x{column.input_size[0]})"
            axes.set_title(text, fontsize=8)
            axes.axis("off")
        if field in ("class_map", "attention"):
            cmap, low_high = (SCORE_CMAP, view.score_range) if field == "class_map" else (ATTENTION_CMAP, (0.0, 1.0))
            bar_axes = figure.add_axes(_bar_slot(grid, r, columns))
            figure.colorbar(ScalarMappable(Normalize(*low_high), cmap), cax=bar_axes)
            bar_axes.tick_params(labelsize=7)
        if field == "labels":
            figure.legend(
                handles=[Patch(color=unit_rgb(s.colour), label=s.name) for s in legend_shares(view.shares)],
                loc="upper left",
                bbox_to_anchor=_legend_anchor(grid, r, columns),
                fontsize=7,
                frameon=False,
            )

    last = len(rows)
    panels = [("fused labels", view.fused_labels)]
    if fusing and view.dominant is not None:
        panels.append(("dominant scale", view.dominant))
    if fusing and view.entropy is not None:
        panels.append(("attention entropy, normalised", view.entropy))
    if not fusing:
        note = figure.add_subplot(grid[last, 1:])
        note.axis("off")
        note.text(0.02, 0.5, textwrap.fill(SINGLE_SCALE_NOTE, 48), fontsize=9, va="center", ha="left", wrap=True)
    for c, (name, image) in enumerate(panels[:columns]):
        axes = figure.add_subplot(grid[last, c])
        axes.imshow(image, interpolation="nearest")
        axes.set_title(f"{prediction.merge}: {name}", fontsize=8)
        axes.axis("off")
        if image is view.entropy:
            bar_axes = axes.inset_axes([0.1, -0.07, 0.8, 0.03])
            figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), ENTROPY_CMAP), cax=bar_axes, orientation="horizontal")
            bar_axes.tick_params(labelsize=7)
    legend = [
        Patch(color=unit_rgb(s.colour), label=f"{s.name} {format_percent(s.share)}") for s in legend_shares(view.shares)
    ]
    if fusing and view.dominant is not None:
        legend += [
            Patch(color=unit_rgb(scale_colour(k)), label=f"dominant: scale {scale_label(s.scale)}")
            for k, s in enumerate(view.scales)
        ]
    figure.legend(
        handles=legend, loc="upper left", bbox_to_anchor=_legend_anchor(grid, last, columns), fontsize=7, frameon=False
    )
    return figure


def _legend_anchor(grid, row: int, columns: int) -> tuple[float, float]:
    box = grid[row, columns - 1].get_position(grid.figure)
    return box.x1 + 0.005, box.y1


def _bar_slot(grid, row: int, columns: int) -> list[float]:
    """[left, bottom, width, height] in figure coordinates just right of a grid row."""
    box = grid[row, columns - 1].get_position(grid.figure)
    return [box.x1 + 0.01, box.y0, 0.012, box.height]


# ----------------------------------------------------------------------------- helpers


def _require_attention(diagnostics) -> None:
    if not diagnostics.has_attention:
        raise ValueError(
            f"these diagnostics have no attention weights (score the {ATTENTION!r} merge with a model that has a head)"
        )


def _grouped_bars(
    groups: Sequence[str],
    values: np.ndarray,
    series: Sequence[str],
    colours,
    *,
    ylabel: str,
    title: str,
    reference: float | None = None,
    value_labels: bool = False,
) -> Figure:
    """values (G, K): G groups of K bars."""
    values = np.asarray(values, dtype=float).reshape(len(groups), len(series))
    # Wider with more bars; up to 8 groups no wider than the other figures (7 in),
    # so that side by side they share a text size.
    natural = 1.0 + 0.35 * len(groups) * (len(series) + 1)
    figure = Figure(figsize=(max(5.0, natural if len(groups) > 8 else min(7.5, natural)), 3.8), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for k, (name, colour) in enumerate(zip(series, colours)):
        bars = axes.bar(positions + (k - (len(series) - 1) / 2) * width, values[:, k], width, label=name, color=colour)
        if value_labels:
            axes.bar_label(bars, labels=[f"{v:.3f}" for v in values[:, k]], padding=2, fontsize="x-small")
    if reference is not None:
        axes.axhline(reference, color="0.5", linestyle="--", linewidth=1, label=f"1/S = {reference:.2f}")
    axes.set_xticks(positions, list(groups))
    top = float(np.nanmax(values)) if values.size and not np.all(np.isnan(values)) else 1.0
    upper = max(1.0, top) if not math.isnan(top) else 1.0
    # Headroom above the tallest bar and its label, where the legend goes: scores near 1
    # (pixel accuracy) would otherwise sit under the legend box.
    axes.set_ylim(0, upper * 1.25)
    if upper == 1.0:
        axes.set_yticks(np.linspace(0.0, 1.0, 6))  # no tick above 1 on a 0-1 quantity
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="upper right", ncols=min(4, len(series) + (reference is not None)))
    return figure


def _short(name: str, limit: int = 18) -> str:
    """A file name as a tick label: shortened, and its "$" escaped
    (matplotlib would read "$...$" as maths, and fail on bad maths)."""
    name = name if len(name) <= limit else name[: limit - 1] + "…"
    return name.replace("$", r"\$")


# ----------------------------------------------------------------------------- what each scale decides


def scale_ablation_figure(ablation, image: np.ndarray, palette, title: str = "") -> Figure:
    """Leave one scale out: the labels with every scale and without each one (top), the decision map and the
    pixels each scale decides, with their share of the image (bottom)."""
    count = len(ablation.scales)
    columns = count + 1
    height, width = image.shape[:2]
    panel = 3.0
    figure = Figure(figsize=(panel * columns, 2 * panel * height / width + 1.4), layout="constrained")
    grid = figure.add_gridspec(2, columns)

    def show(r, c, array, caption):
        axes = figure.add_subplot(grid[r, c])
        axes.imshow(array, interpolation="nearest")
        axes.set_title(caption, fontsize="small")
        axes.set_axis_off()

    show(0, 0, colorize_labels(ablation.labels, palette), f"{ablation.merge}, every scale")
    show(1, 0, decision_map_image(ablation.decision_map, image), f"decided by one scale: {ablation.any_share:.1%}")
    for k, scale in enumerate(ablation.scales):
        show(0, k + 1, colorize_labels(ablation.without[k], palette), f"without {_scale_name(scale)}")
        caption = f"{_scale_name(scale)} decides {ablation.shares[k]:.1%}"
        show(1, k + 1, decided_image(ablation.changed[k], image, k), caption)
    figure.suptitle(title or f"Leave one scale out ({ablation.merge}, {format_scale_set(ablation.scales)})")
    return figure


def decided_by_extent_figure(diagnostics, title: str | None = None) -> Figure:
    """Leave one scale out over many images: the share of object pixels each scale decides, per size bin
    (grouped bars, empty bins left out), with the mIoU without each scale in the title."""
    edges = diagnostics.bin_edges
    present = [b for b in range(len(edges) - 1) if diagnostics.objects_per_bin[b] > 0]
    groups = [f"{edges[b]:g}-{edges[b + 1]:g}" for b in present]
    values = diagnostics.decided_by_extent[present] if present else np.zeros((0, len(diagnostics.scales)))
    without = ", ".join(f"{scale_label(s)}: {m:.3f}" for s, m in zip(diagnostics.scales, diagnostics.miou_without))
    figure = _grouped_bars(
        groups,
        values,
        [_scale_name(s) for s in diagnostics.scales],
        _scale_colours(len(diagnostics.scales)),
        ylabel="share of object pixels it decides",
        title=title
        or f"What each scale decides ({diagnostics.ablation_merge} without it), by object extent (px)\n"
        f"mIoU without each scale: {without}",
    )
    axes = figure.axes[0]
    top = float(np.nanmax(values)) if values.size and not np.all(np.isnan(values)) else 1.0
    axes.set_ylim(0, max(0.05, top * 1.5))
    axes.yaxis.set_major_locator(AutoLocator())  # shares well below 1: not the 0-1 ticks of the bars' default
    return figure
