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
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic_files import atomic_file
from .config import ModelConfig, model_config_from_dict
from .merges import ATTENTION_HEAD, GATE_HEAD, merge_info

# The shipped demo model: its file name (the app offers it first in any checkpoint folder), and where the commands
# look for it when no --checkpoint is given (from the repository root).
DEFAULT_CHECKPOINT_NAME = "scaleshapes_demo.pt"
DEFAULT_CHECKPOINT_PATH = Path("checkpoints") / DEFAULT_CHECKPOINT_NAME
# The files the repository ships in checkpoints/ (checkpoints/README.md is their card); any other
# .pt there is the person's own: imported, trained or copied in.
SHIPPED_CHECKPOINTS = (DEFAULT_CHECKPOINT_NAME, "scaleshapes_paper_head.pt", "scaleshapes_hierarchical.pt")
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
        if not data["model"]["trunk"]["network"]:  # only imported library networks have one; others stay as before
            del data["model"]["trunk"]["network"]
        data["classes"] = list(self.classes)
        data["palette"] = [list(rgb) for rgb in self.palette]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointMetadata:
        values = dict(data)
        values["model"] = model_config_from_dict(values["model"])
        values["name"] = _renamed_unused_head(str(values.get("name", "")), values["model"])
        return cls(**values)


def head_phrase(head_kind: str, merge: str) -> str:
    """The part of a checkpoint's name that says which head it has: only a head its merge uses.

    A hierarchical model has a gate head and no softmax attention head, and average or max pooling
    has no head at all, whatever head kind its training config carried.
    """
    head = merge_info(merge).head
    if head is ATTENTION_HEAD:
        return f"{head_kind} head, {merge}"
    if head is GATE_HEAD:
        return f"gate head, {merge}"
    return f"no attention head, {merge} pooling"


def _renamed_unused_head(name: str, model: ModelConfig) -> str:
    """A name written by the old rule ("... shared head, hierarchical") says what the model has instead."""
    old_ending = f" {model.head.kind} head, {model.merge}"
    if merge_info(model.merge).head is not ATTENTION_HEAD and name.endswith(old_ending):
        return name[: -len(old_ending)] + " " + head_phrase(model.head.kind, model.merge)
    return name


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
    # Unique temporary names: two processes saving under one name at once (two runs given one output path) each
    # write their own, and the last rename wins with a whole file.
    with atomic_file(path, unique_name=True) as handle:
        torch.save(payload, handle)
    return path


def debug_enabled() -> bool:
    """``SEGSCALE_DEBUG=1``: errors keep torch's own text and tracebacks (for reporting a bug)."""
    return os.environ.get("SEGSCALE_DEBUG", "") not in ("", "0")


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and what is wrong with it.

    The message says in plain words what the file is (cut off, a text file, a plain pickle,
    random bytes); torch's own wording is added only with ``SEGSCALE_DEBUG=1``, since it
    speaks of opcodes, miniz and central directories.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{what} {path}: is a folder, not a file; give the .pt file inside it")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as error:
        raise CheckpointError(f"{what} {path}: cannot be read ({error.strerror or error})") from None
    if size == 0:
        raise CheckpointError(
            f"{what} {path}: the file is empty (0 bytes); it was probably cut off while being written"
        )
    try:
        with warnings.catch_warnings():
            if (
                not debug_enabled()
            ):  # torch warns about pickle protocols in its own words; the error below says it plainly
                warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused_global = _refused_global(str(error))
        if refused_global:
            raise CheckpointError(
                f"{what} {path}: refused. Its pickle asks for {refused_global}, which could run code on load, "
                "so it was not unpickled. segscale checkpoints hold only plain data and tensors; if you trust "
                "the file, re-save its state dict and metadata as plain data." + _torch_text(error)
            ) from _cause(error)
        raise CheckpointError(_unreadable(what, path, head, size, error)) from _cause(error)
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        UnicodeDecodeError,
        AttributeError,
    ) as error:
        raise CheckpointError(_unreadable(what, path, head, size, error)) from _cause(error)


def _unreadable(what: str, path: Path, head: bytes, size: int, error: BaseException) -> str:
    return f"{what} {path}: not a readable PyTorch file: {_what_the_file_is(path, head, size)}" + _torch_text(error)


def _what_the_file_is(path: Path, head: bytes, size: int) -> str:
    """Why torch could not read the file, guessed from its first bytes, in plain words."""
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return (
                f"it is cut off before its end ({size:,} bytes; its table of contents is missing), "
                "as an interrupted download or copy leaves it; copy or download it again"
            )
        return "it is a zip file, but not one torch.save wrote (or one damaged inside)"
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer, not the file itself; fetch the real file with `git lfs pull`"
    if _looks_like_text(head):
        first_line = head.decode("utf-8", errors="replace").strip().splitlines()[0][:60] if head.strip() else ""
        return f"it holds text (starting {first_line!r}), not weights"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return (
            f"it is a plain Python pickle (protocol {head[1]}), not a file written by torch.save, or a damaged one; "
            "segscale reads only torch.save files (see segscale.checkpoint.save_checkpoint)"
        )
    return "its bytes match no format torch writes; it is corrupt or not a checkpoint at all"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def _torch_text(error: BaseException) -> str:
    """torch's own message, only under SEGSCALE_DEBUG=1."""
    if not debug_enabled():
        return ""
    return f" [torch: {type(error).__name__}: {' '.join(str(error).split())}]"


def _cause(error: BaseException) -> BaseException | None:
    """The chained cause shown in a traceback: the original error under SEGSCALE_DEBUG=1, else none."""
    return error if debug_enabled() else None


def _refused_global(message: str) -> str | None:
    """The name in torch's refusal of a global, if that is what it is.

    Two forms: "Unsupported global: GLOBAL x.y" (a name not on the allow list) and
    "unsupported GLOBAL x.y whose module z is blocked" (os, subprocess and the like).
    """
    for marker in ("Unsupported global: GLOBAL ", "unsupported GLOBAL "):
        if marker in message:
            return message.split(marker, 1)[1].split()[0]
    return None


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], CheckpointMetadata]:
    """Read a segscale checkpoint: (state dict on the CPU, metadata). Raises :class:`CheckpointError`."""
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        hint = ""
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = " It looks like a bare state dict; segscale needs the metadata too (see segscale.checkpoint)."
        raise CheckpointError(
            f"checkpoint {path}: a PyTorch file, but not a segscale checkpoint (no format marker).{hint}"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {version!r}, but this "
            f"segscale reads up to {FORMAT_VERSION}; upgrade segscale"
        )
    raw_metadata = payload.get("metadata")
    if not isinstance(raw_metadata, dict):
        raise CheckpointError(f"checkpoint {path}: has no metadata (the classes, palette and model it describes)")
    missing = [name for name in ("model", "classes", "palette") if name not in raw_metadata]
    if missing:
        raise CheckpointError(f"checkpoint {path}: its metadata lacks the field {missing[0]!r}")
    try:
        metadata = CheckpointMetadata.from_dict(raw_metadata)
    except KeyError as error:
        raise CheckpointError(f"checkpoint {path}: its metadata lacks the field {error.args[0]!r}") from _cause(error)
    except (TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"checkpoint {path}: its metadata is invalid ({_first_line(error)})") from _cause(error)
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"checkpoint {path}: has no state dict of tensors")
    return state_dict, metadata


def model_from_checkpoint(
    path: str | os.PathLike, *, allow_factory: bool = True
) -> tuple[nn.Module, CheckpointMetadata]:
    """Build the model a checkpoint describes and load its weights (on the CPU, in eval mode).

    A checkpoint of a ``--factory`` network imports the module it names, which runs that
    module's code; ``allow_factory=False`` refuses such a file before anything is imported.
    """
    from .modeling import build_model

    state_dict, metadata = load_checkpoint(path)
    if not allow_factory and metadata.model.trunk.name == "factory":
        raise CheckpointError(
            f"checkpoint {path}: holds a network built by a factory function; loading it imports that function's "
            "module and runs its code, so it is not loaded from an upload. Put the file in the checkpoints folder "
            "if you trust it, or load it with `python -m segscale`"
        )
    model = build_model(metadata.model)
    mismatch = _weights_mismatch(model.state_dict(), state_dict)
    if mismatch:
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit the architecture its metadata describes ({mismatch})"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit the architecture its metadata describes ({_first_line(error)})"
        ) from _cause(error)
    return model.eval(), metadata


def _weights_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """What differs between the model's weights and the file's, in words ("" when they fit)."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    reshaped = [
        f"{name} is {tuple(found[name].shape)} in the file, {tuple(tensor.shape)} in the model"
        for name, tensor in expected.items()
        if name in found and tuple(found[name].shape) != tuple(tensor.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} weight{'s' if len(missing) > 1 else ''} missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    if reshaped:
        parts.append(f"{len(reshaped)} of another shape, e.g. {reshaped[0]}")
    return "; ".join(parts)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


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
            return model_from_checkpoint(temporary, allow_factory=False)  # an upload may come from anyone
        except CheckpointError as error:
            message = str(error).replace(f"checkpoint {temporary}", name).replace(temporary, name)
            raise CheckpointError(message) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
