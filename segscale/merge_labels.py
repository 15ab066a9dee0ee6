"""Labels at image resolution for any merge mode, from one prediction's score maps.

Scoring (segscale.evaluation) and the diagnostics that compare merges both derive every merge's labels
from one forward pass; they share this function, which reads nothing but arrays, so neither has to import
the other for it.
"""

from __future__ import annotations

import numpy as np
import torch

from .modeling.fusion import merge_score_maps
from .modeling.geometry import ALIGN_CORNERS, resize_bilinear


def labels_for_merge(
    score_maps: np.ndarray,
    attention_logits: np.ndarray | None,
    merge: str,
    size,
    *,
    gate_logits: np.ndarray | None = None,
    scales=None,
    align_corners: bool = ALIGN_CORNERS,
) -> np.ndarray:
    """Labels at image resolution for one merge mode, from one prediction's (S, C, h, w) score maps.

    Lets one forward pass serve every merge mode: they differ only in Eq. 1's weights.
    "hierarchical" needs the prediction's (S, h, w) gate logits and its scales.
    """
    logits = None if attention_logits is None else torch.from_numpy(attention_logits)[None]
    gates = None if gate_logits is None else torch.from_numpy(gate_logits)[None]
    fused, _ = merge_score_maps(torch.from_numpy(score_maps)[None], merge, logits, gate_logits=gates, scales=scales)
    return resize_bilinear(fused, tuple(size), align_corners).argmax(dim=1)[0].numpy()
