"""torchvision's semantic segmentation models as the share-net:
their backbone is the trunk, their classifier the score head.

torchvision builds each model (``torchvision.models.get_model``); nothing here reimplements
a layer. A torchvision segmentation model is ``backbone`` (an ``IntermediateLayerGetter``
returning a dict of named feature maps), ``classifier`` (features -> scores) and an optional
``aux_classifier``. :func:`build_torchvision_parts` keeps the first two and drops the third
(it only adds a training loss):

* :class:`TorchvisionTrunk` wraps the backbone and returns its feature dict unchanged;
  ``last_feature`` names the map the attention heads read (the backbone's last one);
* :class:`TorchvisionScoreHead` wraps the classifier; LR-ASPP's reads the whole dict (its
  "low" and "high" features), FCN's and DeepLabV3's the "out" map.

At one scale, the share-net's score map is exactly ``model(x)["out"]`` before its final
upsample (tests/test_torchvision.py checks it for every kind). Parameter names stay
torchvision's under ``trunk.backbone.`` and ``score_head.classifier.``, so
:func:`segscale_state_from_torchvision` maps a torchvision state dict by prefix alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from ..config import ModelConfig
from ..trunks import TORCHVISION_TRUNKS, TRUNKS, TorchvisionKind

# Each torchvision kind's facts, from the trunk registry (segscale.trunks).
KINDS: dict[str, TorchvisionKind] = {name: TRUNKS[name].torchvision for name in TORCHVISION_TRUNKS}


def torchvision_kind(name: str) -> TorchvisionKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown torchvision kind {name!r}; valid: {', '.join(KINDS)}") from None


class TorchvisionTrunk(nn.Module):
    """A torchvision backbone: images (B, 3, H, W) -> its named feature maps, e.g. {"out": (B, 2048, H/8, W/8)}."""

    def __init__(self, backbone: nn.Module, kind: TorchvisionKind) -> None:
        super().__init__()
        self.backbone = backbone
        self.last_feature = kind.last_feature
        self.out_channels = kind.out_channels
        self.output_stride = kind.output_stride

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return dict(self.backbone(images))


class TorchvisionScoreHead(nn.Module):
    """A torchvision classifier: the trunk's feature dict -> score map f^s (B, C, h, w), before softmax."""

    def __init__(self, classifier: nn.Module, reads_all_features: bool) -> None:
        super().__init__()
        self.classifier = classifier
        self.reads_all_features = reads_all_features

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        return self.classifier(features if self.reads_all_features else features["out"])


def build_torchvision_model(name: str, num_classes: int, *, aux_classifier: bool = False) -> nn.Module:
    """torchvision's own model of kind ``name``, randomly initialised (no download of any weights)."""
    from torchvision.models import get_model

    kind = torchvision_kind(name)
    return get_model(
        name,
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        aux_loss=aux_classifier and kind.has_aux_classifier,
    )


def build_torchvision_parts(config: ModelConfig) -> tuple[TorchvisionTrunk, TorchvisionScoreHead]:
    """(trunk, score head) of the torchvision model ``config.trunk.name``, randomly initialised."""
    kind = torchvision_kind(config.trunk.name)
    model = build_torchvision_model(config.trunk.name, config.num_classes)
    return TorchvisionTrunk(model.backbone, kind), TorchvisionScoreHead(model.classifier, kind.classifier_reads_all)


# torchvision state dict prefix -> the share-net's; "aux_classifier." is left out on purpose.
_PREFIXES = {"backbone.": "trunk.backbone.", "classifier.": "score_head.classifier."}


def segscale_state_from_torchvision(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A torchvision segmentation model's state dict, renamed for the share-net (aux classifier dropped)."""
    renamed = {}
    for key, value in state_dict.items():
        for old, new in _PREFIXES.items():
            if key.startswith(old):
                renamed[new + key[len(old) :]] = value
                break
    return renamed
