"""What a model is built of: its layers, their receptive field, and the totals.

For the "How it works" view and its command-line twin (``segscale describe``):
:func:`architecture_summary` walks a :class:`~segscale.modeling.MultiScaleNet` -- trunk, score
head, attention head -- and lists every layer with its geometry, parameters and the receptive
field and jump (effective stride) after it. What a checkpoint says about its training, and the
checkpoint files on disk, are :mod:`segscale.checkpoint_cards`'.

Receptive field. Along one axis, with r the receptive field (input pixels one output cell
sees) and j the jump (input pixels between neighbouring output cells), a layer of kernel k,
dilation d, stride s and padding p maps

    k_eff = d (k - 1) + 1
    r_out = r_in + (k_eff - 1) j_in
    j_out = j_in s
    c_out = c_in + ((k_eff - 1) / 2 - p) j_in      (the input coordinate output cell 0 is centred on)

starting from r = j = 1, c = 0 at the input. Padding moves the field but never changes its
size. Every layer of DeepLab-LargeFOV pads symmetrically (p = (k_eff - 1) / 2), so c stays 0:
output cell k is centred on input pixel 8k, the geometry :mod:`segscale.modeling.geometry`
assumes. Only convolutions and pooling change r, j or c; activations, normalisation and
dropout act per position.

Branched trunks. The recursion holds for a chain of layers. torchvision's networks branch
(residual blocks, ASPP's parallel rates and its image-pooling branch, LR-ASPP's two inputs),
so walking their modules in order would add up layers that run side by side. For them the
output stride is read from the trunk registry (:mod:`segscale.modeling.torchvision_trunks`),
and the receptive field is not computed (None, shown as :data:`NOT_COMPUTED_BRANCHED`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .formatting import format_fraction
from .merges import ATTENTION_HEAD, GATE_HEAD, HEADS, model_head
from .trunks import trunk_info

__all__ = [
    "ArchitectureSummary",
    "LayerRow",
    "architecture_summary",
    "head_features",
    "paper_model_summary",
]

PARTS = ("trunk", "score head", "attention head")
NOT_COMPUTED_BRANCHED = "not computed: branched network"  # the receptive field of a torchvision trunk


@dataclass(frozen=True)
class LayerRow:
    """One layer, with the receptive field and jump of its output.

    part: "trunk", "score head" or "attention head". name: the layer's name in its part
    ("conv1_1", "pool1", "fc8", "conv"). kind: "conv", "atrous conv", "max pool", "ReLU", ...
    kernel, stride, dilation, padding: along one axis (every layer here is square); None for
    layers that act per position. in_channels, out_channels: None where they do not apply.
    parameters: weights and biases of this layer alone.
    receptive_field, jump, center: r, j and c after the layer (see the module docstring), in
    pixels of the input image at the scale it is fed (attention head: continuing from fc7);
    None in a branched network, where layers in module order are not a chain.
    """

    part: str
    name: str
    kind: str
    kernel: int | None
    stride: int | None
    dilation: int | None
    padding: int | None
    in_channels: int | None
    out_channels: int | None
    parameters: int
    receptive_field: int | None
    jump: int | None
    center: float | None

    @property
    def is_spatial(self) -> bool:
        """True for the layers that set the geometry (convolutions and pooling)."""
        return self.kernel is not None


@dataclass(frozen=True)
class ArchitectureSummary:
    """A model's layers in order and its totals.

    layers: every leaf layer of the trunk, the score head and the merge's head (the attention head
        or the gate head of hierarchical attention), if any.
    parameters: per part, {"trunk": ..., "score head": ..., "attention head": ...} (0 without a head),
        and "gate head" for a model that has one.
    output_stride: input pixels between cells of the score map f^s: the trunk's jump at fc7 (8 for
        DeepLab-LargeFOV); for a torchvision trunk, its registry's (8 for DeepLabV3-ResNet50); for a
        library network, its logits' stride, measured at import (4 for SegFormer).
    receptive_field: pixels one cell of the score map f^s sees (the trunk's, since fc8 is 1x1);
        None for a branched network (see the module docstring).
    attention_receptive_field: pixels one logit of the merge's head (h^s, or a gate's q^s) sees;
        None without a head or for a branched network.
    center_offset: the input coordinate output cell 0 is centred on (0: cell k on pixel k x stride);
        None for a branched network.
    trunk, width, norm, head_kind, merge, scales, num_classes, feature_channels: from the config;
        head_kind is None without a head ("shared" for a gate head, which scores each scale alone).
    head: the name of the merge's head ("attention head", "gate head"), or None.
    """

    layers: tuple[LayerRow, ...]
    parameters: dict[str, int]
    output_stride: int
    receptive_field: int | None
    attention_receptive_field: int | None
    center_offset: float | None
    trunk: str
    width: float
    norm: str
    head_kind: str | None
    head: str | None
    merge: str
    scales: tuple[float, ...]
    num_classes: int
    feature_channels: int

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())

    @property
    def branched(self) -> bool:
        """A torchvision trunk: its layers run in parallel branches, so no receptive field is computed."""
        return trunk_info(self.trunk).branched

    def receptive_field_at_scale(self, scale: float) -> float | None:
        """The receptive field in pixels of the *original* image when the network sees it at ``scale``.

        The same network on an image shrunk by s sees 1/s times more of the original: the
        reason coarse scales help with large objects. None when it is not computed.
        """
        return None if self.receptive_field is None else self.receptive_field / scale

    def rows(self, spatial_only: bool = False) -> list[dict]:
        """The layer table as flat dicts (for st.dataframe); ``spatial_only`` keeps convolutions and pooling."""
        return [
            {
                "part": row.part,
                "layer": row.name,
                "kind": row.kind,
                "kernel": row.kernel,
                "stride": row.stride,
                "dilation": row.dilation,
                "padding": row.padding,
                "in": row.in_channels,
                "out": row.out_channels,
                "parameters": row.parameters,
                "receptive field": row.receptive_field,
                "jump": row.jump,
            }
            for row in self.layers
            if row.is_spatial or not spatial_only
        ]

    def totals(self) -> list[tuple[str, str]]:
        """(field, value) pairs of the totals, in words."""
        if self.branched:
            trunk = f"{self.trunk} (torchvision's backbone), {self.feature_channels} channels in its last feature map"
        else:
            width = format_fraction(self.width)
            trunk = f"{self.trunk}, width {width}, norm {self.norm}, {self.feature_channels} fc7 channels"
        if self.head is None:
            head = (ATTENTION_HEAD.name, f"none (merges by {self.merge})")
        elif self.head == GATE_HEAD.name:
            head = (self.head, f"one head at every scale, a sigmoid gate logit per scale and cell ({self.merge} merge)")
        else:
            head = (self.head, self.head_kind)
        pairs = [
            ("trunk", trunk),
            head,
            ("parameters", f"{self.total_parameters:,} in all"),
        ]
        pairs += [(f"  {part}", f"{self.parameters[part]:,}") for part in self.parameters]
        pairs.append(
            ("output stride", f"{self.output_stride} (a score-map cell every {self.output_stride} input pixels)")
        )
        if self.receptive_field is None:
            pairs.append(
                ("receptive field", f"{NOT_COMPUTED_BRANCHED} (parallel branches: a chain walk would be wrong)")
            )
            return pairs
        pairs.append(
            ("receptive field", f"{self.receptive_field} x {self.receptive_field} input pixels per score-map cell")
        )
        if self.attention_receptive_field is not None:
            pairs.append(
                (
                    f"{self.head.split()[0]} receptive field",
                    f"{self.attention_receptive_field} px (its 3x3 conv reads neighbouring fc7 cells)",
                )
            )
        pairs.append(
            (
                "at each scale",
                ", ".join(f"s={s:g}: {self.receptive_field_at_scale(s):.0f} px of the original" for s in self.scales),
            )
        )
        return pairs

    def to_text(self, spatial_only: bool = False) -> str:
        """The layer table and the totals, aligned for a terminal."""
        header = (
            f"{'part':<15}{'layer':<14}{'kind':<12}{'k':>3}{'s':>3}{'d':>4}{'p':>4}{'in':>6}{'out':>6}"
            f"{'params':>11}{'RF':>6}{'jump':>6}"
        )
        lines = [header, "-" * len(header)]
        for row in self.layers:
            if spatial_only and not row.is_spatial:
                continue
            lines.append(
                f"{row.part:<15}{row.name:<14}{row.kind:<12}{_cell(row.kernel, 3)}{_cell(row.stride, 3)}"
                f"{_cell(row.dilation, 4)}{_cell(row.padding, 4)}"
                f"{_cell(row.in_channels, 6)}{_cell(row.out_channels, 6)}"
                f"{row.parameters:>11,}{_cell(row.receptive_field, 6)}{_cell(row.jump, 6)}"
            )
        lines.append("")
        width = max(len(name) for name, _ in self.totals())
        lines += [f"{name:<{width}}  {value}" for name, value in self.totals()]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "trunk": self.trunk,
            "width": self.width,
            "norm": self.norm,
            "head_kind": self.head_kind,
            "head": self.head,
            "merge": self.merge,
            "scales": list(self.scales),
            "num_classes": self.num_classes,
            "feature_channels": self.feature_channels,
            "parameters": dict(self.parameters),
            "total_parameters": self.total_parameters,
            "output_stride": self.output_stride,
            "receptive_field": self.receptive_field,
            "attention_receptive_field": self.attention_receptive_field,
            "center_offset": self.center_offset,
            "layers": self.rows(),
        }


class _Geometry:
    """The running (r, j, c) of the receptive-field recursion."""

    def __init__(self, receptive_field: int = 1, jump: int = 1, center: float = 0.0) -> None:
        self.receptive_field, self.jump, self.center = receptive_field, jump, center

    def apply(self, kernel: int, stride: int, dilation: int, padding: int) -> None:
        effective = dilation * (kernel - 1) + 1
        self.center += ((effective - 1) / 2 - padding) * self.jump
        self.receptive_field += (effective - 1) * self.jump
        self.jump *= stride


def _square(value, what: str, layer: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{layer}: {what} {tuple(value)} is not square; the summary handles square layers only")
        value = value[0]
    return int(value)


_KINDS = {
    nn.ReLU: "ReLU",
    nn.BatchNorm2d: "batch norm",
    nn.GroupNorm: "group norm",
    nn.Dropout: "dropout",
    nn.Dropout2d: "dropout",
    nn.Identity: "identity",
}


def _layer_rows(part: str, module: nn.Module | None, geometry: _Geometry | None) -> list[LayerRow]:
    """The leaf layers of ``module``; ``geometry`` None (a branched network) leaves r, j and c out."""
    if module is None:
        return []
    rows = []
    for path, layer in module.named_modules():
        if any(True for _ in layer.children()):
            continue  # containers: their leaves are listed
        name = path.split(".")[-1] if path else type(layer).__name__
        parameters = sum(p.numel() for p in layer.parameters(recurse=False))
        kernel = stride = dilation = padding = in_channels = out_channels = None
        if isinstance(layer, nn.Conv2d):
            kernel, stride = _square(layer.kernel_size, "kernel", name), _square(layer.stride, "stride", name)
            dilation, padding = _square(layer.dilation, "dilation", name), _square(layer.padding, "padding", name)
            in_channels, out_channels = layer.in_channels, layer.out_channels
            kind = "atrous conv" if dilation > 1 else "conv"
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride = _square(layer.kernel_size, "kernel", name), _square(layer.stride, "stride", name)
            padding = _square(layer.padding, "padding", name)
            dilation = _square(getattr(layer, "dilation", 1), "dilation", name)
            kind = "max pool" if isinstance(layer, nn.MaxPool2d) else "avg pool"
        else:
            kind = next((text for cls, text in _KINDS.items() if isinstance(layer, cls)), type(layer).__name__)
            if isinstance(layer, nn.BatchNorm2d):
                in_channels = out_channels = layer.num_features
            elif isinstance(layer, nn.GroupNorm):
                in_channels = out_channels = layer.num_channels
        if kernel is not None and geometry is not None:
            geometry.apply(kernel, stride, dilation, padding)
        where = (None, None, None) if geometry is None else (geometry.receptive_field, geometry.jump, geometry.center)
        rows.append(
            LayerRow(part, name, kind, kernel, stride, dilation, padding, in_channels, out_channels, parameters, *where)
        )
    return rows


def architecture_summary(model: nn.Module) -> ArchitectureSummary:
    """Every layer of a :class:`~segscale.modeling.MultiScaleNet` with its receptive field, and the totals.

    The trunk is walked generically (any Conv2d / MaxPool2d / AvgPool2d chain, in module
    order), so the numbers follow the layers actually built, not a table typed in here.
    The score head and the attention head continue from the trunk's fc7 geometry. A
    torchvision trunk branches: its stride comes from the trunk registry and its receptive
    field is None (see the module docstring).
    """
    for part in ("trunk", "score_head"):
        if not hasattr(model, part):
            raise ValueError(
                f"expected a MultiScaleNet with a trunk and a score head; {type(model).__name__} has no {part!r}"
            )
    if trunk_info(model.config.trunk.name).branched:
        return _branched_summary(model)  # torchvision's, or a whole network from another library
    geometry = _Geometry()
    trunk_rows = _layer_rows("trunk", model.trunk, geometry)
    receptive_field, stride, center = geometry.receptive_field, geometry.jump, geometry.center
    score_rows = _layer_rows("score head", model.score_head, _Geometry(receptive_field, stride, center))
    merge_head = model_head(model)
    head = None if merge_head is None else getattr(model, merge_head.attribute)
    head_geometry = _Geometry(receptive_field, stride, center)
    head_rows = [] if merge_head is None else _layer_rows(merge_head.name, head, head_geometry)
    return ArchitectureSummary(
        layers=tuple(trunk_rows + score_rows + head_rows),
        output_stride=stride,
        receptive_field=score_rows[-1].receptive_field if score_rows else receptive_field,
        attention_receptive_field=head_geometry.receptive_field if head is not None else None,
        center_offset=center,
        **_model_facts(model),
    )


def _model_facts(model: nn.Module) -> dict:
    """The summary's fields that any MultiScaleNet states the same way: parameters and its configuration."""
    config = model.config
    merge_head = model_head(model)
    heads = {head.name: _count(getattr(model, head.attribute, None)) for head in HEADS}  # 0 when absent
    if merge_head is None:
        head_kind = None
    else:  # the gate head scores each scale on its own, as a shared attention head does
        head_kind = config.head.kind if merge_head is ATTENTION_HEAD else "shared"
    return {
        "parameters": {
            "trunk": _count(model.trunk),
            "score head": _count(model.score_head),
            # Only the attention head is listed at 0 when absent, so that the other models' summaries keep their keys.
            **{name: count for name, count in heads.items() if count or name == ATTENTION_HEAD.name},
        },
        "trunk": config.trunk.name,
        "width": config.trunk.width,
        "norm": config.trunk.norm,
        "head_kind": head_kind,
        "head": None if merge_head is None else merge_head.name,
        "merge": config.merge,
        "scales": tuple(config.scales),
        "num_classes": config.num_classes,
        "feature_channels": int(getattr(model.trunk, "out_channels", 0)),
    }


def _branched_summary(model: nn.Module) -> ArchitectureSummary:
    """The summary of a torchvision share-net: its layers and parameters, the registry's stride, no receptive field."""
    merge_head = model_head(model)
    parts = [("trunk", model.trunk), ("score head", model.score_head)]
    if merge_head is not None:
        parts.append((merge_head.name, getattr(model, merge_head.attribute)))
    rows = [row for part, module in parts for row in _layer_rows(part, module, None)]
    return ArchitectureSummary(
        layers=tuple(rows),
        output_stride=model.trunk.output_stride
        if trunk_info(model.config.trunk.name).library
        else (
            trunk_info(model.config.trunk.name).score_map_stride
        ),  # a library network's is its own, measured from its output (segscale.modeling.library_networks)
        receptive_field=None,
        attention_receptive_field=None,
        center_offset=None,
        **_model_facts(model),
    )


def paper_model_summary(num_classes: int = 21) -> ArchitectureSummary:
    """The summary of the paper's full-width model (VGG-16 LargeFOV, its attention head, scales {1, 0.75, 0.5}).

    Built on PyTorch's "meta" device: shapes only, no memory for its ~21 M weights, so a page
    can show what the loaded (narrower) checkpoint is a slice of.
    """
    import torch

    from .config import HeadConfig, ModelConfig, TrunkConfig
    from .modeling import build_model

    config = ModelConfig(num_classes=num_classes, trunk=TrunkConfig(width=1.0), head=HeadConfig(kind="paper"))
    with torch.device("meta"):
        model = build_model(config)
    return architecture_summary(model)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def head_features(trunk: str) -> str:
    """What the attention head reads, named as the trunk names it: DeepLab-LargeFOV's fc7, a torchvision
    backbone's last feature map (it has no fc7)."""
    return "fc7" if trunk == "vgg16_largefov" else "last backbone features"


def _cell(value, width: int) -> str:
    return f"{'-' if value is None else value:>{width}}"
