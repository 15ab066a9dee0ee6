"""The How it works page's sections: the model for a student, the checkpoint's layers and training card.

Widget key: ``describe_all_layers``. The numbers come from :mod:`segscale.architecture`, the
training card from :mod:`segscale.checkpoint_cards`, the diagram from :mod:`segscale.plots`,
as in ``python -m segscale describe``.
"""

from __future__ import annotations

import streamlit as st

from segscale import architecture as arch
from segscale import plots
from segscale.checkpoint import CheckpointMetadata
from segscale.checkpoint_cards import training_card
from segscale.formatting import format_scale_set
from segscale.merges import GATE_HEAD, merge_info
from segscale.trunks import trunk_info
from ui import widgets
from ui.messages import plain
from ui.model_loading import LoadedModel

EQ2_LATEX = r"w_i^{s} = \frac{\exp(h_i^{s})}{\sum_{t=1}^{S} \exp(h_i^{t})} \qquad (2)"
EQ1_LATEX = r"g_{i,c} = \sum_{s=1}^{S} w_i^{s}\, f_{i,c}^{s} \qquad (1)"
AVERAGE_LATEX = (
    r"\text{average pooling: } w_i^{s} = \tfrac{1}{S} \;\Rightarrow\; g_{i,c} = \tfrac{1}{S} "
    r"\sum_{s=1}^{S} f_{i,c}^{s} \qquad\quad \text{max pooling: } g_{i,c} = \max_{s} f_{i,c}^{s}"
)
ESUPV_LATEX = (
    r"\mathcal{L} = \ell\big(g, y\big) + \sum_{s=1}^{S} \ell\big(f^{s}, "
    r"y\big) \qquad \ell = \text{cross-entropy over the labelled pixels}"
)


@st.cache_data(max_entries=8, show_spinner=False)
def _architecture(model_key: str, _model: LoadedModel) -> arch.ArchitectureSummary:
    return _model.predictor.architecture_summary()


@st.cache_data(max_entries=4, show_spinner=False)
def _paper_architecture(num_classes: int) -> arch.ArchitectureSummary:
    return arch.paper_model_summary(num_classes)


@st.cache_data(max_entries=8, show_spinner=False)
def _diagram_png(scales: tuple[float, ...], head_kind: str | None, trunk: str, head: str | None = None) -> bytes:
    return plots.figure_png(plots.model_diagram_figure(scales, head_kind, trunk=trunk, head=head), dpi=110)


def how_it_works_section(model: LoadedModel) -> None:
    """The model for a student: share-net, attention head, Eq. 2 and Eq. 1, the special cases, E-Supv."""
    config = model.metadata.model
    summary = _architecture(model.key, model)
    scales = tuple(config.scales)
    head_kind = summary.head_kind
    count = len(scales)
    widgets.figure(
        _diagram_png(scales, head_kind, config.trunk.name, summary.head),
        f"The model at its trained scales {format_scale_set(scales)}: "
        + (merge_info(config.merge).head.summary if summary.head else f"no attention head, {config.merge} pooling"),
    )

    st.subheader("1. One network, several scales (share-net)")
    if summary.branched:
        network = (
            f"torchvision's **{plain(summary.trunk)}**, its backbone as the trunk and its classifier as the score head "
            "(the paper used DeepLab-LargeFOV)"
        )
        if trunk_info(summary.trunk).library:
            # Its logits are the score map, on its own grid; an input it must pad comes back at its own size.
            network = (
                f"a network imported whole from **{plain(summary.trunk)}**, its own logits as the score map (inputs "
                "it must pad give theirs at the input's size; the paper used DeepLab-LargeFOV)"
            )
        field = (
            "Its layers run in parallel branches, so its receptive field is not computed here; a coarser copy still "
            "shows each cell 1/s times more of the original, so the coarse copies see whole large objects while the "
            "full-size copy keeps the detail of small ones."
        )
    else:
        network = (
            "DeepLab-LargeFOV: VGG-16 made fully convolutional, its last pooling layers keeping the resolution and "
            "atrous (dilated) convolutions widening the view instead"
        )
        field = (
            f"A cell sees **{summary.receptive_field} x {summary.receptive_field} pixels** of the image it is given; "
            f"at scale s that is {summary.receptive_field} / s pixels of the original, so the coarse copies see whole "
            "large objects while the full-size copy keeps the detail of small ones."
        )
    st.markdown(
        f"The image is resized to each scale s, here {format_scale_set(scales)}, and every copy goes through "
        f"**the same network**, {network}. Each scale gives a **score map fˢ**: for every cell of a grid with one cell "
        f"per **{summary.output_stride} input pixels**, one score per class. {field} The score maps are resized to the "
        "grid of the largest scale, so that they can be compared cell by cell."
    )
    st.subheader("2. The attention head and Eq. 2")
    features = arch.head_features(config.trunk.name)  # fc7 for DeepLab-LargeFOV; torchvision's backbones have none
    if summary.head == GATE_HEAD.name:
        head_text = (
            "This checkpoint has **no attention head** but a **gate head**, for Tao et al.'s hierarchical attention: "
            f"the same small network scores each scale's {features} on their own"
            + (" (given log2 s as an extra input channel)" if config.head.scale_feature else "")
            + ", and a sigmoid turns each logit qˢ into a gate between 0 and 1. The gates are chained from the finest "
            "scale down (the finest scale's gate is unused); their products are effective weights wˢ, positive and "
            "summing to 1 at every cell, which take the softmax's place in Eq. 1. So it can fuse any set of scales in "
            "its trained range."
        )
    elif head_kind == "paper":
        head_text = (
            f"This checkpoint's head is the paper's: it concatenates the {features} of all {count} scales and returns "
            f"{count} logits per cell, one per scale, so it only fuses the scale set it was trained with."
        )
    elif head_kind == "shared":
        head_text = (
            f"This checkpoint's head is shared: it scores each scale's {features} on their own (one logit per scale "
            "and cell, given log2 s as an extra input channel), so it can fuse any set of scales in its trained range."
        )
    else:
        head_text = (
            f"This checkpoint has **no attention head** yet: an imported network merges by {plain(config.merge)} "
            "pooling, a special case below, until a head is trained on it (the Checkpoints page has the command)."
            if summary.branched
            else "This checkpoint has **no attention head**: it was trained "
            f"with {plain(config.merge)} pooling, a special case below."
        )
    st.markdown(
        "A second, small network, the **attention head** (a 3x3 convolution, ReLU, a 1x1 convolution), reads the "
        f"features the trunk computed ({features}) and gives one number per scale and cell: the **logit hˢ**, how "
        "much that scale should count there. A softmax **over the scales** turns the logits into weights that are "
        "positive and sum to 1 at every cell. The same weight wˢ multiplies every class's score: the head chooses a "
        "scale, not a class. " + head_text
    )
    st.latex(EQ2_LATEX)
    st.subheader("3. Eq. 1: the weighted sum")
    st.markdown(
        "The fused score of class c at cell i is the weighted sum of the scales' scores. Its argmax over the classes, "
        "upsampled to the image, is the label. Where a scale's weight is near 1, the result is that scale's own "
        "prediction; where the weights are even, the scales vote. The *Pixel inspector* "
        "writes both equations out with the numbers of any pixel you pick."
    )
    st.latex(EQ1_LATEX)
    st.subheader("4. Average and max pooling are special cases")
    st.markdown(
        f"Fix the weights at 1/S (here 1/{count}) everywhere and Eq. 1 is **average pooling**. Take, for each class on "
        "its own, the largest score over the scales and it is **max pooling**: then there is no weight shared by the "
        "classes, so max pooling is not a weighted sum of the kind Eq. 1 describes. The attention model learns where "
        "each scale deserves the weight instead of fixing the rule in advance; "
        "the *Merge comparison* page shows the three side by side."
    )
    st.latex(AVERAGE_LATEX)
    st.subheader("5. Extra supervision (E-Supv)")
    supervised = (model.metadata.training or {}).get("config", {}).get("extra_supervision")
    st.markdown(
        "Trained only through g, a scale can hide behind the others. With extra supervision each scale's own score map "
        "fˢ gets a loss against the ground truth too, so every scale learns to segment by itself and the attention has "
        "real alternatives to choose between. "
        + {True: "This checkpoint was trained with it.", False: "This checkpoint was trained without it."}.get(
            supervised, "Its training card does not say whether this checkpoint used it."
        )
    )
    st.latex(ESUPV_LATEX)


def architecture_section(model: LoadedModel) -> None:
    """The loaded checkpoint's layers with receptive field and
    jump, its totals, and the paper's full model beside it."""
    summary = _architecture(model.key, model)
    every = st.toggle("Every layer (also ReLU, normalisation, dropout)", key="describe_all_layers")
    rows = _dashes_for_none(summary.rows(spatial_only=not every))
    widgets.table(
        rows, digits=0, height=min(widgets.whole_table_height(len(rows)), 1000)
    )  # every convolution and pooling layer without scrolling
    if summary.branched:
        st.caption(
            "Kernel, stride, dilation and padding along one axis. Receptive field and jump: "
            f"{arch.NOT_COMPUTED_BRANCHED} (the layers run in parallel "
            "branches, so adding them up in order would be wrong)."
        )
    else:
        st.caption(
            "Kernel, stride, dilation and padding along one axis; receptive field (RF) and jump in pixels of the image "
            "at the scale it is fed, after the layer. The score head and the attention head continue from fc7."
        )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**This checkpoint**")
        widgets.pairs_table(summary.totals())
    with right:
        paper = _paper_architecture(summary.num_classes)
        st.markdown("**The paper's model, for comparison** (width 1, paper head, {1, 0.75, 0.5})")
        widgets.pairs_table(
            [
                ("parameters", f"{paper.total_parameters:,}"),
                *[(f"  {part}", f"{paper.parameters[part]:,}") for part in arch.PARTS],
                ("output stride", str(paper.output_stride)),
                ("receptive field", f"{paper.receptive_field} px"),
                (
                    "this checkpoint's share",
                    (
                        f"{summary.total_parameters / paper.total_parameters:.1%} "
                        f"of the parameters (width {summary.width:g})"
                    ),
                ),
            ]
        )


def training_card_section(metadata: CheckpointMetadata) -> None:
    """What the checkpoint says about its training: data, scales, supervision, optimiser, steps, metrics."""
    widgets.pairs_table(training_card(metadata))


def _dashes_for_none(rows: list[dict]) -> list[dict]:
    """A value a layer does not have (a pooling layer's channels) written "-", as ``segscale describe`` writes it:
    a table shows a missing number as "None". Such a column becomes text, its numbers written as they are."""
    with_none = {key for row in rows for key, value in row.items() if value is None}
    return [
        {key: ("-" if value is None else str(value)) if key in with_none else value for key, value in row.items()}
        for row in rows
    ]
