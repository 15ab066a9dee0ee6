"""Attention heads: fc7 features of every scale -> attention logits h^s (before the softmax).

The paper's head (Sec. 3.2) reads the fc7 features of all S scales at once and has S output
filters, one per scale, so it only fits the scale set it was trained on. The shared head
scores every scale on its own with the same weights, so one model fuses any scale set.
Both are two layers: 3x3 conv, ReLU, dropout, 1x1 conv.

The gate head of Tao et al.'s hierarchical attention has the shared head's form (one
channel per scale, same weights at every scale) but its logit q^s feeds a sigmoid gate
(:func:`segscale.modeling.fusion.hierarchical_chain`), not a softmax over scales.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import Tensor, nn

from ..config import normalize_scales
from ..merges import AVERAGE, MAX
from .geometry import resize_bilinear


class ScaleSetError(ValueError):
    """A model was asked for a scale set it cannot fuse."""


def _two_layer_head(in_channels: int, hidden_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    score = nn.Conv2d(hidden_channels, out_channels, 1)
    # Small initial logits: training starts from (almost) average pooling.
    nn.init.normal_(score.weight, std=0.01)
    nn.init.zeros_(score.bias)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(in_channels, hidden_channels, 3, padding=1)),
                ("relu", nn.ReLU(inplace=True)),
                ("dropout", nn.Dropout2d(dropout)),
                ("score", score),
            ]
        )
    )


def same_scale_set(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return sorted(a) == sorted(b)


class PaperAttentionHead(nn.Module):
    """Chen et al.'s head: concatenated features of the S trained scales -> S logit maps.

    Tied to its scale set: channel s of its input and output belongs to ``trained_scales[s]``.
    The same scales in another order are accepted and permuted; any other set is refused.
    """

    def __init__(self, feature_channels: int, hidden_channels: int, trained_scales, dropout: float = 0.5) -> None:
        super().__init__()
        self.trained_scales = normalize_scales(trained_scales)
        num_scales = len(self.trained_scales)
        self.layers = _two_layer_head(feature_channels * num_scales, hidden_channels, num_scales, dropout)

    def check_scales(self, scales: tuple[float, ...]) -> None:
        if not same_scale_set(scales, self.trained_scales):
            raise ScaleSetError(
                f"this model's attention head ('paper' kind) was trained for scales {list(self.trained_scales)} "
                f"and fuses only that set; got {list(scales)}. Use {list(self.trained_scales)}, merge with "
                f"{AVERAGE!r} or {MAX!r}, or load a checkpoint with a 'shared' head."
            )

    def forward(self, features: list[Tensor], scales: tuple[float, ...], grid: tuple[int, int]) -> Tensor:
        """features: per scale (B, F, h_s, w_s), in the order of ``scales`` -> logits (B, S, *grid)."""
        self.check_scales(scales)
        # As in the paper: every scale's features resized to the common grid, then concatenated
        # in the order the head was trained with.
        stacked = torch.cat([resize_bilinear(features[scales.index(s)], grid) for s in self.trained_scales], dim=1)
        logits_trained_order = self.layers(stacked)  # (B, S, h, w)
        back = [self.trained_scales.index(s) for s in scales]
        return logits_trained_order[:, back]


class SharedAttentionHead(nn.Module):
    """One head applied to every scale's own features, giving one logit map per scale.

    Each scale is scored on its own output grid and only the one-channel logit map is
    resized to the common grid: the same two layers as the paper's head, but the 3x3 conv
    runs on s^2 of the cells and no F-channel feature map is upsampled.

    With ``scale_feature`` the constant log2(s) is appended as an input channel: the same
    pattern means a different object size at scale 0.5 than at scale 2, and the head can use
    that to learn which resolution suits which size.
    """

    def __init__(
        self, feature_channels: int, hidden_channels: int, dropout: float = 0.5, scale_feature: bool = True
    ) -> None:
        super().__init__()
        self.scale_feature = scale_feature
        in_channels = feature_channels + (1 if scale_feature else 0)
        self.layers = _two_layer_head(in_channels, hidden_channels, 1, dropout)

    def check_scales(self, scales: tuple[float, ...]) -> None:
        """Any set of positive scales is fine."""

    def forward(self, features: list[Tensor], scales: tuple[float, ...], grid: tuple[int, int]) -> Tensor:
        """features: per scale (B, F, h_s, w_s), in the order of ``scales`` -> logits (B, S, *grid)."""
        logits = []
        for scale, feature in zip(scales, features):
            if self.scale_feature:
                scale_plane = torch.full_like(feature[:, :1], math.log2(scale))  # (B, 1, h_s, w_s)
                feature = torch.cat([feature, scale_plane], dim=1)
            logits.append(resize_bilinear(self.layers(feature), grid))  # (B, 1, h, w)
        return torch.cat(logits, dim=1)


class HierarchicalGateHead(SharedAttentionHead):
    """Tao et al.'s gate head: every scale's features -> one gate logit map q^s (B, 1, h_s, w_s).

    The layers are the shared head's, so it gates any scale set; only the reading differs:
    a^s = sigmoid(q^s) weighs scale s against the running prediction of the coarser scales.
    A separate class (and module attribute ``gate_head``) so that a model says by its parts
    which merges it can do: a gate head is no softmax attention head, and vice versa.
    """
