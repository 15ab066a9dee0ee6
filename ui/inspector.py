"""The Pixel inspector page's sections: a clickable grid to pick a
pixel, and Eq. 2 (or the chain of gates) and Eq. 1 with its numbers.

Widget keys: ``inspect_row``, ``inspect_col``, ``inspect_grid_colour``, ``inspect_top_k``,
``inspect_class``, ``inspect_eq1_merge`` (the ``INSPECT`` prefix). The grid's colours and tips
come from :mod:`segscale.inspection_grid`, the numbers from :func:`segscale.diagnostics.pixel_breakdown`,
as in ``python -m segscale inspect``. Equations go through ``st.latex`` (class names escaped by
segscale.diagnostics).
"""

from __future__ import annotations

import functools

import streamlit as st

from segscale import diagnostics as diag
from segscale import inspection_grid
from segscale import visualize as viz
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.formatting import format_number, format_scale_set, scale_label
from segscale.merges import HIERARCHICAL, MERGES
from segscale.predictor import Prediction
from segscale.trunks import score_map_stride_of
from ui import limits, widgets
from ui.chosen_image import ImageInput
from ui.messages import plain, show_error
from ui.model_controls import not_offered_note
from ui.model_loading import LoadedModel

INSPECTOR_MAX_SIDE = 640  # px: uploads are scaled to this, so the clickable grid stays under ~6 500 cells
INSPECT = "inspect_"  # key prefix of the inspector's controls: inspect_row, inspect_col, inspect_grid_colour, ...
GRID_COLOURINGS = {
    "input": "image (mean colour of the cell's pixels)",
    "labels": "fused labels at the cell",
    "dominant": "dominant scale (largest wˢ)",
}
EQUATION_SIZE = "\\small "  # KaTeX size switch: Eq. 1 with three scales' terms fits the numbers column
GRID_CHART_WIDTH = 380  # px: the picker column's width at 1500 px; the chart stretches to the column
# px above the grid chart: Streamlit shows the chart's toolbar (table, download, full screen) over the element
# above it on hover, which hid the last option of "Colour the grid by".
CHART_TOOLBAR_ROOM = 24


def grid_size(grid: tuple[int, int]) -> str:
    """A (rows, cols) grid as the page writes every size, width x height: ``60x77-cell``."""
    rows, cols = grid
    return f"{cols}x{rows}-cell"


def grid_words(model: LoadedModel, prediction: Prediction) -> str:
    """The prediction's grid as the page names it: ``60x77-cell stride-8 grid`` (the model's own stride)."""
    stride = inspection_grid.grid_stride(prediction, score_map_stride_of(model.metadata.model))
    return f"{grid_size(prediction.grid)} {inspection_grid.stride_words(stride)}grid"


def precision_note(model: LoadedModel) -> str:
    """Which precision the numbers on the page are in, as a sentence."""
    precision = getattr(model.predictor, "precision", "undecided")
    if precision == "float32":
        return (
            "Numbers in float32: this page runs its own float32 copy of "
            "the model (no bf16 autocast), so the digits are the model's."
        )
    if precision == "bf16 autocast":
        return "Numbers from bf16 autocast (trunk and heads), with Eq. 1-2 in float32: the last digits are rounded."
    return "Numbers in float32."


@st.cache_data(max_entries=limits.VIEW_CACHE_ENTRIES, ttl=limits.CACHE_TTL_S, show_spinner=False)
def _grid_frame(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    merge: str,
    colouring: str,
    _prediction: Prediction,
    _classes: tuple[str, ...],
    _palette,
):
    """One row per grid cell: its rectangle, colour and tooltip (the clickable heat map's data)."""
    import pandas as pd

    cells = inspection_grid.grid_cells(_prediction, colouring, _classes, _palette)
    return pd.DataFrame(
        {
            "cell_row": cells.rows,
            "cell_col": cells.cols,
            "x0": cells.cols,
            "x1": cells.cols + 1,
            "y0": cells.rows,
            "y1": cells.rows + 1,
            "colour": cells.hex_colours,
            "cell": list(cells.tips),
        }
    )


def _grid_chart(frame, grid: tuple[int, int], cell: tuple[int, int]):
    """The score-map grid as an altair heat map, one clickable rectangle per cell, the chosen cell outlined."""
    import altair as alt
    import pandas as pd

    grid_h, grid_w = grid
    x = alt.X("x0:Q", scale=alt.Scale(domain=[0, grid_w], nice=False, zero=False), axis=None)
    y = alt.Y("y0:Q", scale=alt.Scale(domain=[grid_h, 0], nice=False, zero=False), axis=None)
    pick = alt.selection_point(name="cell", fields=["cell_row", "cell_col"], on="click", clear=False, empty=False)
    colour = alt.Color("colour:N", scale=None)
    cells = (
        alt.Chart(frame)
        .mark_rect(strokeWidth=0.6)  # a stroke of the cell's own colour closes the hairline seams between cells
        .encode(
            x=x,
            x2="x1:Q",
            y=y,
            y2="y1:Q",
            color=colour,
            stroke=alt.Stroke("colour:N", scale=None),
            tooltip=[alt.Tooltip("cell:N", title="")],
        )
        .add_params(pick)
    )
    chosen = pd.DataFrame({"x0": [cell[1]], "x1": [cell[1] + 1], "y0": [cell[0]], "y1": [cell[0] + 1]})
    outline = (
        alt.Chart(chosen).mark_rect(fill=None, stroke="#ff00dc", strokeWidth=2.5).encode(x=x, x2="x1:Q", y=y, y2="y1:Q")
    )
    height = max(60, round(GRID_CHART_WIDTH * grid_h / grid_w))  # cells square at the column's usual width
    return alt.layer(cells, outline).properties(width="container", height=height).configure_view(strokeWidth=0)


def _pick_cell(
    chart_key: str,
    row_key: str,
    col_key: str,
    image_size: tuple[int, int],
    grid: tuple[int, int],
    align_corners: bool = True,
) -> None:
    """on_select of the grid chart: the clicked cell's pixel becomes the inspected one (run before the page)."""
    cell = inspection_grid.picked_cell(st.session_state.get(chart_key), grid)
    if cell is not None:
        pixel = diag.pixel_at_cell(cell, image_size, grid, align_corners)
        st.session_state[row_key], st.session_state[col_key] = pixel


def pixel_picker(
    model: LoadedModel, prediction: Prediction, image: ImageInput, key_prefix: str = INSPECT
) -> tuple[int, int]:
    """Pick a pixel: click a cell of the score-map grid, or type its row and column. Returns (row, col).

    ``st.image`` has no click events; an altair heat map with a point selection does: one
    rectangle per grid cell (the unit Eq. 1 holds on), ``on_select`` turns the clicked cell
    into the pixel it sits on. The number inputs always work (keyboard, AppTest) and show
    the current pixel. A new image starts on :func:`segscale.diagnostics.salient_pixel`.
    """
    metadata = model.metadata
    height, width = prediction.labels.shape
    grid = prediction.grid
    align_corners = prediction.align_corners  # cells and pixels map as the labels were upsampled
    row_key, col_key, owner_key, pixel_key = (f"{key_prefix}{name}" for name in ("row", "col", "pixel_of", "pixel"))
    identity = (image.key, height, width)
    if st.session_state.get(owner_key) != identity:  # a new image: start on its most telling pixel
        st.session_state[pixel_key] = diag.salient_pixel(prediction)
        st.session_state[owner_key] = identity
        st.session_state[row_key], st.session_state[col_key] = st.session_state[pixel_key]
    for key, index, limit in ((row_key, 0, height), (col_key, 1, width)):
        value = st.session_state.get(key, st.session_state[pixel_key][index])  # back from another page: the last pixel
        st.session_state[key] = int(min(max(int(value), 0), limit - 1))
    cell = diag.nearest_cell(st.session_state[row_key], st.session_state[col_key], (height, width), grid, align_corners)

    colourings = list(inspection_grid.offered_colourings(prediction))
    colouring = st.radio(
        "Colour the grid by",
        colourings,
        key=f"{key_prefix}grid_colour",
        horizontal=True,
        format_func=lambda k: GRID_COLOURINGS[k],
    )
    st.space(CHART_TOOLBAR_ROOM)
    frame = _grid_frame(
        model.key,
        image.key,
        prediction.scales,
        prediction.merge,
        colouring,
        prediction,
        tuple(metadata.classes),
        tuple(metadata.palette),
    )
    chart_key = (
        f"{key_prefix}grid_{cell[0]}_{cell[1]}"  # a new chart after each pick: clicking the same cell again works
    )
    st.altair_chart(
        _grid_chart(frame, grid, cell),
        key=chart_key,
        on_select=functools.partial(_pick_cell, chart_key, row_key, col_key, (height, width), grid, align_corners),
        selection_mode="cell",
        width="stretch",
    )
    st.caption(
        f"Click a cell: the {grid_words(model, prediction)} of the largest scale, coloured by "
        f"{GRID_COLOURINGS[colouring]}; the pink outline is the cell inspected."
    )
    if colouring == "labels":
        widgets.colour_key(widgets.class_swatches(metadata.classes, metadata.palette), alt="class colours")
    elif colouring == "dominant":
        widgets.colour_key(widgets.scale_swatches(prediction.scales), alt="scale colours")

    row_column, col_column = st.columns(2)
    with row_column:
        row = st.number_input(f"Row (0 to {height - 1})", min_value=0, max_value=height - 1, step=1, key=row_key)
    with col_column:
        col = st.number_input(f"Column (0 to {width - 1})", min_value=0, max_value=width - 1, step=1, key=col_key)
    st.session_state[pixel_key] = (int(row), int(col))
    cell = diag.nearest_cell(int(row), int(col), (height, width), grid, align_corners)
    footprint = diag.cell_footprint(cell, (height, width), grid, align_corners)
    zoom = viz.pixel_zoom(prediction.image, int(row), int(col), footprint, radius=24, factor=6)
    st.image(
        zoom,
        caption=(
            f"Input at scale 1 around pixel ({row}, {col}), 6x: the pink "
            f"square is grid cell {cell}'s pixels, the small frame the pixel"
        ),
        width="stretch",
        output_format="PNG",
    )
    return int(row), int(col)


def _scale_table_rows(breakdown: diag.PixelBreakdown) -> list[dict]:
    """:meth:`PixelBreakdown.scale_rows` with readable headers (h^s, w^s, f^s_c)."""
    renames = {"h": "hˢ", "h - max h": "hˢ − m", "exp(h - max h)": "exp(hˢ − m)", "w": "wˢ"}
    rows = []
    for row in breakdown.scale_rows():
        out = {"scale": scale_label(row.pop("scale")), "winner": row.pop("winner")}
        for name, value in row.items():
            if name.startswith("f["):
                name = f"fˢ {name[2:-1]}"
            out[renames.get(name, name)] = value
        rows.append(out)
    return rows


def _chain_table_rows(chain: diag.GateChain, classes, shown) -> list[dict]:
    """:meth:`GateChain.step_rows` with readable headers (qˢ, aˢ, wˢ, rᵏ), finest scale first.

    The gate column is text so that the finest scale's gate can say it is unused: the chain starts
    from that scale's scores, and no gate weighs them against anything."""
    renames = {"q": "qˢ", "a": "aˢ = σ(qˢ)", "w": "wˢ (effective)"}
    rows = []
    for row in chain.step_rows(classes, shown):
        step = row.pop("step")
        out = {"step": step, "scale": scale_label(row.pop("scale"))}
        gate = format_number(row.pop("a"), diag.WEIGHT_DIGITS)
        for name, value in row.items():
            out[f"rᵏ {name[2:-1]}" if name.startswith("r[") else renames[name]] = value
        out[renames["a"]] = f"{gate} (unused)" if step == 1 else gate
        rows.append(out)
    return rows


def gate_chain_section(breakdown: diag.PixelBreakdown, chosen: int | None) -> None:
    """Tao et al.'s chain of gates at the cell: gates, effective weights as products, the running prediction.

    The running prediction is written out for the chosen class, else for the cell's winner of the chain."""
    chain = breakdown.gate_chain
    classes = breakdown.classes
    st.latex(EQUATION_SIZE + chain.latex_gates())
    st.caption(diag.EFFECTIVE_WEIGHTS_NOTE)
    widgets.table(_chain_table_rows(chain, classes, breakdown.shown_classes))
    written = breakdown.fusion(HIERARCHICAL).winner if chosen is None else chosen
    st.latex(EQUATION_SIZE + chain.latex_running(breakdown.scores, written, classes[written]))
    st.caption(
        f"The chain from the finest scale down (Tao et al.'s order), for {plain(classes[written])}: r¹ is the finest "
        "scale's score, each coarser scale's gate aˢ weighs its own score against the running prediction, and the last "
        "r is the fused score g. "
        "The table gives every step for the classes shown; Eq. 1 below adds up the same g from the effective weights."
    )


def _merge_table_rows(breakdown: diag.PixelBreakdown) -> list[dict]:
    rows = []
    for row in breakdown.merge_rows():
        method = row.pop("merge")
        out = {
            "merge": method + (" (this prediction)" if method == breakdown.merge else ""),
            "winner": row.pop("winner"),
        }
        out.update({(f"g {name[2:-1]}" if name.startswith("g[") else name): value for name, value in row.items()})
        rows.append(out)
    return rows


def pixel_equations(
    model: LoadedModel, prediction: Prediction, image: ImageInput, row: int, col: int, key_prefix: str = INSPECT
) -> None:
    """Eq. 2 and Eq. 1 with the numbers of one pixel (at its grid cell), the winners, and average and max pooling."""
    classes = tuple(model.metadata.classes)
    top_column, class_column = st.columns(2)
    with top_column:
        top_k = st.slider(
            "Classes shown",
            1,
            len(classes),
            min(3, len(classes)),
            key=f"{key_prefix}top_k",
            help="The classes with the highest fused score g at the cell (this prediction's fusion).",
        )
    with class_column:
        chosen = st.selectbox(
            "Also show class",
            [None, *range(len(classes))],
            key=f"{key_prefix}class",
            format_func=lambda c: "(none)" if c is None else classes[c],
        )
    try:
        breakdown = diag.pixel_breakdown(prediction, row, col, classes, top_k=top_k, chosen_class=chosen)
    except ValueError as error:
        show_error(str(error), "This pixel cannot be inspected.")
        return
    height, width = breakdown.image_size
    i, j = breakdown.cell
    centre_row, centre_col = breakdown.cell_center
    st.markdown(
        f"**Pixel (row {row}, col {col})** of the {width}x{height} px image → **grid cell (row {i}, col {j})** of the "
        f"{grid_words(model, prediction)}, which sits on pixel (row {centre_row:.1f}, col {centre_col:.1f}). "
        f"Eq. 1 and 2 hold exactly on this grid; the label of the pixel is g interpolated from its four nearest cells. "
        f"Sizes are width x height, positions (row, col)."
    )
    st.caption(precision_note(model) + f" Scales {format_scale_set(breakdown.scales)}.")

    eq2 = breakdown.latex_eq2()
    if breakdown.gate_chain is not None:
        st.subheader("The chain of gates (Tao et al. 2020): effective weights wˢ")
        gate_chain_section(breakdown, chosen)
        st.subheader("The scores fˢ at the cell")
    else:
        st.subheader("Eq. 2: the weights wˢ, a softmax over scales")
    if eq2 is None and breakdown.gate_chain is None:
        st.caption(f"No attention here: this checkpoint merges by {plain(breakdown.merge)} pooling, with no logits hˢ.")
    elif eq2 is not None:
        st.latex(EQUATION_SIZE + eq2)
        st.caption(
            "The table takes Eq. 2 step by step: the logit hˢ of the attention head, minus the largest one m (the same "
            "result, without overflow), its exponential, and wˢ, that exponential over the sum of them all. Then the "
            "scores fˢ of the classes shown, and the class each scale alone would pick."
        )
    widgets.table_by_column(_scale_table_rows(breakdown), "scale")
    winners = ", ".join(
        f"scale {scale_label(s)}: {classes[w]}" for s, w in zip(breakdown.scales, breakdown.scale_winners)
    )
    st.caption(f"Each scale on its own (argmax of fˢ): {plain(winners)}.")

    st.subheader("Eq. 1: the fused score g, a weighted sum over scales")
    methods = list(breakdown.methods)
    method_key = f"{key_prefix}eq1_merge"
    if st.session_state.get(method_key) not in methods:  # start on the prediction's own fusion
        st.session_state[method_key] = breakdown.merge
    method = st.radio(
        "Fusion written out",
        methods,
        key=method_key,
        horizontal=True,
        format_func=lambda merge: MERGES[merge].label,
    )
    st.latex(EQUATION_SIZE + breakdown.latex_eq1(method))
    widgets.table_by_column(_merge_table_rows(breakdown), "merge")
    not_offered_note(model)
    fused = ", ".join(f"{f.method}: {classes[f.winner]}" for f in breakdown.fusions)
    st.caption(
        f"The winner of each fusion at the cell: {plain(fused)}. Average pooling is Eq. 1 with wˢ = 1/S; max pooling "
        "takes, for every class on its own, the largest score over the scales, so no weights are shared across classes."
    )
    label = classes[breakdown.pixel_label]
    text = f"**Label at pixel ({row}, {col}):** {plain(label)} ({plain(breakdown.merge)})"
    if image.ground_truth is not None and tuple(classes) == SCALESHAPES_CLASSES:
        truth = int(image.ground_truth[row, col])
        text += f" · ground truth: {plain(classes[truth]) if truth < len(classes) else 'ignore'}"
    st.markdown(text)
    if breakdown.note:
        st.info(plain(breakdown.note[0].upper() + breakdown.note[1:]), icon=":material/info:")
    without_section(prediction, row, col, classes)


def without_section(prediction: Prediction, row: int, col: int, classes) -> None:
    """The fused label at the pixel without each scale, for every merge this prediction allows, and each
    scale's own label and confidence (:func:`segscale.diagnostics.pixel_without`)."""
    st.subheader("Without each scale: the label at this pixel")
    if len(prediction.scales) < 2:
        st.caption(diag.SINGLE_SCALE_ABLATION)
        return
    without = diag.pixel_without(prediction, row, col)
    rows = []
    for item in without.rows(classes):
        item = dict(item)
        item["scale"] = scale_label(item["scale"])
        rows.append(item)
    widgets.table_by_column(rows, "scale")
    deciding = ", ".join(
        f"{merge}: {', '.join(scale_label(s) for s in without.deciding_scales(merge)) or 'none'}"
        for merge in without.merges
    )
    st.caption(
        f"{diag.ABLATION_DEFINITION} \\* marks a label that differs from the one with every scale. "
        f"Scales that decide this pixel: {plain(deciding)}."
    )
