"""The main view's sections: per-scale maps, the fused result, downloads, device and timings
(``pages/0_Main_view.py``).

Widget keys: ``score_class``, ``score_kind``, ``overlay_alpha``, ``overlay_background``, ``download_labels``,
``download_attention``, ``download_maps``, ``download_figure``. The pictures come from
:mod:`segscale.visualize`, the same functions ``python -m segscale predict`` uses.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from segscale import visualize as viz
from segscale.ablation_view import AblationView, build_ablation_view
from segscale.checkpoint import CheckpointMetadata
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.data.scaleshapes import PALETTE as SCALESHAPES_PALETTE
from segscale.diagnostics import (
    ABLATION_DEFINITION,
    CONFIDENCE_DEFINITION,
    EFFECTIVE_WEIGHTS_NOTE,
    MAX_DECIDING_NOTE,
    SINGLE_SCALE_ABLATION,
)
from segscale.formatting import format_percent, format_scale_set, scale_label
from segscale.merges import ATTENTION, AVERAGE, HIERARCHICAL, MAX
from segscale.metrics import segmentation_scores
from segscale.outputs import APP_DOWNLOADS, OUTPUT_KINDS, OutputOptions, output_name
from segscale.palette import ATTENTION_CMAP, ENTROPY_CMAP, SCORE_CMAP, colorize_labels
from segscale.predictor import Prediction
from ui import limits, widgets
from ui.chosen_image import ImageInput
from ui.messages import plain
from ui.model_loading import LoadedModel

# Beside more maps than this, the key's column (a fifth of the page at four maps) is narrower than the key at
# 1,280 px, and a key drawn smaller than its KEY_WIDTH shrinks its text with it: it goes above the maps instead.
MAX_MAPS_WITH_KEY_BESIDE = 3
MAX_MAPS_PER_LINE = 6  # more scales wrap onto another line (ui.model_controls caps a custom set at MAX_CUSTOM_SCALES)


@st.cache_data(max_entries=limits.VIEW_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def build_view(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    merge: str,
    class_index: int,
    score_kind: str,
    _prediction: Prediction,
    _metadata: CheckpointMetadata,
) -> viz.PredictionView:
    """:func:`segscale.visualize.build_view`, cached on the prediction's own key and the display choices."""
    return viz.build_view(_prediction, _metadata.classes, _metadata.palette, class_index, score_kind)


def class_controls(
    metadata: CheckpointMetadata, labels: np.ndarray, image_identity: str, key_prefix: str = ""
) -> tuple[int, str]:
    """Selectors for the class whose score map is shown and how (probability or raw score).

    ``image_identity`` names the image and model the labels come from (their cache keys). A new
    one sets the class box to that image's default class before the box is drawn. Passing the
    default as the box's ``index`` is not enough: once the key is in the session state, Streamlit
    keeps the old value on the server (the maps follow it) while the browser shows the new
    ``index``, so box and maps named different classes after every new image.
    """
    class_key, owner_key = f"{key_prefix}score_class", f"{key_prefix}score_class_of"
    if st.session_state.get(owner_key) != image_identity or class_key not in st.session_state:
        st.session_state[class_key] = viz.default_class(labels, len(metadata.classes))
        st.session_state[owner_key] = image_identity
    class_index = st.selectbox(
        "Class shown in the score maps",
        list(range(len(metadata.classes))),
        key=class_key,
        format_func=lambda k: metadata.classes[k],
        help=(
            "Its score at every scale is drawn as a heat map; a new "
            "image starts on its most frequent predicted object class."
        ),
    )
    score_kind = st.radio(
        "Show the class as",
        viz.SCORE_KINDS,
        key=f"{key_prefix}score_kind",
        horizontal=True,
        format_func=lambda k: "probability (0-1)" if k == "probability" else "raw score fˢ (shared range)",
    )
    return int(class_index), str(score_kind)


def per_scale_section(
    view: viz.PredictionView,
    prediction: Prediction,
    metadata: CheckpointMetadata,
    decides: AblationView | None = None,
) -> None:
    """One column per scale, one row per quantity, each row with its colour bar on the right.

    With ``decides`` (:func:`build_decides_view`), max pooling's weight row is its deciding scale, and
    two rows follow the weights: the labels without each scale and each scale's confidence.

    More than :data:`MAX_MAPS_PER_LINE` scales wrap onto several lines of equal length (8 scales:
    two lines of 4), so the maps stay large enough to read and their captions never wrap a
    character per line.
    """
    count = len(view.scales)
    lines = math.ceil(count / MAX_MAPS_PER_LINE)
    per_line = math.ceil(count / lines)
    spec = [1.0] * per_line + [1.0]
    class_name = metadata.classes[view.class_index]
    h, w = view.size

    key_beside = per_line <= MAX_MAPS_WITH_KEY_BESIDE

    def row(
        title: str, explanation: str, images: list[tuple[np.ndarray, str, bool]], key_image: np.ndarray | None
    ) -> None:
        if not key_beside:  # a column beside four or more maps is too narrow for the key: above them instead
            text_column, key_column = st.columns([2, 1], gap="small")
            with text_column:
                st.markdown(f"**{title}**  \n{explanation}")
            if key_image is not None:
                with key_column:
                    widgets.colour_key(key_image)
        for start in range(0, len(images), per_line):
            columns = st.columns(spec if key_beside else [1.0] * per_line, gap="small")
            for column, (array, caption, photo) in zip(columns, images[start : start + per_line]):
                with column:
                    widgets.image(array, caption, photo)
            if start == 0 and key_beside:  # the title and key once, beside the first line
                with columns[-1]:
                    st.markdown(f"**{title}**  \n{explanation}")
                    if key_image is not None:
                        widgets.colour_key(key_image)

    row(
        "Input per scale",
        (
            "The image resized as the network sees it at each scale, "
            f"all shown at {w}x{h}: coarser scales carry less detail."
        ),
        [
            (c.input, f"Scale {scale_label(c.scale)} · input resized to {c.input_size[1]}x{c.input_size[0]}", True)
            for c in view.scales
        ],
        None,
    )
    row(
        "Score maps fˢ: labels",
        "Argmax over classes of each scale's score map, in the checkpoint's palette.",
        [(c.labels, f"Scale {scale_label(c.scale)} · labels of fˢ", False) for c in view.scales],
        widgets.class_swatches(metadata.classes, metadata.palette),
    )
    if view.score_kind == "probability":
        title, bar_label, note = (
            f"Score maps fˢ: {class_name}",
            f"P({class_name}) per scale",
            "softmax over classes, 0 to 1",
        )
    else:
        low, high = view.score_range
        title, bar_label, note = (
            f"Score maps fˢ: {class_name}",
            f"raw score of {class_name}",
            f"raw fˢ, one range for all scales ({low:.1f} to {high:.1f})",
        )
    row(
        title,
        f"The {class_name} class at each scale: {note}.",
        [
            (
                c.class_map,
                (
                    f"Scale {scale_label(c.scale)} · {class_name} "
                    f"{'probability' if view.score_kind == 'probability' else 'score'}"
                ),
                False,
            )
            for c in view.scales
        ],
        widgets.colorbar(*view.score_range, SCORE_CMAP, bar_label),
    )
    if prediction.merge == MAX and decides is not None and count > 1:
        row(
            "Max pooling: deciding scale",
            MAX_DECIDING_NOTE,
            [
                (
                    array,
                    f"Scale {scale_label(c.scale)} · taken for the predicted class ({format_percent(share)})",
                    False,
                )
                for c, array, share in zip(view.scales, decides.max_deciding, decides.max_shares)
            ],
            widgets.colorbar(0.0, 1.0, ATTENTION_CMAP, "1: this scale's score won · 0: another's"),
        )
    elif prediction.merge == MAX:
        st.caption("Max pooling picks a scale per pixel *and class*, so it has no weight map wˢ shared by the classes.")
    elif count == 1:
        st.markdown(f"**Attention weights wˢ**  \n{viz.SINGLE_SCALE_NOTE}")
    else:
        title, explanation = weights_row_text(prediction.merge, count)
        row(
            title,
            explanation,
            [
                (c.attention, f"Scale {scale_label(c.scale)} · weight wˢ ({prediction.merge})", False)
                for c in view.scales
            ],
            widgets.colorbar(0.0, 1.0, ATTENTION_CMAP, "weight wˢ (same scale for all)"),
        )
        if prediction.merge == HIERARCHICAL:
            st.caption(EFFECTIVE_WEIGHTS_NOTE)
    if decides is None:
        return
    if decides.labels_without is None:  # the maps, not the pictures (drawn when read)
        st.markdown(f"**Without this scale**  \n{SINGLE_SCALE_ABLATION}")
    else:
        row(
            "Without this scale",
            f"{ABLATION_DEFINITION} Labels in full colour where they change.",
            [
                (array, f"Scale {scale_label(c.scale)} · left out: {format_percent(share)} of labels change", False)
                for c, array, share in zip(view.scales, decides.without, decides.shares)
            ],
            None,
        )
    row(
        "Confidence per scale",
        CONFIDENCE_DEFINITION.split(";")[0] + ".",
        [
            (array, f"Scale {scale_label(c.scale)} · confidence: its top class's probability, 0-1", False)
            for c, array in zip(view.scales, decides.confidence)
        ],
        widgets.colorbar(0.0, 1.0, SCORE_CMAP, "top-class probability of the scale"),
    )


@st.cache_data(max_entries=limits.VIEW_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def build_decides_view(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    merge: str,
    _prediction: Prediction,
    _metadata: CheckpointMetadata,
) -> AblationView:
    """:func:`segscale.ablation_view.build_ablation_view`, cached on the prediction's own key."""
    return build_ablation_view(_prediction, _metadata.palette)


def decides_section(decides: AblationView, prediction: Prediction) -> None:
    """What each scale decides, over the image: the decision map and, where the scales disagree, the most
    confident one; each with its shares, in the scales' colours."""
    if decides.decision_map is None:
        st.caption(f"{SINGLE_SCALE_ABLATION} Pick two or more scales to see what each one decides.")
        return
    spec = [1.0, 1.0, 1.0, 1.3]  # the keys' column: KEY_WIDTH wide at 1,280 px, as the fused section's
    columns = st.columns(spec, gap="small")
    with columns[0]:
        widgets.image(
            decides.decision,
            f"Decided by one scale ({prediction.merge}): {format_percent(decides.any_share)} of pixels",
        )
    with columns[1]:
        widgets.image(
            decides.most_confident,
            f"Most confident scale where the scales disagree ({format_percent(decides.disagree_share)})",
        )
    with columns[2]:
        widgets.image(decides.max_deciding_map, "Max pooling's deciding scale")
    with columns[3]:
        lines = ["**What each scale decides**"]
        lines.append(
            "Left: the pixels whose label changes when that scale is left out, in its colour "
            f"(black: leaving out any of several changes it, {format_percent(decides.several_share)})."
        )
        lines.append(
            "Middle: where the scales' own labels differ, the scale most sure of its own (top-class probability). "
            "Right: the scale max pooling takes for the predicted class."
        )
        st.markdown("  \n".join(lines))
        widgets.colour_key(widgets.scale_swatches(prediction.scales))
    rows = []  # below the maps, across the page: in the keys' column its last columns were cut off at 1,280 px
    for k, scale in enumerate(prediction.scales):
        row = {"scale": scale_label(scale)}
        row["changes without it"] = format_percent(decides.shares[k])
        row["decided by it alone"] = format_percent(decides.sole_shares[k])
        row["most confident"] = format_percent(decides.most_confident_shares[k])
        row["max takes it"] = format_percent(decides.max_shares[k])
        rows.append(row)
    widgets.table(rows)


def weights_row_text(merge: str, count: int) -> tuple[str, str]:
    """(title, explanation) of the weights row: Eq. 2's softmax,
    average pooling's 1/S, or the gate chain's effective weights."""
    if merge == ATTENTION:
        return (
            "Attention weights wˢ",
            "Softmax over scales of the attention logits (Eq. 2); at every pixel the weights sum to 1.",
        )
    if merge == HIERARCHICAL:
        return (
            "Effective weights wˢ",
            "Products of the sigmoid gates of the hierarchical chain, not a softmax; they sum to 1 (note below).",
        )
    return "Attention weights wˢ", f"Average pooling: every scale weighs 1/{count} everywhere."


def fused_section(
    view: viz.PredictionView,
    prediction: Prediction,
    metadata: CheckpointMetadata,
    image: ImageInput,
    key_prefix: str = "",
) -> None:
    """Fused labels, overlay with an opacity slider, ground truth (samples), legend; dominant scale and entropy."""
    merge = prediction.merge
    spec = [1.0, 1.0, 1.0, 1.3]  # the keys' column: KEY_WIDTH wide at 1,280 px (a quarter was 193 px)
    # The slider sits above the row, so that the three images of the row stay aligned.
    slider_column, background_column, _ = st.columns([1.0, 1.0, 1.0])
    with slider_column:
        alpha = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key=f"{key_prefix}overlay_alpha")
    background = metadata.classes[0]
    with background_column:
        paint_background = st.toggle(
            f"Paint {background} too",
            False,
            key=f"{key_prefix}overlay_background",
            help=(
                f"Off: the overlay leaves the {background} class (class 0) "
                "clear, so the photo is not dimmed where nothing was found."
            ),
        )
    clear = None if paint_background else view.fused_label_indices == 0
    columns = st.columns(spec, gap="small")
    with columns[0]:
        widgets.image(view.fused_labels, f"Fused labels ({merge})")
    with columns[1]:
        shown = "" if paint_background else f", {background} clear"
        widgets.image(
            viz.overlay(view.image, view.fused_labels, alpha, clear),
            f"Fused labels on the input, opacity {alpha:.2f}{shown}",
            photo=True,
        )
    with columns[2]:
        if image.ground_truth is not None:
            # The truth is ScaleShapes' class indices: drawn in its own palette whatever the model's classes are.
            truth = viz.resize_rgb(colorize_labels(image.ground_truth, SCALESHAPES_PALETTE), view.size, nearest=True)
            widgets.image(truth, "Ground truth (ScaleShapes)")
            if tuple(metadata.classes) == SCALESHAPES_CLASSES:
                st.caption(agreement_caption(image.ground_truth, prediction.labels, len(metadata.classes)))
        else:
            widgets.image(view.image, input_caption(image), photo=True)
    with columns[3]:
        st.markdown("**Fused labels**  \nClasses and their share of the pixels:")
        shown = [s for s in view.shares if s.share > 0] or list(view.shares)
        text = "; ".join(f"{s.name} {100 * s.share:.1f}%" for s in shown)
        widgets.colour_key(
            widgets.swatches(tuple(f"{s.name}  {100 * s.share:.1f}%" for s in shown), tuple(s.colour for s in shown)),
            alt=text,
        )
        absent = [s.name for s in view.shares if s.share == 0]
        if absent and len(shown) < len(view.shares):
            st.caption(f"Not predicted: {plain(', '.join(absent))}")

    if len(view.scales) == 1:
        st.caption(f"Dominant scale and attention entropy: none. {viz.SINGLE_SCALE_NOTE}")
        return
    decides = DECIDING_SCALE[merge]
    columns = st.columns(spec, gap="small")
    with columns[0]:
        if decides.dominant and view.dominant is not None:
            widgets.image(view.dominant, decides.dominant)
    with columns[1]:
        if decides.entropy and view.entropy is not None:
            widgets.image(view.entropy, decides.entropy)
    with columns[3]:
        st.markdown(f"**Which scale decides**  \n{decides.explanation}")
        if decides.dominant and view.dominant is not None:
            widgets.colour_key(widgets.scale_swatches(prediction.scales))
        if decides.entropy and view.entropy is not None:
            widgets.colour_key(widgets.colorbar(0.0, 1.0, ENTROPY_CMAP, "entropy: 0 one scale · 1 all equal"))


@dataclass(frozen=True)
class DecidingScale:
    """What "Which scale decides" shows under one merge: only the maps that merge has, and words that fit it.

    dominant: caption of the map of the deciding scale, or "" when the merge has none.
    entropy: caption of the entropy map of its weights, or "" when it has no weights that vary.
    """

    dominant: str
    entropy: str
    explanation: str


_ENTROPY_TEXT = (
    "The entropy of the weights, −Σ wˢ log wˢ / log S, is 0 where one scale takes all the weight and 1 where all weigh "
    "the same."
)
DECIDING_SCALE = {
    ATTENTION: DecidingScale(
        "Dominant scale: largest wˢ",
        "Attention entropy (attention), 0-1",
        "The dominant scale has the largest attention weight wˢ (Eq. 2) at each pixel. " + _ENTROPY_TEXT,
    ),
    HIERARCHICAL: DecidingScale(
        "Dominant scale: largest wˢ",
        "Attention entropy (hierarchical), 0-1",
        "The dominant scale has the largest effective weight wˢ (a product of the chain's gates) at each pixel. "
        + _ENTROPY_TEXT,
    ),
    AVERAGE: DecidingScale(
        "",
        "",
        "None: average pooling weighs every scale the same, 1/S, at every pixel, so no scale decides more than another "
        "and there is no weight map to draw.",
    ),
    MAX: DecidingScale(
        "Dominant scale: max score of the fused class",
        "",
        "Max pooling takes, for each class on its own, the largest score over the scales: the scale shown at a pixel "
        "is the one whose score of the winning class is that maximum. It has no weights, so no entropy.",
    ),
}


def input_caption(image: ImageInput) -> str:
    """What the input shown in place of a ground truth is: a gallery photo or an upload, by name."""
    if image.source == "upload":
        return f"Input: {image.name}, uploaded (uploads have no ground truth)"
    return f"Input: gallery photo {image.name} (photos have no ground truth here)"


def agreement_caption(truth: np.ndarray, labels: np.ndarray, num_classes: int) -> str:
    """How well the labels match a sample's ground truth, as a sentence."""
    scores = segmentation_scores(truth, labels, num_classes)
    return f"On this image: pixel accuracy {format_percent(scores.pixel_accuracy)}, mIoU {format_percent(scores.miou)}"


def downloads_section(model: LoadedModel, image: ImageInput, prediction: Prediction, view: viz.PredictionView) -> None:
    """Download buttons, one per kind of :data:`segscale.outputs.APP_DOWNLOADS`: fused labels (palette PNG),
    attention maps (PNG), every map (.npz), the figure (PNG).

    The kinds, labels, MIME types, file names and makers are those ``python -m segscale predict`` and folder jobs
    write (:mod:`segscale.outputs`): image, merge and scale set name the file, so saving other settings never
    overwrites one. The figure draws this page's view, with its class and score kind. Every file is made only
    when its button is clicked (``data`` is a callable, run by Streamlit on the click), so the page pays nothing
    for them while it renders.
    """
    options = OutputOptions(title=image.name, view=view)
    columns = st.columns(len(APP_DOWNLOADS))
    for column, name in zip(columns, APP_DOWNLOADS):
        kind = OUTPUT_KINDS[name]
        with column:
            missing = kind.missing_reason(prediction.merge, prediction.scales)
            if missing:
                st.caption(missing)
                continue
            st.download_button(
                kind.label,
                functools.partial(kind.make, prediction, model.metadata, options),
                output_name(image.name, prediction.merge, prediction.scales, name),
                kind.mime,
                key=f"download_{name}",
                icon=":material/download:",
                on_click="ignore",
            )


def show_device(model: LoadedModel) -> None:
    """Where the model runs, before any prediction (replaced by :func:`show_timings` after one)."""
    st.caption(
        f"**Device:** {plain(model.predictor.device_name)}  \nCheckpoint load: {model.load_s:.2f} s (once per process)"
    )


def _precision(model: LoadedModel) -> str:
    """ ", bf16 autocast" or ", float32" once the predictor has chosen (on its first image)."""
    precision = getattr(model.predictor, "precision", "undecided")
    return "" if precision == "undecided" else f", {precision}"


def show_timings(
    model: LoadedModel, image: ImageInput, prediction: Prediction, computed_now: bool, view_s: float, run_s: float
) -> None:
    """Where the model ran and the seconds of each stage, as a few short lines."""
    t = prediction.timings
    lines = [
        f"**Device:** {plain(prediction.device + _precision(model))}",
        f"Checkpoint load: {model.load_s:.2f} s (once per process)",
    ]
    if image.source == "upload":
        lines.append(f"Image decode: {image.decode_s:.2f} s")
    if computed_now:
        lines.append(
            f"Model: {t.model_s:.2f} s (preprocess {t.preprocess_s:.2f} s, postprocess {t.postprocess_s:.2f} s)"
        )
    else:
        lines.append(f"Model: prediction cached (it took {t.model_s:.2f} s)")
    lines += [f"Maps: {view_s:.2f} s", f"Whole page run: {run_s:.2f} s"]
    st.caption("  \n".join(lines))


def image_summary(image: ImageInput, prediction: Prediction) -> str:
    """ "photo.jpg: 640x480 px, scales {1, 0.75, 0.5}, attention" with the name made literal."""
    height, width = image.rgb.shape[:2]
    return f"{plain(image.name)}: {width}x{height} px · {format_scale_set(prediction.scales)} · {prediction.merge}"
