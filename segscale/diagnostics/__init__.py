"""What the teaching and diagnostic views compute: one pixel's Eq. 1-2, merges side by side, scales over many images.

Three layers of looking inside a multi-scale prediction (Chen et al., CVPR 2016), one module each:

* :mod:`.grid` and :mod:`.pixel` -- one pixel: the stride-8 grid under the image, and
  :func:`pixel_breakdown`: the attention logits h^s, the softmax of Eq. 2 step by step, the
  scores f^s_c and their weighted sum g_c of Eq. 1, the winner of every scale and of every
  merge (attention, average and max pooling); for hierarchical attention, :mod:`.gates` writes
  out the chain of gates at the cell (:func:`gate_chain_at`);
* :mod:`.merges` -- one image: :func:`compare_merges`, the labels of every merge from one
  forward pass, where they disagree, and, given the ground truth, each one's IoU and error map;
* :mod:`.scales` -- many images: :func:`scale_diagnostics`, :func:`dataset_diagnostics` and
  :func:`image_diagnostics`, which scale the attention trusts, against object size and class
  (ScaleShapes, or a data set read from disk whose objects are its masks' regions, with ground
  truth; built from the scoring pass of :mod:`segscale.evaluation` that ``evaluate`` reports too)
  or per image (uploaded images, without);
* :mod:`.ablation` -- what each scale decides, from one pass's score maps: leave one scale
  out for any merge, max pooling's deciding scale, each scale's confidence;
* :mod:`.formatting` -- their numbers as terminal text, LaTeX and CSV.

Everything here is numpy in, frozen dataclasses out (picklable, so a page can cache them);
nothing imports Streamlit. Figures of these results live in :mod:`segscale.plots`.
``from segscale import diagnostics as diag; diag.pixel_breakdown(...)`` reaches every public name.
"""

from __future__ import annotations

from ..evaluation import ObjectRecord
from .ablation import (
    ABLATION_DEFINITION,
    CONFIDENCE_DEFINITION,
    MAX_DECIDING_NOTE,
    SINGLE_SCALE_ABLATION,
    PixelWithout,
    ScaleAblation,
    ScaleConfidence,
    deciding_scale_at,
    index_shares,
    max_deciding_scale,
    max_deciding_text,
    max_deciding_weights,
    pixel_without,
    scale_ablation,
    scale_confidence,
)
from .gates import EFFECTIVE_WEIGHTS_NOTE, WEIGHT_DIGITS, GateChain, gate_chain_at
from .grid import (
    cell_center,
    cell_footprint,
    cell_mean_colours,
    nearest_cell,
    nearest_cells,
    pixel_at_cell,
    salient_pixel,
)
from .merges import MergeComparison, MethodResult, available_merges, compare_merges
from .pixel import CellFusion, PixelBreakdown, SoftmaxSteps, pixel_breakdown
from .scales import (
    ImageAttentionRecord,
    ImageSetDiagnostics,
    ScaleDiagnostics,
    dataset_diagnostics,
    image_diagnostics,
    scale_diagnostics,
)

__all__ = [
    "ABLATION_DEFINITION",
    "CONFIDENCE_DEFINITION",
    "MAX_DECIDING_NOTE",
    "SINGLE_SCALE_ABLATION",
    "PixelWithout",
    "ScaleAblation",
    "ScaleConfidence",
    "deciding_scale_at",
    "index_shares",
    "max_deciding_scale",
    "max_deciding_text",
    "max_deciding_weights",
    "pixel_without",
    "scale_ablation",
    "scale_confidence",
    "EFFECTIVE_WEIGHTS_NOTE",
    "WEIGHT_DIGITS",
    "CellFusion",
    "GateChain",
    "ImageAttentionRecord",
    "ImageSetDiagnostics",
    "MergeComparison",
    "MethodResult",
    "ObjectRecord",
    "PixelBreakdown",
    "ScaleDiagnostics",
    "SoftmaxSteps",
    "available_merges",
    "cell_center",
    "cell_footprint",
    "cell_mean_colours",
    "compare_merges",
    "dataset_diagnostics",
    "gate_chain_at",
    "image_diagnostics",
    "nearest_cell",
    "nearest_cells",
    "pixel_at_cell",
    "salient_pixel",
    "pixel_breakdown",
    "scale_diagnostics",
]
