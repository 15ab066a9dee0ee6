"""Segmentation data sets laid out as folders: any images/masks pair of folders, ADE20K and Cityscapes.

The training-data contract of :mod:`segscale.data.pascal`: ``dataset[i]`` is ``(image, label)``,
image uint8 (H, W, 3) RGB, label uint8 (H, W) class indices with 255 = ignore; ``classes`` names
the indices (None where the layout names none: the checkpoint's classes are used). Nothing is
downloaded; the layouts are the ones the public releases unpack to:

* ``folder``: ``--images DIR --masks DIR``; images (jpg, jpeg, png) and index PNGs paired by file
  stem (``a.jpg`` with ``a.png``), 255 ignored;
* ADE20K, ``root`` holding ``ADEChallengeData2016/`` (or that folder itself)::

      images/{training,validation}/ADE_*.jpg
      annotations/{training,validation}/ADE_*.png     0 = "other" (ignored), 1..150 the classes

  read as the SceneParsing benchmark scores it: label - 1, with 0 becoming 255;
* Cityscapes, ``root`` holding ``leftImg8bit/`` and ``gtFine/``::

      leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
      gtFine/{train,val}/<city>/<name>_gtFine_labelTrainIds.png     0..18, 255 ignored

  (``labelTrainIds`` are written by cityscapesScripts' ``createTrainIdLabelImgs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..config import IGNORE_INDEX
from ..dataset_palettes import ADE20K_CLASSES, CITYSCAPES_CLASSES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ADE20K_SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}
CITYSCAPES_SPLITS = ("train", "val", "test")


class PairedFolders(Dataset):
    """(image, label) pairs from a list of (image path, mask path); ``label_map`` turns stored values into labels."""

    def __init__(self, pairs: list[tuple[Path, Path]], classes: tuple[str, ...] | None, *, reduce_zero: bool = False):
        self.pairs = pairs
        self.classes = classes
        self.reduce_zero = reduce_zero

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as image:
            rgb = np.asarray(image.convert("RGB"))
        with Image.open(mask_path) as mask:
            if mask.mode not in ("P", "L", "I", "I;16"):
                raise ValueError(
                    f"mask {mask_path}: a {mask.mode} image; masks must be index PNGs (one class index a pixel)"
                )
            label = np.asarray(mask).astype(np.int64)
        if label.shape != rgb.shape[:2]:
            raise ValueError(f"mask {mask_path} is {label.shape[::-1]}, its image {rgb.shape[1::-1]}; sizes must match")
        if self.reduce_zero:  # ADE20K: 0 is "other", unscored; classes start at 1
            label = np.where(label == 0, IGNORE_INDEX + 1, label) - 1
        label = np.where((label < 0) | (label > IGNORE_INDEX), IGNORE_INDEX, label)
        return rgb, label.astype(np.uint8)


def folder_pairs(images: str | Path, masks: str | Path) -> PairedFolders:
    """Images and index-PNG masks paired by file stem; an image without a mask is an error naming it."""
    images, masks = Path(images), Path(masks)
    for flag, folder in (("--images", images), ("--masks", masks)):
        if not folder.is_dir():
            raise ValueError(f"{flag} {folder}: no such folder")
    image_files = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    mask_files = {p.stem: p for p in sorted(masks.iterdir()) if p.suffix.lower() == ".png"}
    if not image_files:
        raise ValueError(f"--images {images}: no .jpg or .png images in it")
    unmatched = sorted(set(image_files) - set(mask_files))
    if unmatched:
        raise ValueError(
            f"--masks {masks}: no mask for {len(unmatched)} image(s), e.g. {unmatched[0]} (expected "
            f"{masks / (unmatched[0] + '.png')}); masks pair with images by file stem"
        )
    return PairedFolders([(image_files[stem], mask_files[stem]) for stem in image_files], None)


def ade20k(root: str | Path, split: str = "val") -> PairedFolders:
    """ADE20K's SceneParsing release (ADEChallengeData2016), 150 classes."""
    if split not in ADE20K_SPLITS:
        raise ValueError(f"unknown ADE20K split {split!r}; valid: train, val")
    root = Path(root)
    base = root if (root / "images").is_dir() else root / "ADEChallengeData2016"
    images, masks = base / "images" / ADE20K_SPLITS[split], base / "annotations" / ADE20K_SPLITS[split]
    if not images.is_dir() or not masks.is_dir():
        raise ValueError(
            f"--data-root {root}: no ADE20K here (expected {images} and {masks}); give the folder "
            "ADEChallengeData2016 unpacks to, or the folder holding it"
        )
    pairs = folder_pairs(images, masks).pairs
    return PairedFolders(pairs, ADE20K_CLASSES, reduce_zero=True)


def cityscapes(root: str | Path, split: str = "val") -> PairedFolders:
    """Cityscapes' fine annotations as train ids (19 classes)."""
    if split not in CITYSCAPES_SPLITS:
        raise ValueError(f"unknown Cityscapes split {split!r}; valid: {', '.join(CITYSCAPES_SPLITS)}")
    root = Path(root)
    images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
    if not images.is_dir() or not labels.is_dir():
        raise ValueError(
            f"--data-root {root}: no Cityscapes here (expected {images} and {labels}); give the folder holding "
            "leftImg8bit/ and gtFine/"
        )
    pairs = []
    for image in sorted(images.glob("*/*_leftImg8bit.png")):
        name = image.name[: -len("_leftImg8bit.png")]
        label = labels / image.parent.name / f"{name}_gtFine_labelTrainIds.png"
        if not label.is_file():
            raise ValueError(
                f"{label}: missing; create the train-id labels with cityscapesScripts' createTrainIdLabelImgs"
            )
        pairs.append((image, label))
    if not pairs:
        raise ValueError(f"{images}: no *_leftImg8bit.png images in its city folders")
    return PairedFolders(pairs, CITYSCAPES_CLASSES)
