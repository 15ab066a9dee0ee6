"""What a checkpoint says about itself, in words: its training card, the card's short form, and the files on disk.

For the "How it works" and "Checkpoints" views and their command-line twins (``segscale
describe``, ``segscale checkpoints``, the import commands' printout):

* :func:`training_card` turns a checkpoint's metadata into (field, value) pairs a person reads;
* :func:`short_card` keeps the fields of :data:`CARD_SHORT_FIELDS` and the metrics: the card at a
  glance, the same wherever a card is shown short;
* :func:`read_checkpoint_card` and :func:`read_checkpoint_cards` read a file or a folder's ``*.pt``
  files into :class:`CheckpointCard` (reading the bytes, a path's or an upload's, is
  :mod:`segscale.checkpoint`'s). They never raise for a bad file: its card says why it cannot be used.

How the layers of a model add up (receptive field, parameters) is :mod:`segscale.architecture`'s.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from .architecture import head_features
from .checkpoint import CheckpointError, CheckpointMetadata, model_from_checkpoint
from .formatting import format_fraction, format_scale_set
from .merges import ATTENTION_HEAD, GATE_HEAD, merge_info
from .torchvision_import import NOT_VERIFIED, imported_card_rows, is_imported
from .trunks import trunk_info

__all__ = [
    "CARD_SHORT_FIELDS",
    "CheckpointCard",
    "read_checkpoint_card",
    "read_checkpoint_cards",
    "short_card",
    "training_card",
    "training_card_markdown",
]

# ============================================================================ the training card


def _library_network(metadata: CheckpointMetadata) -> bool:
    return trunk_info(metadata.model.trunk.name).library


def _library_card_rows(metadata: CheckpointMetadata) -> list[tuple[str, str]]:
    """Extra card rows of a transformers, smp or factory network: its source and normalisation; [] for others."""
    if not _library_network(metadata):
        return []
    training = metadata.training or {}
    source = training.get("source") or {}
    rows = [] if training.get("config") else [("data", training.get("dataset", "not recorded"))]
    origin = source.get("source") or source.get("factory") or "?"
    library = source.get("library", metadata.model.trunk.name)
    version = f" {source['version']}" if source.get("version") else ""
    rows.append(("source network", f"{library}{version}: {origin}"))
    if source.get("normalisation_from"):
        rows.append(("normalisation from", str(source["normalisation_from"])))
    if metadata.model.trunk.name == "factory":
        rows.append(("on load", f"imports {source.get('factory', '?')} (runs that module's code)"))
    return rows


def training_card(metadata: CheckpointMetadata) -> list[tuple[str, str]]:
    """What a checkpoint says about itself, as (field, value) pairs in words, missing fields said so."""
    model = metadata.model
    training = metadata.training or {}
    config = training.get("config") or {}
    trunk = model.trunk
    pairs: list[tuple[str, str]] = [
        ("name", metadata.name or "(unnamed)"),
        ("trunk", f"{trunk.name}, width {format_fraction(trunk.width)}, norm {trunk.norm}, dropout {trunk.dropout:g}"),
        ("attention head", _attention_head_field(model, imported=is_imported(metadata) or _library_network(metadata))),
        ("trained scales", format_scale_set(model.scales)),
        ("scale range", f"{metadata.scale_range[0]:g} to {metadata.scale_range[1]:g}"),
        ("default merge", model.merge),
        ("classes", f"{len(metadata.classes)}: {', '.join(metadata.classes)}"),
        ("normalisation", f"mean {_triple(metadata.mean)}, std {_triple(metadata.std)} (RGB in 0-1)"),
    ]
    imported = imported_card_rows(metadata) or _library_card_rows(metadata)  # where an imported network came from
    pairs += _recipe(config, model) if config else ([] if imported else [("data", "not recorded")])
    pairs += imported
    steps, planned = training.get("steps"), config.get("iterations")
    if steps is None:
        pairs.append(("steps", "not recorded"))
    else:
        pairs.append(("steps", f"{steps} of {planned} planned" if planned and planned != steps else str(steps)))
    wall = training.get("wall_time_s")
    pairs.append(("wall time", "not recorded" if wall is None else _duration(float(wall))))
    machine, processes = training.get("machine"), training.get("processes")
    if machine and processes and processes > 1:
        machine += f", {processes} processes"
    pairs.append(("machine", machine or "not recorded"))
    command = training.get("command") or (_equivalent_command(config) if config else None)
    pairs.append(("command", command or "not recorded"))
    if metadata.metrics:
        pairs += [(f"metric: {key}", _value(value)) for key, value in metadata.metrics.items()]
    elif imported and not ((metadata.training or {}).get("source") or {}).get("published", True):
        # The summary, the command's printout and the app all show this row: say why no metric is claimed.
        pairs.append(("metrics", f"none: {NOT_VERIFIED}"))
    else:
        pairs.append(("metrics", "none recorded"))
    return pairs


def _attention_head_field(model, imported: bool = False) -> str:
    """The card's "attention head" field: which head the model has and what it reads, or why it has none."""
    merge_head = merge_info(model.merge).head
    if merge_head is not ATTENTION_HEAD and imported:
        return f"none yet: an imported network merges by {model.merge} until an attention head is trained on it"
    if merge_head is GATE_HEAD:
        return (
            "none; a gate head instead (Tao et al.: one sigmoid gate per "
            "scale, chained from the finest scale down; any scale set)"
        )
    if merge_head is None:
        return f"none: trained with {model.merge} pooling over scales"
    head = model.head
    if head.kind == "paper":
        text = (
            f"paper (Chen et al.: all scales' {head_features(model.trunk.name)} concatenated, S outputs; "
            "fuses only its trained scale set)"
        )
    else:
        feature = ", with log2(s) as an input channel" if head.scale_feature else ""
        text = f"shared (one head scores each scale's {head_features(model.trunk.name)}{feature}; any scale set)"
    return f"{text}, {model.head_hidden_channels} hidden channels"


def _recipe(config: dict, model) -> list[tuple[str, str]]:
    """Data, scale sampling, supervision, optimiser and initialisation from a recorded TrainConfig."""
    data = str(config.get("dataset", "?"))
    if config.get("dataset") == "scaleshapes" and config.get("train_images"):
        data += f", {config['train_images']} training images"
    elif config.get("data_root"):
        data += f" from {config['data_root']}"
    if config.get("crop_size"):
        data += f", {config['crop_size']} px crops"
    if config.get("augment_scale_range"):
        low, high = config["augment_scale_range"]
        data += f", random rescaling {low:g}-{high:g}"
    if config.get("scale_sampling", "fixed") == "random":
        low, high = config.get("random_scale_range", ("?", "?"))
        fewest, most = config.get("random_scale_count", ("?", "?"))
        sampling = f"random: {fewest}-{most} scales per step from {low}-{high}"
    else:
        sampling = f"fixed: {format_scale_set(config.get('scales', model.scales))}"
    if config.get("imagenet_init"):
        start = "ImageNet VGG-16"
    else:
        start = f"from {config['init_from']}" if config.get("init_from") else "random"
    optimiser = (
        f"{config.get('optimizer', '?')}, lr {config.get('lr', '?')}, {config.get('schedule', '?')} schedule, "
        f"batch {config.get('batch_size', '?')}"
    )
    return [
        ("data", data),
        ("scale sets in training", sampling),
        (
            "extra supervision",
            "yes (E-Supv: a loss on every scale's own output too)" if config.get("extra_supervision") else "no",
        ),
        ("optimiser", optimiser),
        ("initialisation", start),
    ]


def training_card_markdown(metadata: CheckpointMetadata) -> str:
    """:func:`training_card` as a two-column Markdown table (for st.markdown)."""
    lines = ["| field | value |", "|---|---|"]
    for name, value in training_card(metadata):
        text = value.replace("|", "\\|")
        if name == "command":
            text = f"`{text}`"
        lines.append(f"| {name} | {text} |")
    return "\n".join(lines)


def _equivalent_command(config: dict) -> str | None:
    """``python -m segscale train`` with the flags that differ from today's defaults (every setting is a flag)."""
    from .training.config import TrainConfig

    parts = ["python -m segscale train"]
    known = {f.name: f for f in fields(TrainConfig)}
    for name, value in config.items():
        field = known.get(name)
        if field is None:
            continue
        default = field.default if field.default is not MISSING else None
        if _same(value, default):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + name.replace("_", "-"))
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)):
            parts.append(flag + " " + " ".join(_value(v) for v in value))
        else:
            parts.append(f"{flag} {_value(value)}")
    return " ".join(parts) + "   (rebuilt from the recorded config)"


def _same(value, default) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value == default


# ============================================================================ the card at a glance

# The fields a short card shows, in this order, before the metrics; the card's name is its title. One list for the
# app's cards and the command line's, so that a checkpoint reads the same in both.
CARD_SHORT_FIELDS = (
    "trunk",
    "attention head",
    "trained scales",
    "scale range",
    "data",
    "steps",
    "wall time",
    "machine",
)


def short_card(card: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The :data:`CARD_SHORT_FIELDS` a :func:`training_card` has, then its metric rows ("metric: ...", "metrics")."""
    values = dict(card)
    short = [(name, values[name]) for name in CARD_SHORT_FIELDS if name in values]
    return short + [(name, value) for name, value in card if name.startswith("metric")]


# ============================================================================ checkpoint files


@dataclass(frozen=True)
class CheckpointCard:
    """One checkpoint file: what it is, or why it cannot be read.

    path: the file. size_bytes: its size. metadata: None when unreadable (then ``error`` says why).
    summary: the card at a glance: ("name", its name), then :func:`short_card` of its training card; ()
        when unreadable.
    """

    path: str
    size_bytes: int
    metadata: CheckpointMetadata | None
    error: str | None
    summary: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return self.metadata is not None


def read_checkpoint_card(path: str | os.PathLike) -> CheckpointCard:
    """Read one checkpoint's metadata (and check that its weights fit it); never raises for a bad file."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    try:
        _, metadata = model_from_checkpoint(path)
    except CheckpointError as error:
        return CheckpointCard(str(path), size, None, str(error), ())
    card = training_card(metadata)
    summary = [("name", dict(card)["name"]), *short_card(card)]  # a terminal has no heading: the name is a row
    return CheckpointCard(str(path), size, metadata, None, tuple(summary))


def read_checkpoint_cards(folder: str | os.PathLike = "checkpoints") -> list[CheckpointCard]:
    """A card for every ``*.pt`` in ``folder`` (sorted by name); [] when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [read_checkpoint_card(path) for path in sorted(folder.glob("*.pt"))]


# ============================================================================ formatting


def _triple(values) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)
