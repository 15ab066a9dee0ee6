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

from .config import IGNORE_INDEX
from .modeling.geometry import resize_labels
from .modeling.multiscale import MultiScaleOutput


@dataclass(frozen=True)
class LossTerms:
    """total = fused + sum(per_scale); per_scale is empty without extra supervision."""

    total: Tensor
    fused: Tensor
    per_scale: tuple[Tensor, ...]


def segmentation_cross_entropy(
    scores: Tensor,
    labels: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Tensor | None = None,
    hard_pixel_fraction: float = 1.0,
    align_corners: bool = True,
) -> Tensor:
    """Mean cross-entropy over labelled pixels; the labels (B, H, W) are resized to the scores' grid.

    Resizing is nearest neighbour (:func:`resize_labels`) on the grid the model's trunk uses
    (``align_corners``: corners aligned for DeepLab-LargeFOV, as DeepLab subsampled its ground
    truth; half-pixel centres for torchvision's and the libraries' networks): no label is blended
    or invented. A batch with no labelled pixel gives a zero loss (connected to the graph) instead of NaN.

    Two optional remedies for a background that covers most pixels (a network trained from
    scratch otherwise settles on "everything is background"):
    class_weights: (C,) weight of each class's pixels, normalised by the weights' sum.
    hard_pixel_fraction: below 1, online hard example mining: only that fraction of the
        labelled pixels with the highest loss count.
    """
    labels = resize_labels(labels, tuple(scores.shape[-2:]), align_corners).long()
    per_pixel = F.cross_entropy(scores.float(), labels, ignore_index=ignore_index, reduction="none")  # (B, h, w)
    valid = labels != ignore_index
    weights = valid.float()
    if class_weights is not None:
        weights = weights * class_weights.to(per_pixel.device)[labels.clamp(max=len(class_weights) - 1)]
    if hard_pixel_fraction < 1.0:
        losses = per_pixel[valid]
        keep = max(1, int(losses.numel() * hard_pixel_fraction))
        if losses.numel() == 0:
            return per_pixel.sum() * 0.0
        return losses.topk(keep, sorted=False).values.mean()
    return (per_pixel * weights).sum() / weights.sum().clamp(min=1e-6)


def extra_supervision_loss(
    output: MultiScaleOutput,
    labels: Tensor,
    *,
    extra_supervision: bool = True,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Tensor | None = None,
    hard_pixel_fraction: float = 1.0,
    align_corners: bool = True,
) -> LossTerms:
    """Cross-entropy on the fused output, plus one per scale on its own grid when ``extra_supervision``.

    Args:
        output: the model's output for a batch.
        labels: (B, H, W) integer labels at input resolution, ``ignore_index`` where unlabelled.
        class_weights, hard_pixel_fraction, align_corners: see :func:`segmentation_cross_entropy`.
    """
    options = dict(
        ignore_index=ignore_index,
        class_weights=class_weights,
        hard_pixel_fraction=hard_pixel_fraction,
        align_corners=align_corners,
    )
    fused = segmentation_cross_entropy(output.fused, labels, **options)
    per_scale: tuple[Tensor, ...] = ()
    if extra_supervision:
        per_scale = tuple(segmentation_cross_entropy(s, labels, **options) for s in output.native_score_maps)
    total = fused + sum(per_scale, torch.zeros((), device=fused.device))
    return LossTerms(total=total, fused=fused, per_scale=per_scale)
