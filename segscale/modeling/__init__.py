"""nn.Modules only: the trunk, the heads, the multi-scale wrapper and the fusion equations.

:func:`build_model` wires them from a :class:`~segscale.config.ModelConfig`; the trunks are declared
in :mod:`segscale.trunks` and built here, by their kind (a new trunk only has to map images to
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
from .library_networks import build_library_parts
from .multiscale import MultiScaleNet, MultiScaleOutput
from .torchvision_trunks import build_torchvision_parts
from .vgg_largefov import VGG16LargeFOV, build_score_head


def build_trunk_and_score_head(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(trunk, score head) of ``config.trunk``, randomly initialised: segscale's LargeFOV with its own head, or a
    torchvision or library network split into its backbone and its classifier or logits."""
    trunk = trunk_info(config.trunk.name)
    if trunk.library:
        return build_library_parts(config)
    if trunk.torchvision is not None:
        return build_torchvision_parts(config)
    largefov = VGG16LargeFOV(config.trunk)
    return largefov, build_score_head(largefov.out_channels, config.num_classes, config.trunk.dropout)


def build_model(config: ModelConfig) -> MultiScaleNet:
    """A fresh (randomly initialised) model for ``config``.

    The attention head is built only for models whose merge mode is "attention", the gate
    head of Tao et al.'s chain only for "hierarchical" (its layers are the shared head's,
    with ``config.head``'s hidden channels, dropout and scale feature); a model trained with
    average or max pooling has neither.
    """
    # A torchvision or library network brings its own score head (its classifier or its logits).
    trunk, score_head = build_trunk_and_score_head(config)
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
    "build_trunk_and_score_head",
    "hierarchical_chain",
    "merge_score_maps",
    "scale_attention_weights",
    "weighted_sum_over_scales",
]
