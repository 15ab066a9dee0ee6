"""The share-net: one trunk run at several input scales, its score maps merged over scales.

Chen et al. (CVPR 2016), Sec. 3.2 and Fig. 3: the image is resized to every scale s, one
fully convolutional network with shared weights gives features and a score map f^s per
scale, every f^s is resized (bilinear) to the grid of the finest scale, and an attention
head weights them (Eq. 1-2, in :mod:`segscale.modeling.fusion`). With merge "hierarchical" a
gate head instead gives one sigmoid gate per scale, chained from the finest scale down (Tao
et al. 2020, also in :mod:`segscale.modeling.fusion`).

The wrapper builds nothing: it is handed a trunk, a score head and an attention head, and
its ``forward`` only loops over scales and fuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig, normalize_scales
from ..merges import ATTENTION, AVERAGE, HIERARCHICAL, MAX
from ..trunks import trunk_info
from .attention_heads import ScaleSetError
from .fusion import merge_score_maps
from .geometry import resize_bilinear, scaled_size


@dataclass(frozen=True)
class MultiScaleOutput:
    """Everything one forward pass gives, in training and inference alike.

    Shapes: B images, S scales, C classes, (h, w) the common grid (the trunk's output grid
    at the largest scale of the set), (h_s, w_s) scale s's own grid.

    Attributes:
        scales: the S scales, in the order of every S axis below.
        merge: how ``fused`` was formed: "attention", "hierarchical", "average" or "max".
        native_score_maps: S tensors (B, C, h_s, w_s), f^s on its own grid (for extra supervision).
        score_maps: (B, S, C, h, w), f^s on the common grid; float32 (from here on, Eq. 1-2
            run in float32 even under autocast).
        attention_logits: (B, S, h, w), h^s, float32; None unless merge is "attention".
        attention: (B, S, h, w), w^s; 1/S for "average"; for "hierarchical" the effective
            weights of the gate chain (products of gates, summing to 1 on the grid); None for "max".
        fused: (B, C, h, w), g of Eq. 1.
        gate_logits: (B, S, h, w), q^s of the gate head, float32; None unless merge is
            "hierarchical" (the finest scale's gate is computed but unused).
    """

    scales: tuple[float, ...]
    merge: str
    native_score_maps: tuple[Tensor, ...]
    score_maps: Tensor
    attention_logits: Tensor | None
    attention: Tensor | None
    fused: Tensor
    gate_logits: Tensor | None = None

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.fused.shape[-2:])  # type: ignore[return-value]


class MultiScaleNet(nn.Module):
    """trunk + score head, shared over scales, and an optional attention head.

    Args:
        trunk: images (B, 3, H, W) -> features (B, F, h, w); has ``out_channels`` and ``output_stride``.
            A trunk may instead return a dict of named feature maps (torchvision's backbones):
            then the score head gets the whole dict, and the attention head the map named by
            the trunk's ``last_feature``.
        score_head: the trunk's output -> score map (B, C, h, w).
        attention_head: per-scale features -> logits (B, S, h, w); None for a model that only
            averages or max-pools.
        config: the :class:`ModelConfig` the parts were built from (default scales and merge).
        gate_head: per-scale features -> gate logits (B, S, h, w) for merge "hierarchical"; None
            for a model without Tao et al.'s gates.
    """

    def __init__(
        self,
        trunk: nn.Module,
        score_head: nn.Module,
        attention_head: nn.Module | None,
        config: ModelConfig,
        *,
        gate_head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.score_head = score_head
        self.attention_head = attention_head
        self.gate_head = gate_head
        self.config = config
        # How images and score maps are resized around this trunk (segscale.trunks).
        self.align_corners = trunk_info(config.trunk.name).align_corners
        self.share_net_frozen = False

    def freeze_share_net(self) -> MultiScaleNet:
        """Fix the trunk and the score head: no gradients, eval mode (batch norm, dropout) even in ``train()``.

        For training only the attention head on a trained network: its score maps are then
        the network's inference-time ones, and the trunk costs what inference costs.
        """
        for part in (self.trunk, self.score_head):
            for parameter in part.parameters():
                parameter.requires_grad_(False)
        self.share_net_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> MultiScaleNet:
        super().train(mode)
        if self.share_net_frozen:
            self.trunk.eval()
            self.score_head.eval()
        return self

    def check_scales(self, scales, merge: str | None = None) -> tuple[float, ...]:
        """The scale set as a normalized tuple, or an error saying which sets this model fuses."""
        scales = self.config.scales if scales is None else normalize_scales(scales)
        merge = self.config.merge if merge is None else merge
        if merge == ATTENTION:
            if self.attention_head is None:
                raise ScaleSetError(
                    f"this model was trained with {self.config.merge!r} merging and has no attention head; "
                    f"use merge={AVERAGE!r} or {MAX!r}"
                )
            self.attention_head.check_scales(scales)
        if merge == HIERARCHICAL and self.gate_head is None:
            raise ScaleSetError(
                f"this model was trained with {self.config.merge!r} merging and has no gate head for "
                f"hierarchical attention; use a checkpoint trained with merge={HIERARCHICAL!r}, or another merge"
            )
        return scales

    def forward(self, images: Tensor, scales=None, merge: str | None = None) -> MultiScaleOutput:
        """images: (B, 3, H, W), normalized. scales: None for the
        configured set. merge: None for the configured mode."""
        merge = self.config.merge if merge is None else merge
        scales = self.check_scales(scales, merge)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
        input_size = tuple(images.shape[-2:])

        features, native_scores = [], []
        # A frozen share-net runs without autograd: memory and time of inference, plus the head.
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.share_net_frozen):
            for scale in scales:
                resized = resize_bilinear(
                    images, scaled_size(input_size, scale), self.align_corners
                )  # (B, 3, H_s, W_s)
                trunk_output = self.trunk(resized)
                if isinstance(trunk_output, Mapping):  # named feature maps: the last one is the attention head's
                    features.append(trunk_output[self.trunk.last_feature])  # (B, F, h'_s, w'_s)
                else:
                    features.append(trunk_output)  # (B, F, h_s, w_s)
                native_scores.append(self.score_head(trunk_output))  # (B, C, h_s, w_s)

        largest = max(range(len(scales)), key=lambda k: scales[k])
        grid = tuple(native_scores[largest].shape[-2:])
        # Eq. 1-2 in float32 even when the trunk ran in bf16 under autocast: the maps are only
        # grid-sized, and so the weights sum to 1 and g is their weighted sum to float32 precision.
        score_maps = torch.stack(
            [resize_bilinear(s, grid, self.align_corners).float() for s in native_scores], dim=1
        )  # (B, S, C, h, w)

        logits = self.attention_head(features, scales, grid).float() if merge == ATTENTION else None  # (B, S, h, w)
        gate_logits = self.gate_head(features, scales, grid).float() if merge == HIERARCHICAL else None  # (B, S, h, w)
        fused, weights = merge_score_maps(score_maps, merge, logits, gate_logits=gate_logits, scales=scales)
        return MultiScaleOutput(
            scales=scales,
            merge=merge,
            native_score_maps=tuple(native_scores),
            score_maps=score_maps,
            attention_logits=logits,
            attention=weights,
            fused=fused,
            gate_logits=gate_logits,
        )
