"""torchvision's pretrained segmentation models as segscale checkpoints: weights, the cache, the import.

    python -m segscale fetch-weights deeplabv3_mobilenet_v3_large      # online: into the torch hub cache
    python -m segscale import-torchvision deeplabv3_mobilenet_v3_large --out checkpoints/deeplabv3_mobilenet_v3_large.pt

The weights are the kind's ``COCO_WITH_VOC_LABELS_V1`` enum (21 PASCAL VOC classes, trained by
torchvision on a COCO subset). They are read the way torchvision users get them: by
torchvision's own loader (``weights.get_state_dict``), which reads
``$TORCH_HOME/hub/checkpoints/<file name of the URL>`` when it is there, with no network, and
downloads it there otherwise. Class names, normalisation and published metrics come from the
enum's metadata; the palette is PASCAL VOC's.

An imported checkpoint merges by "average" until an attention head is trained on it
(``python -m segscale train --config configs/torchvision_head.toml``); every scale set works.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch

from .checkpoint import CheckpointError, CheckpointMetadata, read_torch_file, save_checkpoint
from .config import PAPER_SCALES, TORCHVISION_TRUNKS, HeadConfig, ModelConfig, TrunkConfig
from .merges import ATTENTION, AVERAGE
from .modeling import MultiScaleNet, build_model
from .modeling.torchvision_trunks import segscale_state_from_torchvision, torchvision_kind

WEIGHTS_NAME = "COCO_WITH_VOC_LABELS_V1"
IMPORTED_FROM = "torchvision"  # training["imported_from"] of an imported checkpoint
DEFAULT_MERGE = AVERAGE  # until an attention head is trained
# What the app and the cards read to know a checkpoint predicts photos (PASCAL VOC classes).
PHOTO_DATASET = "PASCAL VOC classes (torchvision, COCO subset)"


class MissingWeightsError(FileNotFoundError):
    """A kind's weights are neither in the torch hub cache nor given as a file (and could not be downloaded)."""


TRAINED_SCALE_RANGE = (0.5, 2.0)  # the random resizing of torchvision's reference training recipe


def check_kind(kind: str) -> str:
    if kind not in TORCHVISION_TRUNKS:
        raise ValueError(f"unknown torchvision kind {kind!r}; valid: {', '.join(TORCHVISION_TRUNKS)}")
    return kind


def kind_weights(kind: str):
    """The kind's weights enum member (``DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1``, ...)."""
    from torchvision.models import get_model_weights

    return getattr(get_model_weights(check_kind(kind)), WEIGHTS_NAME)


def hub_checkpoint_dir() -> Path:
    """Where torchvision's loader keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (read now)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_weights_path(kind: str) -> Path:
    """The file torchvision's loader reads for ``kind``: the cache folder plus the URL's file name."""
    return hub_checkpoint_dir() / os.path.basename(kind_weights(kind).url)


def cached_kinds() -> dict[str, Path | None]:
    """Every kind -> its weights file when it is in this machine's torch hub cache, else None."""
    result: dict[str, Path | None] = {}
    for kind in TORCHVISION_TRUNKS:
        path = cached_weights_path(kind)
        result[kind] = path if path.is_file() else None
    return result


def fetch_command(kind: str) -> str:
    return f"python -m segscale fetch-weights {kind}"


def import_command(kind: str, out: str | None = None) -> str:
    return f"python -m segscale import-torchvision {kind} --out {out or f'checkpoints/{kind}.pt'}"


def train_head_command(checkpoint: str, data_root: str = "data/VOC") -> str:
    """The one command that trains an attention head on an imported network (PASCAL VOC 2012, downloaded)."""
    return f"python -m segscale train-head {checkpoint} --dataset voc --data-root {data_root} --download"


def missing_weights_message(kind: str, reason: str = "") -> str:
    path = cached_weights_path(kind)
    text = (
        f"the weights of {kind} are not in the torch hub cache: expected the file {path.name} in {path.parent} "
        f"(it comes from {kind_weights(kind).url}). On a machine with the internet run `{fetch_command(kind)}` "
        f"(or copy that file into {path.parent}, or pass --weights FILE)"
    )
    return text + (f"; {reason}" if reason else "")


def fetch_weights(kind: str, progress: bool = True) -> Path:
    """Download ``kind``'s weights into the torch hub cache with torchvision's loader (nothing if already there)."""
    path = cached_weights_path(kind)
    if not path.is_file():
        _state_from_torchvision_loader(kind, download=True, progress=progress)
    return path


def _state_from_torchvision_loader(kind: str, *, download: bool, progress: bool) -> dict[str, torch.Tensor]:
    path = cached_weights_path(kind)
    if not path.is_file() and not download:
        raise MissingWeightsError(missing_weights_message(kind))
    try:
        return kind_weights(kind).get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except (URLError, TimeoutError, ConnectionError) as error:
        raise MissingWeightsError(missing_weights_message(kind, f"the download failed ({error})")) from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as error:
        if path.is_file():  # a cut-off or foreign file in the cache (torchvision checks hashes only when downloading)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(
                f"weights file {path}: not readable ({reason}); delete it and run `{fetch_command(kind)}`"
            ) from None
        raise MissingWeightsError(missing_weights_message(kind, f"the download failed ({error})")) from None


# What a card and the import say of weights whose hash does not match the published file's.
NOT_VERIFIED = "weights not verified as torchvision's published file"


def published_hash_prefix(kind: str) -> str:
    """The first hex digits of the published file's SHA-256: the URL's file name ends in them (torchvision's rule)."""
    stem = os.path.basename(kind_weights(kind).url).rsplit(".", 1)[0]
    return stem.rsplit("-", 1)[-1]


def _published_file(path: Path, kind: str) -> bool:
    """Whether ``path`` is the published file (torchvision's downloader checks this hash; its cache never does)."""
    prefix = published_hash_prefix(kind)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().startswith(prefix)


def load_torchvision_weights(
    kind: str, weights_file: str | os.PathLike | None = None, *, download: bool = True, progress: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(torchvision state dict, where it came from) for ``kind``.

    Without ``weights_file``: the published weights through torchvision's loader (the cache,
    or a download when ``download``); :class:`MissingWeightsError` names the file, the folder,
    the URL and the command to fetch it. With ``weights_file``: that local state dict, read
    with ``weights_only=True``. Either way ``source["published"]`` is whether the file's SHA-256
    matches the published file's, which alone lets the checkpoint claim the published metrics.
    """
    weights = kind_weights(kind)
    source: dict[str, Any] = {"kind": kind, "weights": f"{type(weights).__name__}.{WEIGHTS_NAME}", "url": weights.url}
    if weights_file is None:
        state = _state_from_torchvision_loader(kind, download=download, progress=progress)
        # torchvision's loader reads a file already in the cache without checking it, and offline users
        # are told to copy files there: only a file whose hash matches may claim the published metrics.
        path = cached_weights_path(kind)
        source.update(file=str(path), published=_published_file(path, kind))
        return state, source
    path = Path(weights_file)
    state = read_torch_file(path, what="weights file")
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights file {path}: not a state dict (a dict of tensors) of a torchvision {kind}")
    source.update(file=str(path), published=_published_file(path, kind))
    return state, source


def imported_model(
    kind: str, state_dict: dict[str, torch.Tensor], *, scales=PAPER_SCALES, where: str = "the weights"
) -> MultiScaleNet:
    """The share-net of ``kind`` (no attention head, merging by average) holding ``state_dict``'s weights."""
    config = imported_model_config(kind, scales)
    num_classes = config.num_classes
    model = build_model(config)
    try:
        model.load_state_dict(segscale_state_from_torchvision(state_dict), strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise CheckpointError(
            f"{where} do not fit torchvision's {kind} with {num_classes} classes ({first_line}); "
            "pass the state dict of that model (model.state_dict())"
        ) from None
    return model.eval()


def class_names(kind: str) -> tuple[str, ...]:
    """The weights' class names, with PASCAL VOC's "background" for torchvision's "__background__" placeholder.

    So the imported checkpoint's classes are exactly the VOC dataset's, and ``segscale evaluate
    --dataset voc`` and head training on VOC accept it.
    """
    return tuple("background" if name == "__background__" else name for name in kind_weights(kind).meta["categories"])


def imported_metadata(kind: str, source: dict[str, Any], scales=PAPER_SCALES) -> CheckpointMetadata:
    """Classes, normalisation and published metrics from the weights enum; PASCAL VOC's palette."""
    from .data.pascal import voc_color_map

    weights = kind_weights(kind)
    meta = weights.meta
    preprocessing = weights.transforms()
    metrics: dict[str, Any] = {}
    if source.get("published"):
        for dataset, values in meta.get("_metrics", {}).items():
            metrics.update({f"published {name} ({dataset})": value for name, value in values.items()})
    kind_info = torchvision_kind(kind)
    return CheckpointMetadata(
        model=imported_model_config(kind, scales),
        classes=class_names(kind),
        palette=voc_color_map(len(meta["categories"])),
        mean=tuple(preprocessing.mean),
        std=tuple(preprocessing.std),
        # torchvision's reference recipe trains these with random resizing between 0.5x and 2x of
        # its base size (references/segmentation: RandomResize(0.5 * 520, 2.0 * 520)), so that is
        # the range of scales the network has seen.
        scale_range=(min(TRAINED_SCALE_RANGE[0], *scales), max(TRAINED_SCALE_RANGE[1], *scales)),
        name=f"{kind} (torchvision {WEIGHTS_NAME}), no attention head yet",
        training={
            "imported_from": IMPORTED_FROM,
            "photo_model": True,
            "dataset": PHOTO_DATASET,
            "source": dict(source),
            "recipe": meta.get("_docs", "").strip(),
            "published_resize": list(getattr(preprocessing, "resize_size", []) or []),
            "output_stride": kind_info.output_stride,
            "default_merge_reason": (
                "average until an attention head is trained (segscale train --config configs/torchvision_head.toml)"
            ),
        },
        metrics=metrics,
    )


def imported_model_config(kind: str, scales=PAPER_SCALES) -> ModelConfig:
    """The architecture of an imported kind: torchvision's network, no attention head, merging by average."""
    return ModelConfig(
        num_classes=len(kind_weights(kind).meta["categories"]),
        trunk=TrunkConfig(name=kind, width=1.0, norm="batch", dropout=0.0),
        head=HeadConfig(kind="shared"),
        scales=scales,
        merge=DEFAULT_MERGE,
    )


def import_torchvision(
    kind: str,
    weights_file: str | os.PathLike | None = None,
    *,
    scales=PAPER_SCALES,
    download: bool = True,
    progress: bool = True,
) -> tuple[MultiScaleNet, CheckpointMetadata]:
    """(model, metadata) of an imported torchvision kind, ready for :class:`~segscale.Predictor` or saving."""
    check_kind(kind)
    state, source = load_torchvision_weights(kind, weights_file, download=download, progress=progress)
    where = f"weights file {weights_file}" if weights_file is not None else f"the cached weights {source['file']}"
    model = imported_model(kind, state, scales=scales, where=where)
    return model, imported_metadata(kind, source, scales)


def import_to_checkpoint(
    kind: str, out: str | os.PathLike, weights_file: str | os.PathLike | None = None, **kwargs
) -> Path:
    """Import ``kind`` and write it as an ordinary segscale checkpoint at ``out``."""
    model, metadata = import_torchvision(kind, weights_file, **kwargs)
    return save_checkpoint(out, model, metadata)


def is_imported(metadata: CheckpointMetadata) -> bool:
    """Whether a checkpoint holds an imported torchvision network (a photo model)."""
    return (metadata.training or {}).get(
        "imported_from"
    ) == IMPORTED_FROM or metadata.model.trunk.name in TORCHVISION_TRUNKS


def imported_card_rows(metadata: CheckpointMetadata) -> list[tuple[str, str]]:
    """Extra (field, value) rows of the training card for a torchvision share-net; [] for others."""
    if not is_imported(metadata):
        return []
    training = metadata.training or {}
    source = training.get("source") or {}
    rows = [] if training.get("config") else [("data", training.get("dataset", PHOTO_DATASET))]
    if source:
        origin = "published (hash checked)" if source.get("published") else NOT_VERIFIED
        rows.append(
            (
                "source weights",
                f"{source.get('weights', '?')}, {origin}: {source.get('file', '?')} (from {source.get('url', '?')})",
            )
        )
    if metadata.model.merge != ATTENTION:
        rows.append(
            ("default merge note", f"{metadata.model.merge}: no attention head has been trained on this network yet")
        )
    return rows
