"""Configuration dataclasses for the model.

Every module takes its configuration as one of these frozen dataclasses; nothing in a
``forward`` reads global state. They turn into plain dicts (``dataclasses.asdict``) for the
checkpoint metadata and back again with :func:`model_config_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .merges import ATTENTION, MERGE_NAMES
from .trunks import LARGEFOV, LIBRARY_TRUNKS, TORCHVISION_TRUNKS, TRUNK_NAMES

NORM_KINDS = ("none", "batch", "group")
HEAD_KINDS = ("paper", "shared")
# The merges are declared in segscale.merges; this name stays for the commands that validate choices.
MERGE_MODES = MERGE_NAMES

# PASCAL VOC's "void" label: borders and padding, counted in no loss and no metric.
IGNORE_INDEX = 255

# The paper's three-scale set, largest first.
PAPER_SCALES = (1.0, 0.75, 0.5)


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def normalize_scales(scales) -> tuple[float, ...]:
    """Scales as a tuple of positive floats without repeats, in the order given.

    The order of a scale set is the order of the S axis everywhere (score maps, attention).
    """
    try:
        values = tuple(float(s) for s in scales)
    except TypeError as error:
        raise ValueError(f"scales must be a sequence of numbers, got {scales!r}") from error
    if not values:
        raise ValueError("a scale set needs at least one scale, e.g. (1.0, 0.75, 0.5)")
    bad = [s for s in values if not (s > 0 and s < float("inf"))]
    if bad:
        raise ValueError(f"scales must be positive and finite; got {bad}")
    rounded = [round(s, 6) for s in values]
    if len(set(rounded)) != len(rounded):
        raise ValueError(f"scale set {values} repeats a scale; each scale may appear once")
    return tuple(rounded)


@dataclass(frozen=True)
class TrunkConfig:
    """The share-net trunk: DeepLab-LargeFOV up to fc7, or a torchvision segmentation model's backbone.

    name: "vgg16_largefov" or one of ``TORCHVISION_TRUNKS`` (built by torchvision as published:
        width must be 1; norm and dropout are those of the torchvision model and are not read).

    width: channel multiplier on every layer (1.0 is the paper's VGG-16; 1/8 trains on a CPU).
    norm: normalisation after each convolution. The paper has none ("none"); "batch" or
        "group" make a narrow model trainable from scratch.
    dropout: drop6 and drop7 of DeepLab (after fc6 and fc7).
    network: for a ``LIBRARY_TRUNKS`` name only: JSON text that rebuilds the library's network
        offline (its config, or the factory's import path). Text, not a dict, so the frozen
        config stays hashable and the checkpoint keeps plain data.
    """

    name: str = LARGEFOV
    width: float = 1.0
    norm: str = "none"
    dropout: float = 0.5
    network: str = ""

    def __post_init__(self) -> None:
        _check_choice("trunk", self.name, TRUNK_NAMES)
        _check_choice("norm", self.norm, NORM_KINDS)
        if not 0 < self.width <= 4:
            raise ValueError(f"trunk width must be in (0, 4], got {self.width}")
        if self.name in TORCHVISION_TRUNKS and self.width != 1:
            raise ValueError(
                f"trunk {self.name} is torchvision's model as published; its width must be 1, got {self.width}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if (self.name in LIBRARY_TRUNKS) != bool(self.network):
            raise ValueError(
                f"trunk {self.name}: a network record is needed exactly for an imported library network "
                f"({', '.join(LIBRARY_TRUNKS)}); import one with `python -m segscale import-transformers`"
            )
        if self.name in LIBRARY_TRUNKS and self.width != 1:
            raise ValueError(f"trunk {self.name} is the library's network as saved; its width must be 1")


@dataclass(frozen=True)
class HeadConfig:
    """The attention head that turns fc7 features into logits h^s.

    kind: "paper" concatenates the features of all S scales (tied to the trained set);
        "shared" scores every scale's features with one set of weights (any set).
    hidden_channels: filters of its 3x3 layer; None means the paper's 512 times the trunk width.
    scale_feature: shared head only; appends log2(s) as a constant input channel so the
        head knows which resolution a feature map came from.
    """

    kind: str = "shared"
    hidden_channels: int | None = None
    dropout: float = 0.5
    scale_feature: bool = True

    def __post_init__(self) -> None:
        _check_choice("attention head", self.kind, HEAD_KINDS)
        if self.hidden_channels is not None and self.hidden_channels < 1:
            raise ValueError(f"hidden_channels must be positive, got {self.hidden_channels}")


@dataclass(frozen=True)
class ModelConfig:
    """A whole multi-scale model.

    scales: the scale set the model was trained with; the default at inference, and the
        only set a "paper" head accepts.
    merge: the default merge mode, a name from :mod:`segscale.merges`.
    """

    num_classes: int
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    scales: tuple[float, ...] = PAPER_SCALES
    merge: str = ATTENTION

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        object.__setattr__(self, "scales", normalize_scales(self.scales))
        _check_choice("merge mode", self.merge, MERGE_MODES)

    @property
    def head_hidden_channels(self) -> int:
        if self.head.hidden_channels is not None:
            return self.head.hidden_channels
        return max(1, round(512 * self.trunk.width))


def model_config_from_dict(data: dict) -> ModelConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`ModelConfig`; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValueError(f"model config must be a dict, got {type(data).__name__}")

    def build(cls, values):
        if not isinstance(values, dict):
            raise ValueError(f"{cls.__name__} must be a dict, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    values = dict(data)
    trunk = build(TrunkConfig, values.pop("trunk", {}))
    head = build(HeadConfig, values.pop("head", {}))
    if "scales" in values:
        values["scales"] = tuple(values["scales"])
    return build(ModelConfig, {**values, "trunk": trunk, "head": head})
