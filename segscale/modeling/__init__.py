"""nn.Modules only: the trunk, the heads, the multi-scale wrapper and the fusion equations.

:func:`build_model` wires them from a :class:`~segscale.config.ModelConfig`; ``TRUNKS`` is
the registry of trunk builders (a new trunk only has to map images to features and say
its ``out_channels`` and ``output_stride``). torchvision's segmentation models come in through
:mod:`.torchvision_trunks`, which splits each into a trunk and its own score head; networks of
other libraries (transformers, smp, a factory function) through :mod:`.library_networks`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..config import LIBRARY_TRUNKS, TORCHVISION_TRUNKS, ModelConfig, TrunkConfig
from .attention_heads import HierarchicalGateHead, PaperAttentionHead, ScaleSetError, SharedAttentionHead
from .fusion import hierarchical_chain, merge_score_maps, scale_attention_weights, weighted_sum_over_scales
from .multiscale import MultiScaleNet, MultiScaleOutput
from .torchvision_trunks import build_torchvision_parts
from .vgg_largefov import VGG16LargeFOV, build_score_head

TRUNKS: dict[str, Callable[[TrunkConfig], nn.Module]] = {
    "vgg16_largefov": VGG16LargeFOV,
}


def build_trunk(config: TrunkConfig) -> nn.Module:
    try:
        builder = TRUNKS[config.name]
    except KeyError:
        raise ValueError(f"unknown trunk {config.name!r}; valid: {', '.join(sorted(TRUNKS))}") from None
    return builder(config)


def build_model(config: ModelConfig) -> MultiScaleNet:
    """A fresh (randomly initialised) model for ``config``.

    The attention head is built only for models whose merge mode is "attention", the gate
    head of Tao et al.'s chain only for "hierarchical" (its layers are the shared head's,
    with ``config.head``'s hidden channels, dropout and scale feature); a model trained with
    average or max pooling has neither.
    """
    if config.trunk.name in TORCHVISION_TRUNKS:
        # torchvision's model brings its own score head (its classifier).
        trunk, score_head = build_torchvision_parts(config)
    elif config.trunk.name in LIBRARY_TRUNKS:
        # A whole network from transformers, smp or a factory; imported here, not at module import.
        from .library_networks import build_library_parts

        trunk, score_head = build_library_parts(config)
    else:
        trunk = build_trunk(config.trunk)
        score_head = build_score_head(trunk.out_channels, config.num_classes, config.trunk.dropout)
    attention_head: nn.Module | None = None
    if config.merge == "attention":
        if config.head.kind == "paper":
            attention_head = PaperAttentionHead(
                trunk.out_channels, config.head_hidden_channels, config.scales, config.head.dropout
            )
        else:
            attention_head = SharedAttentionHead(
                trunk.out_channels, config.head_hidden_channels, config.head.dropout, config.head.scale_feature
            )
    gate_head: nn.Module | None = None
    if config.merge == "hierarchical":
        gate_head = HierarchicalGateHead(
            trunk.out_channels, config.head_hidden_channels, config.head.dropout, config.head.scale_feature
        )
    return MultiScaleNet(trunk, score_head, attention_head, config, gate_head=gate_head)


__all__ = [
    "TRUNKS",
    "HierarchicalGateHead",
    "MultiScaleNet",
    "MultiScaleOutput",
    "PaperAttentionHead",
    "ScaleSetError",
    "SharedAttentionHead",
    "build_model",
    "build_trunk",
    "hierarchical_chain",
    "merge_score_maps",
    "scale_attention_weights",
    "weighted_sum_over_scales",
]
