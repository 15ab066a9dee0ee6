"""Resizing between an image, its scaled copies and the stride-8 output grids.

One convention for segscale's own trunk: corners aligned (``align_corners=True``). DeepLab's grid puts
output cell k on input pixel 8k (3x3 pooling with padding 1: a 513-pixel side gives 65
cells covering pixels 0..512), so the first and last cells sit on the first and last pixels
of the image at every scale. Aligning corners when resizing keeps all scales registered on
the same image points; the other convention would shift the coarse scales by a few pixels.
torchvision's trunks resize as torchvision does (``align_corners=False``): each trunk's
convention is in :mod:`segscale.trunks`, and a model reads it as ``MultiScaleNet.align_corners``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

ALIGN_CORNERS = True


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H, W) of an image resized by ``scale``, rounded half up, at least 1 pixel."""
    return tuple(max(1, math.floor(side * scale + 0.5)) for side in size)  # type: ignore[return-value]


def grid_size(size: tuple[int, int], stride: int = 8) -> tuple[int, int]:
    """Output grid of a trunk with 3x3/stride-2/padding-1 pooling: ceil(side / stride)."""
    return tuple(-(-side // stride) for side in size)  # type: ignore[return-value]


def resize_bilinear(x: Tensor, size: tuple[int, int], align_corners: bool = ALIGN_CORNERS) -> Tensor:
    """(B, C, h, w) -> (B, C, *size), bilinear (corners aligned unless the trunk resizes otherwise,
    :mod:`segscale.trunks`); a no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def resize_labels(labels: Tensor, size: tuple[int, int], align_corners: bool = ALIGN_CORNERS) -> Tensor:
    """(B, H, W) integer labels -> (B, *size) by nearest neighbour, on the grid ``align_corners`` describes.

    Nearest, not bilinear, so that no label is invented at a boundary and the ignore value
    255 survives. Corners aligned, sample k of n lands on round(k (H-1) / (n-1)), matching
    :func:`resize_bilinear`; otherwise on the pixel under the cell's centre, floor((k + 1/2) H / n),
    as a network that resizes with half-pixel centres (torchvision's, the libraries') places its cells.
    """
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    indices = _aligned_indices if align_corners else _centred_indices
    rows = indices(labels.shape[-2], size[0], labels.device)
    cols = indices(labels.shape[-1], size[1], labels.device)
    return labels[..., rows[:, None], cols[None, :]]


def _centred_indices(source: int, target: int, device) -> Tensor:
    positions = (torch.arange(target, device=device, dtype=torch.float64) + 0.5) * (source / target)
    return positions.floor().long().clamp_(0, source - 1)


def _aligned_indices(source: int, target: int, device) -> Tensor:
    if target == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    positions = torch.arange(target, device=device, dtype=torch.float64) * ((source - 1) / (target - 1))
    return positions.round().long().clamp_(0, source - 1)
