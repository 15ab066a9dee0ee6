"""The Scale diagnostics page's sections: the attention over many images, ScaleShapes or uploaded.

Widget keys: ``diagnose_source``, ``diagnose_count``, ``diagnose_split``, ``diagnose_merges``,
``diagnose_run``, ``diagnose_zoom``, ``diagnose_csv``, ``diagnose_uploads``,
``diagnose_run_uploads``, ``diagnose_upload_csv``. The numbers come from
:mod:`segscale.diagnostics`, the figures from :mod:`segscale.plots`, as in ``python -m segscale diagnose``.
"""

from __future__ import annotations

import contextlib
import time

import streamlit as st

from segscale import diagnostics as diag
from segscale import plots
from segscale.config import MERGE_MODES
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.data.scaleshapes import SPLITS as SCALESHAPES_SPLITS
from segscale.formatting import format_scale_set, scale_label
from segscale.images import DEFAULT_MAX_SIDE, READABLE_DESCRIPTION, ImageError
from segscale.merges import HIERARCHICAL, LEARNED_MERGES, weighing_merge
from ui import limits, widgets
from ui.chosen_image import image_key
from ui.image_sources import decode_upload
from ui.messages import LOG, show_error
from ui.model_controls import not_offered_note
from ui.model_loading import LoadedModel

DIAGNOSE_SOURCES = ("ScaleShapes images", "Uploaded images")
DEFAULT_DIAGNOSE_COUNT, MAX_DIAGNOSE_COUNT = 20, 500
DIAGNOSE_RUN_KEY = "segscale.diagnose_run"  # session state: the settings of the last ScaleShapes run asked for
DIAGNOSE_UPLOAD_RUN_KEY = "segscale.diagnose_upload_run"  # session state: the same for uploaded images


# The progress bar is made inside the cached functions: Streamlit replays a cached function's
# elements on a hit, which it can only do for elements the function itself created. On a hit
# the bar's replay ends with its removal, so nothing shows: the bar appears on the first run only.


@st.cache_data(max_entries=limits.DIAGNOSTICS_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _scale_diagnostics(
    model_key: str, count: int, split: str, scales: tuple[float, ...], merges: tuple[str, ...], _model: LoadedModel
) -> diag.ScaleDiagnostics:
    with _progress(count, f"ScaleShapes {split}") as on_image:
        return diag.scale_diagnostics(_model.predictor, split, count, scales, merges, on_image=on_image)


@st.cache_data(max_entries=limits.DIAGNOSTICS_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _image_diagnostics(
    model_key: str,
    pixels_keys: tuple[str, ...],
    names: tuple[str, ...],
    scales: tuple[float, ...],
    _model: LoadedModel,
    _images,
) -> diag.ImageSetDiagnostics:
    with _progress(len(_images), "Uploaded images") as on_image:
        return diag.image_diagnostics(_model.predictor, _images, names, scales, on_image=on_image)


@st.cache_data(max_entries=limits.DIAGNOSTICS_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _diagnostics_pngs(run_key: tuple, zoom: bool, _diagnostics: diag.ScaleDiagnostics) -> dict[str, bytes]:
    """The four figures of a run as PNG, drawn once per run (and zoom choice)."""
    d = _diagnostics
    figures = {
        "miou_by_merge": plots.merge_scores_figure(
            d.merges, [s.miou for s in d.scores], [s.pixel_accuracy for s in d.scores]
        )
    }
    if d.has_attention:
        figures["weight_by_extent"] = plots.weight_by_extent_figure(d, zoom=zoom)
        figures["weight_by_class"] = plots.weight_by_class_figure(d)
        figures["dominant_share"] = plots.dominant_share_figure(d.scales, d.dominant_share)
    if d.has_ablation:
        figures["decided_by_extent"] = plots.decided_by_extent_figure(d)
    return {name: plots.figure_png(figure) for name, figure in figures.items()}


@st.cache_data(max_entries=limits.DIAGNOSTICS_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _image_set_pngs(run_key: tuple, _result: diag.ImageSetDiagnostics) -> dict[str, bytes]:
    return {
        "image_weights": plots.figure_png(plots.image_weights_figure(_result)),
        "dominant_share": plots.figure_png(plots.dominant_share_figure(_result.scales, _result.dominant_share)),
    }


def diagnostics_source() -> str:
    """ScaleShapes images (with ground truth) or uploaded images (without)."""
    return st.radio("Images", DIAGNOSE_SOURCES, key="diagnose_source", horizontal=True, label_visibility="collapsed")


@contextlib.contextmanager
def _progress(total: int, what: str):
    """An st.progress bar while the block runs; yields the on_image
    callback that moves it. Removed afterwards, error or not."""
    bar = st.progress(0.0, text=f"{what}: 0 of {total}")
    started = time.perf_counter()

    def on_image(position: int) -> None:
        done = position + 1
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done)
        bar.progress(done / total, text=f"{what}: {done} of {total} ({elapsed:.0f} s, about {left:.0f} s left)")

    try:
        yield on_image
    finally:
        bar.empty()


def scaleshapes_diagnostics(model: LoadedModel, scales: tuple[float, ...]) -> None:
    """N ScaleShapes images (chosen, with a progress bar), run on a button; figures, tables and the CSV.

    Cached on (checkpoint, N, split, scales, merges): coming back to the page, or pressing the
    button again, shows the earlier result at once (and the progress bar does not show).
    """
    classes = tuple(model.metadata.classes)
    if classes != SCALESHAPES_CLASSES:
        show_error(
            f"This checkpoint predicts {', '.join(classes)}, not ScaleShapes' classes, so it cannot be scored on "
            "ScaleShapes images. Choose Uploaded images above, or a ScaleShapes checkpoint.",
            "Not a ScaleShapes model.",
        )
        return
    offered = list(model.predictor.offered_merges)
    count_column, split_column, merge_column = st.columns([1, 1, 2])
    with count_column:
        count = st.number_input(
            "Images (N)", 1, MAX_DIAGNOSE_COUNT, DEFAULT_DIAGNOSE_COUNT, step=5, key="diagnose_count"
        )
    with split_column:
        split = st.selectbox("Split", SCALESHAPES_SPLITS, index=SCALESHAPES_SPLITS.index("val"), key="diagnose_split")
    with merge_column:
        merges = st.multiselect("Merges scored", offered, default=offered, key="diagnose_merges")
        not_offered_note(model)
    st.caption(
        f"One forward pass per image at every scale of {format_scale_set(scales)}; every merge comes from it. "
        "The time it takes depends on the machine and its load (a first run says its time per image below). "
        "Results are kept: the same settings again, or coming back to this page, show them at once."
    )
    if not merges:
        show_error("Pick at least one merge to score.", "No merges.")
        return
    request = (model.key, int(count), split, tuple(scales), tuple(m for m in MERGE_MODES if m in merges))
    if st.button("Run diagnostics", key="diagnose_run", type="primary", icon=":material/play_arrow:"):
        st.session_state[DIAGNOSE_RUN_KEY] = request
    if st.session_state.get(DIAGNOSE_RUN_KEY) != request:
        previous = st.session_state.get(DIAGNOSE_RUN_KEY)
        st.info(
            "Press *Run diagnostics* to run the checkpoint over these images."
            if previous is None
            else "The settings changed since the last run: press *Run diagnostics* to run with these.",
            icon=":material/play_arrow:",
        )
        return
    try:
        result = _scale_diagnostics(*request, model)
    except ValueError as error:
        show_error(str(error), "The diagnostics cannot run with these settings.")
        return
    except Exception as error:  # the page must survive anything the model does; the log keeps the traceback
        LOG.exception("scale diagnostics failed")
        show_error(f"{type(error).__name__}: {error}", "The diagnostics failed.")
        return
    _show_scale_diagnostics(result, request)


def _scale_columns(row: dict) -> dict:
    """ "weight_s0.75" -> "s=0.75": short headers, so that three tables fit side by side."""
    return {(f"s={k[len('weight_s') :]}" if k.startswith("weight_s") else k): v for k, v in row.items()}


def weight_name(merges) -> str:
    """What the weights wˢ of a run are called: Chen's attention weights when attention was scored, else the
    hierarchical chain's effective weights (the scoring pass takes its weights from the first of the two)."""
    return (
        f"effective weight wˢ ({HIERARCHICAL})"
        if weighing_merge(merges).name == HIERARCHICAL
        else "attention weight wˢ"
    )


def _show_scale_diagnostics(result: diag.ScaleDiagnostics, request: tuple) -> None:
    st.success(
        f"ScaleShapes {result.split} images {result.start} to {result.start + result.count - 1}: {len(result.objects)} "
        f"visible objects, scales {format_scale_set(result.scales)}; computed in {result.seconds:.1f} s "
        f"({result.seconds / result.count:.2f} s per image).",
        icon=":material/check:",
    )
    zoom = False
    if result.has_attention:
        zoom = st.toggle(
            "Zoom the weight axis to the data",
            key="diagnose_zoom",
            help="For a model whose weights stay near 1/S, the 0-1 axis hides the differences.",
        )
    try:
        pngs = _diagnostics_pngs(request, zoom, result)
    except Exception as error:  # a figure that cannot be drawn is a message; the tables below still show
        LOG.exception("diagnostics figures failed")
        show_error(f"{type(error).__name__}: {error}", "The figures could not be drawn.")
        pngs = {}
    if not pngs:
        pass  # the error above says why
    elif result.has_attention:
        weights = weight_name(result.merges)
        widgets.figure_row(
            [
                (
                    pngs["weight_by_extent"],
                    f"Mean {weights} of each scale against object extent (px, log axis); dots: single objects",
                ),
                (pngs["dominant_share"], "Share of all pixels where each scale has the largest weight wˢ"),
            ]
        )
        widgets.figure_row(
            [
                (pngs["weight_by_class"], f"Mean {weights} of each scale per class (objects in brackets)"),
                (pngs["miou_by_merge"], "mIoU and pixel accuracy of each merge over these images"),
            ]
        )
        if weights.startswith("effective"):
            st.caption(diag.EFFECTIVE_WEIGHTS_NOTE)
    else:
        st.caption("No weights wˢ: neither attention nor hierarchical was scored (or the checkpoint has neither head).")
        left, _ = st.columns(2)
        with left:
            widgets.figure(pngs["miou_by_merge"], "mIoU and pixel accuracy of each merge over these images")
    st.subheader("Tables")
    merge_rows = [
        {
            "merge": r["merge"],
            "mIoU": widgets.percent(r["mIoU"]),
            "pixel accuracy": widgets.percent(r["pixel_accuracy"]),
        }
        for r in result.merge_rows()
    ]
    if result.has_attention:
        # Two tables a row: three side by side cut the narrowest one's headers ("pixel accura") at 1,280 px.
        left, middle = st.columns(2, gap="medium")
        with left:
            st.markdown("**Mean weight wˢ per scale, by object extent (px)**")
            widgets.table(
                [
                    {"extent": f"{r.pop('extent_low'):g}-{r.pop('extent_high'):g}", **_scale_columns(r)}
                    for r in result.extent_rows()
                ],
                digits=3,
            )
        with middle:
            st.markdown("**Mean weight wˢ per scale, by class**")
            widgets.table([_scale_columns(r) for r in result.class_rows() if r["objects"]], digits=3)
        left, _ = st.columns(2, gap="medium")
        with left:
            st.markdown("**Score per merge**")
            widgets.table(merge_rows)
    else:
        widgets.table(merge_rows)
    st.markdown(f"**Every object** ({len(result.objects)} rows; the CSV holds the same)")
    widgets.table(result.object_rows(), digits=3, height=260)
    stem = f"scaleshapes_{result.split}_{result.start}-{result.start + result.count - 1}"
    st.download_button(
        "Objects table (CSV)",
        result.to_csv(),
        f"{stem}_objects.csv",
        "text/csv",
        key="diagnose_csv",
        icon=":material/download:",
        on_click="ignore",
    )
    ablation_section(result, pngs)


def ablation_section(result: diag.ScaleDiagnostics, pngs: dict[str, bytes]) -> None:
    """Leave one scale out over the images: per scale and object size the share of pixels it decides, and
    the mIoU without it (the pass's own merge fused over the other scales)."""
    st.subheader("What each scale decides: leave one scale out")
    if not result.has_ablation:
        st.caption(diag.SINGLE_SCALE_ABLATION)
        return
    st.caption(diag.ABLATION_DEFINITION)
    left, right = st.columns([1, 1], gap="medium")
    with left:
        if "decided_by_extent" in pngs:
            widgets.figure(
                pngs["decided_by_extent"],
                f"Share of object pixels each scale decides, by object extent ({result.ablation_merge} without it)",
            )
    with right:
        own = result.miou(result.ablation_merge) if result.ablation_merge in result.merges else None
        st.markdown(
            f"**mIoU without each scale** ({result.ablation_merge}"
            + ("" if own is None else f"; with every scale {widgets.percent(own)}")
            + ")"
        )
    # A column per scale and a row per measure: a column per object size ran past the page at 1,280 px.
    by_scale = result.ablation_rows()
    measures = [key for key in by_scale[0] if key != "scale"] if by_scale else []
    rows = [
        {"measure": measure} | {f"scale {scale_label(row['scale'])}": widgets.percent(row[measure]) for row in by_scale}
        for measure in measures
    ]
    widgets.table(rows, height=widgets.whole_table_height(len(rows)))


def upload_diagnostics(model: LoadedModel, scales: tuple[float, ...]) -> None:
    """Several uploaded images (no ground truth): mean weight and dominant share per scale, per image."""
    if model.predictor.inspection_merge not in LEARNED_MERGES:
        show_error(
            "This checkpoint has neither an attention head nor a gate head (it merges by "
            f"{model.metadata.model.merge}), so there are no learned weights over scales to summarise over uploaded "
            "images. ScaleShapes images still give its mIoU per merge.",
            "No attention weights.",
        )
        return
    files = st.file_uploader(
        "Upload images",
        accept_multiple_files=True,
        key="diagnose_uploads",
        help=f"{READABLE_DESCRIPTION}; several at once. Without ground truth, the page shows the attention only. "
        f"{limits.upload_limit_text()}",
    )
    images, names, keys = [], [], []
    for file in files or []:
        try:
            rgb, notices, _ = decode_upload(file.getvalue(), file.name, DEFAULT_MAX_SIDE)
        except ImageError as error:
            show_error(str(error), f"{file.name} is left out.")
            continue
        images.append(rgb)
        names.append(file.name)
        keys.append(image_key(rgb))
    if not images:
        st.info(
            f"Upload one or more images ({READABLE_DESCRIPTION}), then press *Run diagnostics*.",
            icon=":material/upload:",
        )
        return
    request = (model.key, tuple(keys), tuple(names), tuple(scales))
    st.caption(
        f"{len(images)} image{'s' if len(images) > 1 else ''} "
        f"ready; one forward pass each at {format_scale_set(scales)}."
    )
    if st.button("Run diagnostics", key="diagnose_run_uploads", type="primary", icon=":material/play_arrow:"):
        st.session_state[DIAGNOSE_UPLOAD_RUN_KEY] = request
    if st.session_state.get(DIAGNOSE_UPLOAD_RUN_KEY) != request:
        st.info("Press *Run diagnostics* to run the checkpoint over these images.", icon=":material/play_arrow:")
        return
    try:
        result = _image_diagnostics(*request, model, images)
    except (ValueError, ImageError) as error:
        show_error(str(error), "The diagnostics cannot run on these images.")
        return
    except Exception as error:  # as above
        LOG.exception("image diagnostics failed")
        show_error(f"{type(error).__name__}: {error}", "The diagnostics failed.")
        return
    st.success(f"{len(result.images)} images in {result.seconds:.1f} s.", icon=":material/check:")
    try:
        pngs = _image_set_pngs(request, result)
    except Exception as error:  # as above
        LOG.exception("image diagnostics figures failed")
        show_error(f"{type(error).__name__}: {error}", "The figures could not be drawn.")
        pngs = None
    if pngs:
        widgets.figure_row(
            [
                (pngs["image_weights"], "Mean attention weight wˢ of each scale, per uploaded image"),
                (pngs["dominant_share"], "Share of all pixels where each scale has the largest weight wˢ"),
            ]
        )
    widgets.table(result.image_rows(), digits=3)
    st.caption(
        "Entropy of the weights in bits: 0 = one scale takes all the "
        f"weight, {result.max_entropy_bits:.3f} = all scales weigh the same."
    )
    st.download_button(
        "Images table (CSV)",
        result.to_csv(),
        "uploaded_images.csv",
        "text/csv",
        key="diagnose_upload_csv",
        icon=":material/download:",
        on_click="ignore",
    )
