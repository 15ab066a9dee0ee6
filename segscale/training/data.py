"""Training data: datasets by name, a disk cache for generated images, and batches by step.

Every random choice of a training step (which images, their crops and flips, the scale set)
is drawn from generators seeded with (seed, step), so step t's batch is the same whether the
run went straight through or was killed and resumed at t. No global RNG is involved.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic_files import atomic_file
from ..data.transforms import TrainAugmentation, image_to_tensor
from .config import TrainConfig

# Purposes of the per-step generators; part of the seed so they never share a stream.
_PICK_IMAGES, _AUGMENT, _SCALE_SET = 0, 1, 2


class DiskCachedPairs(Dataset):
    """Wraps an (image, label) dataset and keeps every pair it produced as an .npy pair on disk.

    Generating a ScaleShapes image costs tens of milliseconds of CPU, as much as a training
    step's share of the model; caching makes every later epoch and run nearly free.
    """

    def __init__(self, dataset, folder: str | os.PathLike) -> None:
        self.dataset = dataset
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("classes", "palette"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        path = self.folder / f"{index:07d}.npz"
        if path.exists():
            try:
                with np.load(path) as stored:
                    return stored["image"], stored["label"]
            except (OSError, ValueError, KeyError, EOFError):
                pass  # a half-written or damaged entry: make it again
        image, label = self.dataset[index]
        # Unique temporary names: the ranks of one run may make the same entry at once. No fsync: an entry a
        # power cut damaged is made again above.
        with atomic_file(path, unique_name=True, sync=False) as file:
            np.savez(file, image=image, label=label)
        return image, label


def build_datasets(config: TrainConfig):
    """(train pairs, validation pairs, class names, palette) for the configured dataset."""
    if config.dataset == "scaleshapes":
        from ..data import scaleshapes

        train = scaleshapes.ScaleShapes("train", config.train_images)
        val = scaleshapes.ScaleShapes("val", config.val_images)
        if config.cache_dir:
            generator_key = _scaleshapes_cache_key(scaleshapes)
            train = DiskCachedPairs(train, Path(config.cache_dir) / generator_key / "train")
            val = DiskCachedPairs(val, Path(config.cache_dir) / generator_key / "val")
        return train, val, tuple(scaleshapes.CLASSES), tuple(scaleshapes.PALETTE)

    from ..data import folders, pascal

    if config.dataset in ("ade20k", "cityscapes", "folder"):
        if config.dataset == "folder":
            train = val = folders.folder_pairs(config.images, config.masks)
            classes = None
        else:
            reader = folders.ade20k if config.dataset == "ade20k" else folders.cityscapes
            train, val = reader(config.data_root, "train"), reader(config.data_root, "val")
            classes = train.classes
        val = torch.utils.data.Subset(val, range(min(config.val_images, len(val))))
        return train, val, classes, None
    if config.dataset in ("voc", "voc_aug"):
        train = pascal.VOC2012Segmentation(config.data_root, "train_aug" if config.dataset == "voc_aug" else "train")
        val = pascal.VOC2012Segmentation(config.data_root, "val")
        classes, palette = pascal.VOC_CLASSES, pascal.VOC_PALETTE
    else:
        train = pascal.PersonPartSegmentation(config.data_root, "train")
        val = pascal.PersonPartSegmentation(config.data_root, "val")
        classes, palette = pascal.PERSON_PART_CLASSES, pascal.PERSON_PART_PALETTE
    val = torch.utils.data.Subset(val, range(min(config.val_images, len(val))))
    return train, val, tuple(classes), tuple(palette)


def _scaleshapes_cache_key(module) -> str:
    """Changes whenever the generator or its configuration changes, so stale images are never reused."""
    description = f"{getattr(module, 'GENERATOR_VERSION', 0)}-{asdict(module.ScaleShapesConfig())}"
    return "scaleshapes-" + hashlib.sha1(description.encode()).hexdigest()[:12]


def sample_scale_set(config: TrainConfig, step: int) -> tuple[float, ...]:
    """The scale set of one step: the fixed set, or a random set drawn for this step.

    Random sets have ``random_scale_count`` distinct scales, log-uniform in
    ``random_scale_range`` (rounded to 0.05), largest first. With ``max_scale_pixels`` the
    set's cost, sum of s^2, stays under that budget (redrawn until it does).
    """
    if config.scale_sampling == "fixed":
        return config.scales
    rng = np.random.default_rng([config.seed, step, _SCALE_SET])
    low, high = config.random_scale_range
    fewest, most = config.random_scale_count
    for _ in range(100):
        count = int(rng.integers(fewest, most + 1))
        raw = np.exp(rng.uniform(math.log(low), math.log(high), size=count))
        scales = sorted({min(high, max(low, round(float(s) * 20) / 20)) for s in raw}, reverse=True)
        if config.max_scale_pixels <= 0 or sum(s * s for s in scales) <= config.max_scale_pixels:
            return tuple(scales)
    return (1.0,)


class StepBatches(Dataset):
    """Item t is the batch of training step t for this process: (images (B, 3, crop, crop), labels (B, crop, crop)).

    With several processes (DDP) each takes its own slice of the step's global batch.
    """

    def __init__(self, pairs, config: TrainConfig, mean, std, rank: int = 0, world_size: int = 1) -> None:
        self.pairs, self.config, self.mean, self.std = pairs, config, mean, std
        self.rank, self.world_size = rank, world_size
        self.augment = TrainAugmentation(crop_size=config.crop_size, scale_range=config.augment_scale_range)

    def __len__(self) -> int:
        return self.config.iterations

    def __getitem__(self, step: int):
        batch = self.config.batch_size
        picks = np.random.default_rng([self.config.seed, step, _PICK_IMAGES]).integers(
            0, len(self.pairs), size=batch * self.world_size
        )
        images, labels = [], []
        for slot in range(self.rank * batch, (self.rank + 1) * batch):
            image, label = self.pairs[int(picks[slot])]
            rng = np.random.default_rng([self.config.seed, step, _AUGMENT, slot])
            image, label = self.augment(image, label, rng)
            images.append(image_to_tensor(image, self.mean, self.std))
            labels.append(torch.from_numpy(label.astype(np.int64)))
        return torch.stack(images), torch.stack(labels)
