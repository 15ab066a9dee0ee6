"""What a training run is: one frozen dataclass, from a TOML/JSON file and command-line flags.

The defaults are the paper's recipe where it applies (SGD, momentum 0.9, weight decay 5e-4,
poly schedule, 321-pixel crops, random rescaling 0.5-1.5, scales {1, 0.75, 0.5}, extra
supervision). Fields are flat so that every one is also a flag: ``--lr 0.01`` overrides
``lr = 0.01`` in the file.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..config import (
    HEAD_KINDS,
    LIBRARY_TRUNKS,
    MERGE_MODES,
    NORM_KINDS,
    TORCHVISION_TRUNKS,
    TRUNK_NAMES,
    HeadConfig,
    ModelConfig,
    TrunkConfig,
    normalize_scales,
)
from ..merges import ATTENTION

DATASETS = ("scaleshapes", "voc", "voc_aug", "person_part", "ade20k", "cityscapes", "folder")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "step", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``scale_sampling`` "fixed" trains on ``scales``; "random" draws a set
    of ``random_scale_count`` scales per step, log-uniformly from ``random_scale_range``.
    """

    # Model
    trunk: str = "vgg16_largefov"
    width: float = 1.0
    norm: str = "none"
    head: str = "paper"
    head_hidden_channels: int | None = None
    merge: str = ATTENTION
    scales: tuple[float, ...] = (1.0, 0.75, 0.5)
    scale_sampling: str = "fixed"
    random_scale_range: tuple[float, float] = (0.25, 2.0)
    random_scale_count: tuple[int, int] = (2, 4)
    max_scale_pixels: float = (
        0.0  # >0: in random sets, crop x scale^2 summed over scales stays under this many crop areas
    )
    # The scales the checkpoint accepts at inference; None: the scales it trains on. Tao et al. train
    # their gates on one pair (1 and 0.5) and chain them over any set, e.g. {0.25, 0.5, 1, 2}.
    inference_scale_range: tuple[float, float] | None = None
    extra_supervision: bool = True
    foreground_weight: float = 1.0  # loss weight of every class but 0 (background) relative to it
    hard_pixel_fraction: float = 1.0  # below 1: only that fraction of hardest pixels counts (OHEM)
    dropout: float = 0.5
    freeze_norm_statistics: bool = False  # batch norm uses (and keeps) its running statistics while training
    imagenet_init: bool = False
    init_from: str | None = None  # a segscale checkpoint whose matching weights start this run
    train_head_only: bool = (
        False  # the share-net (trunk and score head) of init_from stays fixed; only the attention head learns
    )

    # Data
    dataset: str = "scaleshapes"
    data_root: str | None = None
    images: str | None = None  # dataset "folder": the images (trained on all, validated on the first val_images)
    masks: str | None = None  # dataset "folder": index PNGs named as the images, 255 ignored
    train_images: int = 10000  # ScaleShapes: how many distinct training images
    val_images: int = 100  # validation images (ScaleShapes: from its val split; others: the first N)
    crop_size: int = 321
    augment_scale_range: tuple[float, float] = (0.5, 1.5)
    cache_dir: str | None = "cache"  # ScaleShapes images are generated once and kept here

    # Optimisation
    optimizer: str = "sgd"
    lr: float = 0.001
    head_lr_multiplier: float = 10.0  # the newly added layers (fc8, attention head) learn faster, as in DeepLab
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "poly"
    poly_power: float = 0.9
    step_size: int = 2000
    step_gamma: float = 0.1
    warmup_iterations: int = 0
    batch_size: int = 10
    iterations: int = 6000
    seed: int = 0

    # Running
    out_dir: str = "runs/default"
    val_every: int = 1000
    checkpoint_every: int = 200
    workers: int = 1
    amp: bool = True  # bf16 autocast where it pays (CUDA; CPUs with AMX), weights and loss in float32
    threads: int = 0  # torch threads on the CPU; 0 leaves torch's default

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("trunk", self.trunk, TRUNK_NAMES),
            ("norm", self.norm, NORM_KINDS),
            ("head", self.head, HEAD_KINDS),
            ("merge", self.merge, MERGE_MODES),
            ("scale_sampling", self.scale_sampling, ("fixed", "random")),
            ("dataset", self.dataset, DATASETS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
        ):
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        object.__setattr__(self, "scales", normalize_scales(self.scales))
        low, high = (float(v) for v in self.random_scale_range)
        if not 0 < low <= high:
            raise ValueError(f"random_scale_range must satisfy 0 < low <= high, got {self.random_scale_range}")
        object.__setattr__(self, "random_scale_range", (low, high))
        if self.inference_scale_range is not None:
            low, high = (float(v) for v in self.inference_scale_range)
            trained = self._trained_scale_range()
            if not (0 < low <= trained[0] and trained[1] <= high):
                raise ValueError(
                    f"inference_scale_range {low:g} to {high:g} must hold "
                    f"the scales trained on ({trained[0]:g} to {trained[1]:g})"
                )
            object.__setattr__(self, "inference_scale_range", (low, high))
        fewest, most = (int(v) for v in self.random_scale_count)
        if not 1 <= fewest <= most:
            raise ValueError(f"random_scale_count must satisfy 1 <= fewest <= most, got {self.random_scale_count}")
        object.__setattr__(self, "random_scale_count", (fewest, most))
        object.__setattr__(self, "augment_scale_range", tuple(float(v) for v in self.augment_scale_range))
        if self.head == "paper" and self.merge == ATTENTION and self.scale_sampling == "random":
            raise ValueError(
                "a 'paper' attention head is tied to one scale set; use head 'shared' with random scale sets"
            )
        if self.dataset == "folder" and not (self.images and self.masks):
            raise ValueError("dataset 'folder' needs --images DIR and --masks DIR")
        if self.dataset not in ("scaleshapes", "folder") and not self.data_root:
            raise ValueError(f"dataset {self.dataset!r} needs --data-root (the folder holding it)")
        if self.foreground_weight <= 0 or not 0 < self.hard_pixel_fraction <= 1:
            raise ValueError("foreground_weight must be positive and hard_pixel_fraction in (0, 1]")
        if self.train_head_only:
            if self.merge != ATTENTION:
                raise ValueError(f"train_head_only trains an attention head: set merge = {ATTENTION!r}")
            if self.extra_supervision:
                raise ValueError(
                    "train_head_only keeps the score maps fixed, so E-Supv (a loss on each scale's own scores) has "
                    "nothing to train: set extra_supervision = false (--no-extra-supervision)"
                )
            if not self.init_from:
                raise ValueError(
                    "train_head_only needs --init-from: the checkpoint whose network the head is trained on"
                )
        elif self.trunk in LIBRARY_TRUNKS:
            raise ValueError(
                f"a {self.trunk} network is trained here only with its share-net frozen: import it "
                "(docs/NETWORKS.md), then train with --train-head-only --init-from FILE.pt"
            )
        elif self.trunk in TORCHVISION_TRUNKS:
            raise ValueError(
                f"trunk {self.trunk} is trained here only with its share-net frozen: import it "
                f"(python -m segscale import-torchvision {self.trunk} --out FILE.pt), then train with "
                "--train-head-only --init-from FILE.pt (see configs/torchvision_head.toml)"
            )
        for name in ("iterations", "batch_size", "crop_size", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def model_config(self, num_classes: int) -> ModelConfig:
        return ModelConfig(
            num_classes=num_classes,
            trunk=TrunkConfig(name=self.trunk, width=self.width, norm=self.norm, dropout=self.dropout),
            head=HeadConfig(kind=self.head, hidden_channels=self.head_hidden_channels, dropout=self.dropout),
            scales=self.scales,
            merge=self.merge,
        )

    def class_weights(self, num_classes: int):
        """Loss weights per class (None when all are 1): background 1, every other class ``foreground_weight``."""
        if self.foreground_weight == 1.0:
            return None
        import torch

        return torch.tensor([1.0] + [self.foreground_weight] * (num_classes - 1))

    def scale_range(self) -> tuple[float, float]:
        """The range of scales the checkpoint accepts (its metadata): ``inference_scale_range`` when set,
        else the range this run trains on."""
        return self.inference_scale_range if self.inference_scale_range is not None else self._trained_scale_range()

    def _trained_scale_range(self) -> tuple[float, float]:
        if self.scale_sampling == "random":
            return self.random_scale_range
        return (min(self.scales), max(self.scales))

    def to_dict(self) -> dict[str, Any]:
        return {key: (list(value) if isinstance(value, tuple) else value) for key, value in asdict(self).items()}


def _coerce(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a .toml or .json file (optional), then keyword overrides (flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path}: no such file")
        try:
            if path.suffix == ".toml":
                values = tomllib.loads(path.read_text())
            elif path.suffix == ".json":
                values = json.loads(path.read_text())
            else:
                raise ValueError(f"training config {path}: use a .toml or .json file")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"training config {path}: {error}") from None
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"training config {path}: unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
    values.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**{key: _coerce(value) for key, value in values.items()})
