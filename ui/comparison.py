"""The Merge comparison page's section: attention (or hierarchical
attention), average and max pooling from one forward pass.

Widget key: ``compare_download``. The numbers come from :func:`segscale.diagnostics.compare_merges`,
the pictures from :mod:`segscale.plots`, as in ``python -m segscale compare``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from segscale import diagnostics as diag
from segscale import plots
from segscale import visualize as viz
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.formatting import format_percent, format_scale_set, scale_label
from segscale.merges import ATTENTION_HEAD, MERGES, merges_with
from segscale.outputs import output_stem
from segscale.palette import SCALE_COLOURS, colorize_labels
from segscale.predictor import Prediction
from ui import limits, widgets
from ui.chosen_image import ImageInput
from ui.messages import show_error
from ui.model_controls import not_offered_note
from ui.model_loading import LoadedModel

COMPARE_WIDTH = 320  # px each picture is resampled to (nearest), so every column shows the same size


def page_caption(model: LoadedModel | None) -> str:
    """What the page compares: the merges the checkpoint offers, named in words, all from the same score maps."""
    merges = merges_with([ATTENTION_HEAD]) if model is None else model.predictor.offered_merges
    return f"The same score maps fˢ fused {len(merges)} ways: " + ", ".join(MERGES[m].phrase for m in merges) + "."


@st.cache_data(max_entries=limits.VIEW_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _comparison(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    with_truth: bool,
    _prediction: Prediction,
    _truth,
    _classes: tuple[str, ...],
) -> diag.MergeComparison:
    return diag.compare_merges(_prediction, _truth if with_truth else None, _classes)


def _shown(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return viz.resize_rgb(array, size, nearest=True)


def deciding_row(prediction: Prediction, size: tuple[int, int]) -> None:
    """Max pooling's deciding scale beside the merges: which scale's score won for the predicted class."""
    if len(prediction.scales) < 2:
        return
    deciding = prediction.max_deciding_scale()
    shares = diag.index_shares(deciding, len(prediction.scales))
    picture = colorize_labels(diag.deciding_scale_at(deciding, size), SCALE_COLOURS)
    picture_column, key_column, text_column = st.columns([1, 1, 2])
    with picture_column:
        widgets.image(picture, "Max pooling's deciding scale")
    with key_column:
        widgets.colour_key(widgets.scale_swatches(prediction.scales), alt="scale colours")
        st.caption(" · ".join(f"{scale_label(s)}: {format_percent(v)}" for s, v in zip(prediction.scales, shares)))
    with text_column:
        st.markdown(f"**Max pooling: deciding scale**  \n{diag.MAX_DECIDING_NOTE}")


def comparison_section(model: LoadedModel, image: ImageInput, prediction: Prediction) -> None:
    """Attention, average and max pooling from one pass: labels side by side, disagreement, IoU and errors."""
    metadata = model.metadata
    classes = tuple(metadata.classes)
    with_truth = image.ground_truth is not None and classes == SCALESHAPES_CLASSES
    try:
        comparison = _comparison(
            model.key, image.key, prediction.scales, with_truth, prediction, image.ground_truth, classes
        )
    except ValueError as error:
        show_error(str(error), "The merges cannot be compared on this image.")
        return
    size = viz.display_size(tuple(prediction.labels.shape), COMPARE_WIDTH)
    columns_spec = [1.0] * (len(comparison.results) + 2)
    palette = metadata.palette
    disagree = comparison.disagreement_share

    st.subheader("Labels of each merge")
    columns = st.columns(columns_spec, gap="small")
    with columns[0]:
        widgets.image(_shown(prediction.image, size), "Input (scale 1)", photo=True)
    for column, result in zip(columns[1:], comparison.results):
        with column:
            score = "" if result.scores is None else f", mIoU {100 * result.scores.miou:.1f}%"
            widgets.image(
                _shown(colorize_labels(result.labels, palette), size), f"Fused labels: {result.method}{score}"
            )
    with columns[-1]:
        widgets.image(
            _shown(viz.disagreement_image(comparison.disagreement, prediction.image), size),
            f"Merges disagree: {100 * disagree:.1f}% of pixels (red)",
        )
    if with_truth:
        columns = st.columns(columns_spec, gap="small")
        with columns[0]:
            widgets.image(_shown(colorize_labels(comparison.ground_truth, palette), size), "Ground truth (ScaleShapes)")
        for column, result in zip(columns[1:], comparison.results):
            with column:
                widgets.image(
                    _shown(viz.error_image(result.errors, comparison.ground_truth), size),
                    f"Errors: {result.method}, {int(result.errors.sum())} px wrong (red)",
                )
        with columns[-1]:
            widgets.colour_key(
                widgets.swatches(
                    ("wrong", "right", "ignored (void)"), (viz.WRONG_COLOUR, viz.RIGHT_COLOUR, viz.IGNORED_COLOUR)
                ),
                alt="error colours",
            )
    deciding_row(prediction, size)
    not_offered_note(model)
    legend_column, text_column = st.columns([1, 2])
    with legend_column:
        widgets.colour_key(widgets.class_swatches(classes, palette), alt="class colours")
    with text_column:
        st.markdown(
            f"All merges come from **one forward pass**: the same score maps fˢ, fused {len(comparison.results)} ways. "
            f"They disagree on **{int(comparison.disagreement.sum())}** of "
            f"{comparison.disagreement.size} pixels ({100 * disagree:.2f}%). "
            + (
                ""
                if comparison.has_ground_truth
                else "No ground truth for this image: pick a ScaleShapes sample (gallery or random) "
                "with a ScaleShapes checkpoint to score the merges."
            )
        )
    st.subheader("Scores" if with_truth else "Agreement")
    if with_truth:
        scores = score_rows(comparison.summary_rows())
        widgets.table(scores, height=widgets.whole_table_height(len(scores)))  # every class's IoU in view
        st.caption(
            "mIoU and pixel accuracy on this image; *right where merges disagree*: of the pixels where the merges "
            "give different labels, the share this merge gets right. IoU per class, – where a class is neither present "
            "nor predicted."
        )
    widgets.table(
        [
            {"merges": f"{a} · {b}", "pixels with the same label": widgets.percent(share)}
            for a, b, share in comparison.agreement
        ]
    )
    title = f"{image.name} · {metadata.name} · merges over {format_scale_set(prediction.scales)}"
    st.download_button(
        "Comparison figure (PNG)",
        lambda: plots.figure_png(plots.merge_comparison_figure(comparison, prediction.image, palette, title)),
        output_stem(image.name, "merges", prediction.scales) + ".png",
        "image/png",
        key="compare_download",
        icon=":material/download:",
        on_click="ignore",
    )


def score_rows(summary_rows: list[dict]) -> list[dict]:
    """The merges' scores with one column per merge and one row per measure.

    A row per merge needs a column per class: with seven or 21 classes the table ran wider than the
    page and hid the last classes' IoU behind a scroll bar nobody saw. A column per merge fits.
    """
    merges = [row["merge"] for row in summary_rows]
    measures = [key for key in summary_rows[0] if key != "merge"] if summary_rows else []
    rows = []
    for measure in measures:
        row = {"measure": measure}
        for merge, summary in zip(merges, summary_rows):
            value = summary.get(measure)
            row[merge] = str(value) if measure == "wrong pixels" else widgets.percent(value)
        rows.append(row)
    return rows
