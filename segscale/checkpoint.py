"""Checkpoint files: one ``.pt`` holding the weights and plain metadata, never code.

A checkpoint is what ``torch.save`` writes for a dict of plain data and tensors::

    {
        "format": "segscale-checkpoint",
        "format_version": 1,
        "metadata": {...},     # CheckpointMetadata as plain dicts, lists, str, int, float
        "state_dict": {...},   # the model's weights
    }

so ``torch.load(path, weights_only=True)`` reads it, and loading never unpickles code: a file
whose pickle asks to build an arbitrary object is refused before anything of it runs.
The metadata travels with the weights so that no caller hard-codes class names, colours,
normalisation or the trained scale set.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ModelConfig, model_config_from_dict

CHECKPOINT_FORMAT = "segscale-checkpoint"
FORMAT_VERSION = 1

# ImageNet statistics (torchvision's), the default input normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, unsafe or not a segscale checkpoint."""


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint says about itself.

    Attributes:
        model: the architecture (trunk, width, head kind, default scale set and merge).
        classes: class names, index = label value.
        palette: one (r, g, b) per class, for label images.
        mean, std: per-channel input normalisation of RGB values in [0, 1].
        scale_range: (smallest, largest) scale the model was trained on; a "shared" head
            fuses any set inside it sensibly, a "paper" head only ``model.scales``.
        name: a short human name ("ScaleShapes demo, shared head").
        training: how it was made: data, command, iterations, wall time, machine (plain data).
        metrics: what it scored and where (plain data).
    """

    model: ModelConfig
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale_range: tuple[float, float] | None = None
    name: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "palette", tuple(tuple(int(v) for v in rgb) for rgb in self.palette))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.scale_range is None:
            object.__setattr__(self, "scale_range", (min(self.model.scales), max(self.model.scales)))
        else:
            low, high = (float(v) for v in self.scale_range)
            object.__setattr__(self, "scale_range", (low, high))
        if len(self.classes) != self.model.num_classes:
            raise ValueError(f"{len(self.classes)} class names for a model with {self.model.num_classes} classes")
        if len(self.palette) != len(self.classes) or any(len(rgb) != 3 for rgb in self.palette):
            raise ValueError("the palette needs one (r, g, b) triple per class")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["palette"] = [list(rgb) for rgb in self.palette]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckpointMetadata":
        values = dict(data)
        values["model"] = model_config_from_dict(values["model"])
        return cls(**values)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, metadata: CheckpointMetadata) -> Path:
    """Write model weights and metadata atomically: a temporary file, then a rename."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": metadata.to_dict(),
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def atomic_torch_save(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a kill leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{what} {path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path}: the file is empty (0 bytes); it was probably cut off while being written")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused_global = _refused_global(str(error))
        if refused_global:
            raise CheckpointError(
                f"{what} {path}: refused. Its pickle asks for {refused_global}, which could run code on load, "
                "so it was not unpickled. segscale checkpoints hold only plain data and tensors; if you trust "
                "the file, re-save its state dict and metadata as plain data."
            ) from None
        raise CheckpointError(
            f"{what} {path}: not a readable PyTorch file (the safe loader stopped at: {_last_line(error)}); "
            "it may be truncated, corrupt, or a plain pickle rather than a torch.save file"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{what} {path}: not a readable PyTorch file ({type(error).__name__}: {error}); "
            "it may be truncated (an interrupted download or copy) or not a checkpoint at all"
        ) from None


def _refused_global(message: str) -> str | None:
    """The name in torch's refusal of a global, if that is what it is.

    Two forms: "Unsupported global: GLOBAL x.y" (a name not on the allow list) and
    "unsupported GLOBAL x.y whose module z is blocked" (os, subprocess and the like).
    """
    for marker in ("Unsupported global: GLOBAL ", "unsupported GLOBAL "):
        if marker in message:
            return message.split(marker, 1)[1].split()[0]
    return None


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and "Unsupported" in line]
    return lines[0] if lines else type(error).__name__


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], CheckpointMetadata]:
    """Read a segscale checkpoint: (state dict on the CPU, metadata). Raises :class:`CheckpointError`."""
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        hint = ""
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = " It looks like a bare state dict; segscale needs the metadata too (see segscale.checkpoint)."
        raise CheckpointError(f"checkpoint {path}: a PyTorch file, but not a segscale checkpoint (no format marker).{hint}")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {version!r}, but this segscale reads up to {FORMAT_VERSION}; upgrade segscale"
        )
    try:
        metadata = CheckpointMetadata.from_dict(payload["metadata"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: its metadata is incomplete or invalid ({error})") from None
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"checkpoint {path}: has no state dict of tensors")
    return state_dict, metadata


def model_from_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, CheckpointMetadata]:
    """Build the model a checkpoint describes and load its weights (on the CPU, in eval mode)."""
    from .modeling import build_model

    state_dict, metadata = load_checkpoint(path)
    model = build_model(metadata.model)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0] if str(error) else "mismatch"
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit the architecture its metadata describes ({first_line})"
        ) from None
    return model.eval(), metadata


def load_checkpoint_bytes(data: bytes, name: str = "uploaded checkpoint") -> tuple[nn.Module, CheckpointMetadata]:
    """Build the model in an uploaded checkpoint file's bytes, as :func:`model_from_checkpoint` (``weights_only=True``).

    Raises :class:`CheckpointError` with a message naming ``name``
    (never the temporary file it was written to).
    """
    if not data:
        raise CheckpointError(f"{name}: the file is empty (0 bytes)")
    handle, temporary = tempfile.mkstemp(suffix=".pt")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        try:
            return model_from_checkpoint(temporary)
        except CheckpointError as error:
            message = str(error).replace(f"checkpoint {temporary}", name).replace(temporary, name)
            raise CheckpointError(message) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
