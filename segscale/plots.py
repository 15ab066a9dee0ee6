"""Figures of the diagnostics (:mod:`segscale.diagnostics`): pure functions, data in, matplotlib Figure out.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot's
global state, so a Streamlit page (``st.pyplot(figure)``) and the command line can build them
from any thread, and nothing leaks between calls. :func:`figure_png` turns one into PNG bytes.

Colours: every figure gives scale s the same colour (:func:`scale_colours`), so a reader
who learns "blue is the finest scale" on one plot can read the next.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

__all__ = [
    "colorize_labels",
    "diagnostics_figures",
    "dominant_share_figure",
    "figure_png",
    "image_weights_figure",
    "merge_comparison_figure",
    "merge_scores_figure",
    "scale_colours",
    "weight_by_class_figure",
    "weight_by_extent_figure",
]

MERGE_COLOURS = {"attention": "#4c72b0", "average": "#dd8452", "max": "#55a868"}
VOID_COLOUR = (255, 255, 255)


def scale_colours(count: int) -> list[tuple[float, float, float, float]]:
    """One colour per scale, in the order of the S axis (viridis, finest scale first when listed first)."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.1 + 0.75 * k / max(1, count - 1)) for k in range(count)]


def _scale_name(scale: float) -> str:
    return f"s = {scale:g}"


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def weight_by_extent_figure(diagnostics, show_objects: bool = True, zoom: bool = False, title: str | None = None) -> Figure:
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
    colours = scale_colours(len(scales))
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
    axes.axhline(1 / len(scales), color="0.5", linestyle="--", linewidth=1, label=f"1/S = {1 / len(scales):.2f} (average)")
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
    axes.set_ylabel("mean attention weight w^s")
    axes.grid(True, which="major", alpha=0.3)
    counts = ", ".join(str(int(n)) for n in diagnostics.objects_per_bin)
    axes.set_title(title or f"Which scale the attention trusts, by object size\n({len(diagnostics.objects)} objects; per bin: {counts})")
    axes.legend(loc="best", fontsize="small")
    return figure


def weight_by_class_figure(diagnostics, title: str | None = None) -> Figure:
    """Mean attention weight of each scale per class (grouped bars; classes without objects left out)."""
    _require_attention(diagnostics)
    present = [c for c in range(len(diagnostics.classes)) if diagnostics.objects_per_class[c] > 0]
    labels = [f"{diagnostics.classes[c]}\n({int(diagnostics.objects_per_class[c])})" for c in present]
    values = diagnostics.weight_by_class[present] if present else np.zeros((0, len(diagnostics.scales)))
    figure = _grouped_bars(
        labels, values, [_scale_name(s) for s in diagnostics.scales], scale_colours(len(diagnostics.scales)),
        ylabel="mean attention weight w^s", title=title or "Mean attention weight per scale, by class (objects)",
        reference=1 / len(diagnostics.scales),
    )  # fmt: skip
    return figure


def image_weights_figure(image_set, title: str | None = None) -> Figure:
    """Mean attention weight of each scale per uploaded image (grouped bars)."""
    labels = [_short(r.name) for r in image_set.images]
    values = np.array([r.mean_weights for r in image_set.images])
    return _grouped_bars(
        labels, values, [_scale_name(s) for s in image_set.scales], scale_colours(len(image_set.scales)),
        ylabel="mean attention weight w^s", title=title or "Mean attention weight per scale, by image",
        reference=1 / len(image_set.scales),
    )  # fmt: skip


def dominant_share_figure(scales: Sequence[float], shares: Sequence[float], title: str | None = None) -> Figure:
    """Share of pixels on which each scale has the largest attention weight (bars, one per scale)."""
    shares = np.asarray(shares, dtype=float)
    figure = Figure(figsize=(5.0, 3.6), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(scales))
    bars = axes.bar(positions, shares, color=scale_colours(len(scales)))
    axes.bar_label(bars, labels=[f"{v:.0%}" for v in shares], padding=2, fontsize="small")
    axes.set_xticks(positions, [_scale_name(s) for s in scales])
    axes.set_ylim(0, max(1.0, float(shares.max(initial=0)) * 1.1))
    axes.set_ylabel("share of pixels")
    axes.set_title(title or "Pixels each scale dominates (largest w^s)")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def merge_scores_figure(methods: Sequence[str], mious: Sequence[float], pixel_accuracies: Sequence[float] | None = None, title: str | None = None) -> Figure:
    """mIoU (and pixel accuracy, if given) per merge method (bars)."""
    rows = [list(mious)] + ([list(pixel_accuracies)] if pixel_accuracies is not None else [])
    names = ["mIoU"] + (["pixel accuracy"] if pixel_accuracies is not None else [])
    values = np.array(rows, dtype=float).T  # (M, metrics)
    figure = _grouped_bars(
        list(methods), values, names, ["#4c72b0", "#c9d3e6"][: len(names)],
        ylabel="score", title=title or "mIoU per merge method", value_labels=True,
    )  # fmt: skip
    axes = figure.axes[0]
    for tick, method in zip(axes.get_xticklabels(), methods):
        tick.set_color(MERGE_COLOURS.get(method, "black"))
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
    disagreement = np.where(comparison.disagreement[..., None], np.array([230, 30, 30], np.uint8), (image // 3 + 140).astype(np.uint8))
    show(0, columns - 1, disagreement, f"merges disagree ({comparison.disagreement_share:.1%} of pixels)")
    if comparison.has_ground_truth:
        show(1, 0, colorize_labels(comparison.ground_truth, palette), "ground truth")
        ignore = comparison.ground_truth == 255
        for k, result in enumerate(comparison.results):
            errors = np.full((height, width, 3), 255, np.uint8)
            errors[result.errors] = (220, 30, 30)
            errors[ignore] = (170, 170, 170)
            wrong = result.errors.sum() / max(1, (~ignore).sum())
            show(1, k + 1, errors, f"{result.method} errors ({wrong:.1%})")
        figure.add_subplot(grid[1, columns - 1]).set_axis_off()
    if title:
        figure.suptitle(title)
    return figure


def colorize_labels(labels: np.ndarray, palette) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours; indices outside the palette (255, "ignore") white."""
    table = np.array(list(palette) + [VOID_COLOUR] * (256 - len(palette)), dtype=np.uint8)
    return table[np.clip(np.asarray(labels), 0, 255).astype(np.uint8)]


# ----------------------------------------------------------------------------- helpers


def _require_attention(diagnostics) -> None:
    if not diagnostics.has_attention:
        raise ValueError("these diagnostics have no attention weights (score the 'attention' merge with a model that has a head)")


def _grouped_bars(
    groups: Sequence[str], values: np.ndarray, series: Sequence[str], colours, *, ylabel: str, title: str,
    reference: float | None = None, value_labels: bool = False,
) -> Figure:  # fmt: skip
    """values (G, K): G groups of K bars."""
    values = np.asarray(values, dtype=float).reshape(len(groups), len(series))
    figure = Figure(figsize=(max(5.0, 1.0 + 0.35 * len(groups) * (len(series) + 1)), 3.8), layout="constrained")
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
    axes.set_ylim(0, max(1.0, top * 1.12) if not math.isnan(top) else 1.0)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="upper right", ncols=min(4, len(series) + (reference is not None)))
    return figure


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
