"""Training losses, computed outside the model from its :class:`MultiScaleOutput`.

Extra supervision (E-Supv, Chen et al. Sec. 4): besides the loss on the fused output g, one
cross-entropy loss on each scale's own score map f^s, so that every scale learns to
segment on its own and the attention head has meaningful maps to choose between.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .modeling.geometry import resize_labels
from .modeling.multiscale import MultiScaleOutput

IGNORE_INDEX = 255  # PASCAL VOC's "void": borders and padding, counted in no loss and no metric


@dataclass(frozen=True)
class LossTerms:
    """total = fused + sum(per_scale); per_scale is empty without extra supervision."""

    total: Tensor
    fused: Tensor
    per_scale: tuple[Tensor, ...]


def segmentation_cross_entropy(scores: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean cross-entropy over labelled pixels; the labels (B, H, W) are resized to the scores' grid.

    Resizing is nearest neighbour on the aligned-corner grid (:func:`resize_labels`), as
    DeepLab subsampled its ground truth: no label is blended or invented. A batch with no
    labelled pixel gives a zero loss (connected to the graph) instead of NaN.
    """
    labels = resize_labels(labels, tuple(scores.shape[-2:])).long()
    total = F.cross_entropy(scores.float(), labels, ignore_index=ignore_index, reduction="sum")
    count = (labels != ignore_index).sum().clamp(min=1)
    return total / count


def extra_supervision_loss(
    output: MultiScaleOutput, labels: Tensor, *, extra_supervision: bool = True, ignore_index: int = IGNORE_INDEX
) -> LossTerms:
    """Cross-entropy on the fused output, plus one per scale on its own grid when ``extra_supervision``.

    Args:
        output: the model's output for a batch.
        labels: (B, H, W) integer labels at input resolution, ``ignore_index`` where unlabelled.
    """
    fused = segmentation_cross_entropy(output.fused, labels, ignore_index)
    per_scale: tuple[Tensor, ...] = ()
    if extra_supervision:
        per_scale = tuple(segmentation_cross_entropy(s, labels, ignore_index) for s in output.native_score_maps)
    total = fused + sum(per_scale, torch.zeros((), device=fused.device))
    return LossTerms(total=total, fused=fused, per_scale=per_scale)
