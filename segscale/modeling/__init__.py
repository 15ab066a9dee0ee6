"""nn.Modules only: the trunk, the heads, the multi-scale wrapper and the fusion equations.

:func:`build_model` wires them from a :class:`~segscale.config.ModelConfig`; the trunks and
their builders are declared in :mod:`segscale.trunks` (a new trunk only has to map images to
features and say its ``out_channels`` and ``output_stride``). torchvision's segmentation
models come in through :mod:`.torchvision_trunks`, which splits each into a trunk and its own
score head; networks of other libraries (transformers, smp, a factory function) through
:mod:`.library_networks`.
"""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..merges import ATTENTION, HIERARCHICAL
from ..trunks import trunk_info
from .attention_heads import HierarchicalGateHead, PaperAttentionHead, ScaleSetError, SharedAttentionHead
from .fusion import hierarchical_chain, merge_score_maps, scale_attention_weights, weighted_sum_over_scales
from .multiscale import MultiScaleNet, MultiScaleOutput


def build_model(config: ModelConfig) -> MultiScaleNet:
    """A fresh (randomly initialised) model for ``config``.

    The attention head is built only for models whose merge mode is "attention", the gate
    head of Tao et al.'s chain only for "hierarchical" (its layers are the shared head's,
    with ``config.head``'s hidden channels, dropout and scale feature); a model trained with
    average or max pooling has neither.
    """
    # A torchvision or library network brings its own score head (its classifier or its logits).
    trunk, score_head = trunk_info(config.trunk.name).build(config)
    attention_head: nn.Module | None = None
    if config.merge == ATTENTION:
        if config.head.kind == "paper":
            attention_head = PaperAttentionHead(
                trunk.out_channels, config.head_hidden_channels, config.scales, config.head.dropout
            )
        else:
            attention_head = SharedAttentionHead(
                trunk.out_channels, config.head_hidden_channels, config.head.dropout, config.head.scale_feature
            )
    gate_head: nn.Module | None = None
    if config.merge == HIERARCHICAL:
        gate_head = HierarchicalGateHead(
            trunk.out_channels, config.head_hidden_channels, config.head.dropout, config.head.scale_feature
        )
    return MultiScaleNet(trunk, score_head, attention_head, config, gate_head=gate_head)


__all__ = [
    "HierarchicalGateHead",
    "MultiScaleNet",
    "MultiScaleOutput",
    "PaperAttentionHead",
    "ScaleSetError",
    "SharedAttentionHead",
    "build_model",
    "hierarchical_chain",
    "merge_score_maps",
    "scale_attention_weights",
    "weighted_sum_over_scales",
]
