"""The merges over scales, each declared once: what it needs, what it is called, how it is written.

A merge turns the S score maps f^s into one fused map g. Chen et al.'s attention (Eq. 1-2) and
Tao et al.'s hierarchical gates learn per-pixel weights w^s; average and max pooling are the
paper's special cases. Every page, figure, command and diagnostic that names, colours, explains
or branches on a merge reads it here, so adding a merge or rewording one is an edit of this
module only. The arithmetic of the merges lives in :mod:`segscale.modeling.fusion`.

``MERGES`` keeps the order in which merges are listed everywhere (choices, tables, radios).
"""

from __future__ import annotations

from dataclasses import dataclass

ATTENTION = "attention"
AVERAGE = "average"
MAX = "max"
HIERARCHICAL = "hierarchical"


@dataclass(frozen=True)
class MergeHead:
    """A head that a learned merge needs beside the shared network.

    attribute: the :class:`~segscale.modeling.MultiScaleNet` attribute that holds it.
    name: how it is named in tables and cards ("attention head").
    logits: the :class:`~segscale.modeling.MultiScaleOutput` field of its per-scale logits.
    summary: the model in a few words, from the head to the fused map (a diagram's caption).
    """

    attribute: str
    name: str
    logits: str
    summary: str


ATTENTION_HEAD = MergeHead(
    "attention_head", "attention head", "attention_logits", "attention head, softmax over scales, weighted sum"
)
GATE_HEAD = MergeHead(
    "gate_head",
    "gate head",
    "gate_logits",
    "gate head, a chain of sigmoid gates, weighted sum with their effective weights",
)


@dataclass(frozen=True)
class Merge:
    """One merge over scales.

    name: its key in configs, checkpoints, flags, JSON and CSV.
    head: the head it needs (None: any model can merge this way).
    missing: why a model without that head cannot merge this way, in words ('' without a head).
    label: a short name for a radio ("average pooling (wˢ = 1/S)").
    help: one line for a merge radio's help: what its weights are.
    phrase: how a caption names it among the others.
    formula: the plain-text formula, ``{S}`` standing for the number of scales.
    weights: the name of its weights w^s in a figure (matplotlib mathtext), or None when it has none.
    no_weights: why it has no weights to show ('' when it has).
    trust: who trusts a scale when its weight is high, in a figure's title ('' without learned weights).
    learned: whether a model learns its weights (which then sum to 1 at every pixel and are ranked,
        shown and summarised over objects); average pooling's are a constant 1/S.
    colour: its colour in figures (hex).
    """

    name: str
    head: MergeHead | None
    missing: str
    label: str
    help: str
    phrase: str
    formula: str
    weights: str | None
    no_weights: str
    trust: str
    learned: bool
    colour: str

    def __str__(self) -> str:
        return self.name


MERGES: dict[str, Merge] = {
    merge.name: merge
    for merge in (
        Merge(
            name=ATTENTION,
            head=ATTENTION_HEAD,
            missing="this model has no attention head",
            label="attention (Eq. 1)",
            help="attention: learned per-pixel weights wˢ (softmax over scales, Eq. 2)",
            phrase="learned attention weights (softmax over scales)",
            formula="Eq. 1   g_c = sum_s w^s f^s_c   (attention: w^s from Eq. 2)",
            weights="attention weight $w^s$",
            no_weights="",
            trust="the attention trusts",
            learned=True,
            colour="#4c72b0",
        ),
        Merge(
            name=AVERAGE,
            head=None,
            missing="",
            label="average pooling (wˢ = 1/S)",
            help="average: wˢ = 1/S everywhere",
            phrase="average pooling (wˢ = 1/S)",
            formula="average pooling   g_c = sum_s (1/{S}) f^s_c",
            weights="weight $w^s = 1/S$",
            no_weights="",
            trust="",
            learned=False,
            colour="#dd8452",
        ),
        Merge(
            name=MAX,
            head=None,
            missing="",
            label="max pooling",
            help="max: per pixel and class, the largest score over scales",
            phrase="max pooling",
            formula="max pooling   g_c = max_s f^s_c   (per class; no weights shared across classes)",
            weights=None,
            no_weights="max pooling picks a scale per class, so no one weight per scale exists",
            trust="",
            learned=False,
            colour="#55a868",
        ),
        Merge(
            name=HIERARCHICAL,
            head=GATE_HEAD,
            missing=(
                "this model has no gate head for hierarchical attention "
                f"(it was not trained with merge '{HIERARCHICAL}')"
            ),
            label="hierarchical (Eq. 1 with the effective wˢ)",
            help=(
                "hierarchical (Tao et al. 2020): a chain of sigmoid gates between neighbouring scales; "
                "the maps show its effective weights"
            ),
            phrase="hierarchical attention (Tao et al. 2020: a chain of sigmoid gates, finest scale first)",
            formula="hierarchical   g_c = sum_s w^s f^s_c   (w^s: effective weights, products of the sigmoid gates)",
            weights="effective weight $w^s$ (gates)",
            no_weights="",
            trust="the gates trust",
            learned=True,
            colour="#c44e52",
        ),
    )
}

MERGE_NAMES = tuple(MERGES)
# The merges whose weights over scales the model learns (and sum to 1 at every pixel): Chen's softmax
# w^s and the effective weights of Tao et al.'s gate chain. Their weights are shown, ranked and
# summarised over objects; average pooling's are a constant 1/S, max pooling has none.
LEARNED_MERGES = tuple(name for name, merge in MERGES.items() if merge.learned)
HEADS = tuple(dict.fromkeys(merge.head for merge in MERGES.values() if merge.head is not None))
# What a merge is taken as when it is not known (the page before a model loads): the pooling.
FALLBACK_MERGE = AVERAGE


def merge_info(name: str) -> Merge:
    """The registry's entry for ``name``; ValueError naming the valid merges for anything else."""
    try:
        return MERGES[name]
    except KeyError:
        raise ValueError(f"unknown merge mode {name!r}; valid: {', '.join(MERGE_NAMES)}") from None


def head_of(name: str) -> MergeHead | None:
    """The head that merge ``name`` needs, or None."""
    return merge_info(name).head


def model_head(model) -> MergeHead | None:
    """The learned merge's head that ``model`` (a MultiScaleNet) carries, or None (a pooling-only model)."""
    return next((head for head in HEADS if getattr(model, head.attribute, None) is not None), None)


def merges_with(heads) -> tuple[str, ...]:
    """The merges a model with ``heads`` can do, in registry order."""
    present = set(heads)
    return tuple(name for name, merge in MERGES.items() if merge.head is None or merge.head in present)


def formula(name: str, num_scales: int) -> str:
    """The plain-text formula of merge ``name`` for ``num_scales`` scales."""
    return merge_info(name).formula.replace("{S}", str(num_scales))


def weighing_merge(merges) -> Merge:
    """The merge whose weights a figure of ``merges``' weights shows: the first learned one (a
    hierarchical-only model's are the effective weights of its gates, not a softmax attention's),
    else attention, whose name the figures have always used for weights over scales."""
    learned = [m for m in merges if m in LEARNED_MERGES]
    return MERGES[learned[0] if learned else ATTENTION]
