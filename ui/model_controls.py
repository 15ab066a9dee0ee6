"""The sidebar's controls: which checkpoint (with a caption of what it is), which merge, which scale set.

Widget keys (for ``AppTest`` and for pages sharing state): ``checkpoint``, ``merge``,
``scale_preset``, ``custom_scales``. Pass ``key_prefix`` to use a control twice on one page.
What a checkpoint offers (merges, scale sets) is asked of its
:class:`~segscale.predictor.Predictor`, never decided here.
"""

from __future__ import annotations

import streamlit as st

from segscale.checkpoint import CheckpointError, CheckpointMetadata
from segscale.config import normalize_scales
from segscale.formatting import format_scale_set, scale_label
from segscale.merges import ATTENTION_HEAD, GATE_HEAD, MERGES, merge_info
from ui.messages import plain, show_error
from ui.model_loading import (
    CHECKPOINT_DIR_ENV,
    LoadedModel,
    checkpoint_dir,
    checkpoint_files,
    load_predictor,
    load_uploaded_predictor,
    uploaded_checkpoints,
)

# Scale sets offered besides "custom"; each is shown only when the checkpoint supports it.
CUSTOM = "custom"
CUSTOM_STEP = 0.05  # the grid of scales a custom set picks from, inside the checkpoint's range
MAX_CUSTOM_SCALES = 8  # more maps per row than a page can show legibly, and each scale is another forward pass
MERGE_HELP = {name: merge.help for name, merge in MERGES.items()}  # the merge radio's help, from the registry


def checkpoint_picker(key_prefix: str = "", autocast: str = "auto") -> LoadedModel | None:
    """Checkpoint selector with the chosen model's card; None (and an error shown) if none loads.

    Offers every ``.pt`` of the checkpoint folder, then the checkpoints this session uploaded
    on the Checkpoints page. ``autocast="off"`` loads a float32 copy (see :func:`load_predictor`).
    """
    folder = checkpoint_dir()
    paths = checkpoint_files(folder)
    uploaded = uploaded_checkpoints()
    if not paths and not uploaded:
        show_error(
            f"No checkpoint (.pt file) in {folder}. Put one there, or point the environment variable "
            f"{CHECKPOINT_DIR_ENV} to a folder that has one.",
            "No model.",
        )
        return None
    names = [path.name for path in paths] + list(uploaded)
    name = st.selectbox(
        "Checkpoint",
        names,
        key=f"{key_prefix}checkpoint",
        help=f"Every .pt file in {folder}" + (", and the checkpoints you uploaded in this session" if uploaded else ""),
    )
    try:
        with st.spinner(f"Loading {name}…"):
            if name in uploaded:
                model = load_uploaded_predictor(*uploaded[name], autocast=autocast)
            else:
                model = load_predictor(folder / name, autocast)
    except CheckpointError as error:
        show_error(str(error), "This checkpoint cannot be used.")
        return None
    checkpoint_caption(model.metadata)
    return model


def checkpoint_caption(metadata: CheckpointMetadata) -> None:
    """Name, classes, trained scale set, head and score of a checkpoint, as a few short lines under its box.

    Not the Checkpoints page's card (:func:`segscale.checkpoint_cards.short_card`): the sidebar has room
    for what a person needs to read its maps, the classes and the scales it takes.
    """
    model = metadata.model
    low, high = metadata.scale_range
    lines = [
        f"**{plain(metadata.name or 'unnamed model')}**",
        f"Classes ({len(metadata.classes)}): {plain(', '.join(metadata.classes))}",
        f"Trained scale set: {plain(format_scale_set(model.scales))}, merge {plain(model.merge)}",
        f"{plain(_head_line(model.merge, model.head.kind))}; "
        f"scales supported: {plain(f'{low:g}')} to {plain(f'{high:g}')}",
    ]
    miou = metadata.metrics.get("val_miou") if isinstance(metadata.metrics, dict) else None
    if isinstance(miou, (int, float)):
        lines.append(f"Validation mIoU: {100 * miou:.1f}%")
    st.caption("  \n".join(lines))


def _head_line(merge: str, head_kind: str) -> str:
    """The caption's line on the head a model has, named first: the checkpoint's name above says the same."""
    head = merge_info(merge).head
    if head is ATTENTION_HEAD:
        return f"Attention head: {head_kind}"
    if head is GATE_HEAD:
        return "Gate head: hierarchical attention (Tao et al. 2020), no softmax attention head"
    return f"Attention head: none, merges by {merge}"


def merge_picker(model: LoadedModel, key_prefix: str = "") -> str:
    """Radio of the merges the model offers (``Predictor.offered_merges``), its own merge first chosen.

    Attention needs an attention head, hierarchical a gate head; a caption under the radio says
    which merges are not offered and why (:func:`not_offered_note`).
    """
    predictor = model.predictor
    modes = list(predictor.offered_merges)
    key = f"{key_prefix}merge"
    if st.session_state.get(key) not in modes:  # first visit, or a choice this checkpoint does not offer
        # Set before the radio is drawn (not as its index): Streamlit's documented way, so the
        # radio and the session agree and no "default value and session state" warning shows.
        st.session_state[key] = predictor.default_merge if predictor.default_merge in modes else modes[0]
    choice = st.radio(
        "Merge over scales",
        modes,
        key=key,
        horizontal=True,
        help="  \n".join(MERGE_HELP[mode] for mode in modes),
    )
    not_offered_note(model)
    return choice


def not_offered_text(model: LoadedModel) -> str | None:
    """ "Not offered: hierarchical, since this model has no gate head ..." or None when every merge is offered."""
    missing = model.predictor.unoffered_merges
    if not missing:
        return None
    return "Not offered: " + "; ".join(f"{merge}, since {reason}" for merge, reason in missing.items()) + "."


def not_offered_note(model: LoadedModel) -> None:
    """One caption naming the merges this checkpoint cannot do, and why (nothing when it can do all)."""
    text = not_offered_text(model)
    if text:
        st.caption(plain(text))


def scale_set_picker(model: LoadedModel, merge: str, key_prefix: str = "") -> tuple[float, ...] | None:
    """Preset or custom scale set, validated by ``Predictor.check_request``; None (error shown) if invalid."""
    metadata = model.metadata
    presets = model.predictor.offered_scale_sets(merge)
    trained = metadata.model.scales

    def label(option) -> str:
        if option == CUSTOM:
            return "custom…"
        text = format_scale_set(option)
        return f"{text} (trained)" if tuple(option) == tuple(trained) else text

    options: list = list(presets)
    paper_attention = model.predictor.fixed_scale_set(merge)
    if not paper_attention:
        options.append(CUSTOM)
    choice = st.radio("Scale set", options, key=f"{key_prefix}scale_preset", format_func=label, horizontal=True)
    if paper_attention:
        st.caption("This checkpoint's attention head is the paper's: it fuses only its trained scale set.")
    if choice == CUSTOM:
        grid = model.predictor.custom_scale_grid(CUSTOM_STEP)
        state_key = f"{key_prefix}custom_scales"
        if state_key in st.session_state:  # a carried choice: drop scales this checkpoint does not offer
            st.session_state[state_key] = [s for s in st.session_state[state_key] if s in grid][:MAX_CUSTOM_SCALES]
        picked = st.multiselect(
            "Custom scales",
            grid,
            default=None if state_key in st.session_state else [s for s in trained if s in grid][:MAX_CUSTOM_SCALES],
            key=state_key,
            format_func=scale_label,
            max_selections=MAX_CUSTOM_SCALES,
            help=(
                f"Up to {MAX_CUSTOM_SCALES} scales from {metadata.scale_range[0]:g} "
                f"to {metadata.scale_range[1]:g}, the range this model was trained on."
            ),
        )
        if len(picked) == MAX_CUSTOM_SCALES:
            st.caption(
                f"{MAX_CUSTOM_SCALES} scales is the most a custom set takes: more maps would "
                "not fit a row legibly, and each scale costs another pass of the network."
            )
        if not picked:
            show_error("Pick at least one scale for the custom set.", "No scales.")
            return None
        choice = tuple(sorted(picked, reverse=True))
    try:
        scales, _ = model.predictor.check_request(normalize_scales(choice), merge)
    except ValueError as error:
        show_error(str(error), "This scale set does not work with this checkpoint.")
        return None
    return scales


def model_sidebar(
    *, autocast: str = "auto", scale_set: bool = True
) -> tuple[LoadedModel | None, tuple[float, ...] | None]:
    """The sidebar of the pages beside the main view: checkpoint (with its card) and scale set.

    The scale set is the one ``Predictor.inspection_merge`` allows (for a paper head, only its
    trained set). Returns (model, scales); either is None when unusable (a message shows).
    """
    with st.sidebar:
        st.header("Model")
        model = checkpoint_picker(autocast=autocast)
        scales = None
        if model is not None and scale_set:
            scales = scale_set_picker(model, model.predictor.inspection_merge)
    return model, scales
