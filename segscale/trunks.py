"""The share-net trunks, each declared once: how it is built, its stride, its name, how it resizes.

A trunk maps an image to features; with its score head it is the share-net that runs at
every scale. segscale's own DeepLab-LargeFOV (the paper's network) and torchvision's semantic
segmentation models (imported with their published weights) and whole networks from other
libraries (transformers, smp, a factory function) are listed here; the config's
choices, the model builder, the layer table, the diagram and the import commands read them.
Nothing here imports torch or builds a model: :func:`segscale.modeling.build_model` builds each trunk from
its entry, so the modules that build them may read this registry without it reaching back to them.

``align_corners`` is how images, score maps and labels are resized around a model with this
trunk. DeepLab's grid puts output cell k on input pixel 8k, so LargeFOV aligns corners (see
:mod:`segscale.modeling.geometry`); torchvision's models were trained and are published with
``align_corners=False`` in their own final upsample, so their share-nets resize that way, and
at the single scale {1} a share-net's labels are those of torchvision's ``model(x)["out"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

LARGEFOV = "vgg16_largefov"


@dataclass(frozen=True)
class TorchvisionKind:
    """What segscale needs to know about one torchvision segmentation model.

    last_feature: the backbone's last feature map, read by the attention heads.
    out_channels, output_stride: that map's channels and stride (checked against a forward
        pass in the tests).
    classifier_reads_all: the classifier takes the whole feature dict (LR-ASPP: "low" and "high").
    has_aux_classifier: torchvision's builder adds an auxiliary classifier when it loads the
        published weights, so their state dict holds ``aux_classifier.*`` keys (ignored here).
    score_stride: the stride of the score map, when it is not ``output_stride`` (LR-ASPP's
        classifier ends on its stride-8 "low" features).
    """

    last_feature: str
    out_channels: int
    output_stride: int
    classifier_reads_all: bool = False
    has_aux_classifier: bool = True
    score_stride: int | None = None

    @property
    def score_map_stride(self) -> int:
        """Input pixels between neighbouring cells of the score map f^s."""
        return self.score_stride or self.output_stride


@dataclass(frozen=True)
class Trunk:
    """One trunk.

    name: its key in configs, checkpoints and flags.
    display: how the model diagram names it (two short lines fit its box).
    score_map_stride: input pixels between cells of its score map f^s (LargeFOV's is also
        computed from its layers by :mod:`segscale.architecture`); 0 for a library network,
        whose stride is its network's own: :func:`score_map_stride_of` reads it from the config.
    align_corners: how images and maps are resized around it (see the module docstring).
    torchvision: torchvision's model facts; None for segscale's own trunk. A torchvision
        network branches (residual blocks, ASPP), so no receptive field is computed for it.
    library: a whole network imported from another library (transformers, smp, a factory
        function); its config records what rebuilds it and the stride of its logits, which are
        its score maps (at the input's size where the input must be padded).
    """

    name: str
    display: str
    score_map_stride: int
    align_corners: bool
    torchvision: TorchvisionKind | None = None
    library: bool = False

    @property
    def branched(self) -> bool:
        return self.torchvision is not None or self.library


def _torchvision_trunk(name: str, display: str, kind: TorchvisionKind) -> Trunk:
    return Trunk(name, display, kind.score_map_stride, align_corners=False, torchvision=kind)


TRUNKS: dict[str, Trunk] = {
    trunk.name: trunk
    for trunk in (
        Trunk(LARGEFOV, "DeepLab\nLargeFOV", 8, align_corners=True),
        _torchvision_trunk("deeplabv3_resnet50", "DeepLabV3\nResNet-50", TorchvisionKind("out", 2048, 8)),
        _torchvision_trunk("deeplabv3_resnet101", "DeepLabV3\nResNet-101", TorchvisionKind("out", 2048, 8)),
        _torchvision_trunk("deeplabv3_mobilenet_v3_large", "DeepLabV3\nMobileNetV3", TorchvisionKind("out", 960, 16)),
        _torchvision_trunk("fcn_resnet50", "FCN\nResNet-50", TorchvisionKind("out", 2048, 8)),
        _torchvision_trunk("fcn_resnet101", "FCN\nResNet-101", TorchvisionKind("out", 2048, 8)),
        _torchvision_trunk(
            "lraspp_mobilenet_v3_large",
            "LR-ASPP\nMobileNetV3",
            TorchvisionKind("high", 960, 16, classifier_reads_all=True, has_aux_classifier=False, score_stride=8),
        ),
        # Whole networks from another library, named by the library; TrunkConfig.network says which one.
        # They resize with align_corners=False, as their libraries' post-processing does; their
        # stride is each network's own (0 here: see score_map_stride_of).
        Trunk("transformers", "transformers\nnetwork", 0, align_corners=False, library=True),
        Trunk("smp", "smp\nnetwork", 0, align_corners=False, library=True),
        Trunk("factory", "factory\nnetwork", 0, align_corners=False, library=True),
    )
}

TRUNK_NAMES = tuple(TRUNKS)
# torchvision's semantic segmentation models, imported as share-nets (segscale.modeling.torchvision_trunks).
TORCHVISION_TRUNKS = tuple(name for name, trunk in TRUNKS.items() if trunk.torchvision is not None)
# Networks imported whole from another library (segscale.modeling.library_networks).
LIBRARY_TRUNKS = tuple(name for name, trunk in TRUNKS.items() if trunk.library)


def trunk_info(name: str) -> Trunk:
    """The registry's entry for ``name``; ValueError naming the valid trunks for anything else."""
    try:
        return TRUNKS[name]
    except KeyError:
        raise ValueError(f"unknown trunk {name!r}; valid: {', '.join(TRUNK_NAMES)}") from None


def score_map_stride_of(config) -> int | None:
    """Input pixels between cells of the score map of a model with this :class:`~segscale.config.ModelConfig`.

    The registry's stride; for a library network the one its record holds (measured from the
    network's output when it was imported, :mod:`segscale.modeling.library_networks`), None
    for a record written before strides were recorded. Reads the config only: no model is built.
    """
    trunk = trunk_info(config.trunk.name)
    if not trunk.library:
        return trunk.score_map_stride
    try:
        stride = json.loads(config.trunk.network).get("output_stride")
    except (ValueError, AttributeError):
        return None
    return stride if isinstance(stride, int) and stride > 0 else None
