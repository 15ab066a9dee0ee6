"""PASCAL VOC 2012's train_aug set built from VOC 2012 and SBD as their downloads unpack.

DeepLab (and Chen et al., "Attention to Scale") train on "train_aug": the VOC 2012 train
images plus the images SBD (Hariharan et al., 2011) annotated, minus every VOC 2012 val image
so that validation stays unseen; 10,582 images on the real data. DeepLab's release ships it as
index PNGs; torchvision's ``SBDataset`` downloader leaves SBD in its own layout instead::

    SBD/img/<id>.jpg
    SBD/cls/<id>.mat                  MATLAB struct GTcls, its field Segmentation: class indices 0..20
    SBD/{train,val}.txt

:func:`build_train_aug` writes what :class:`segscale.data.pascal.VOC2012Segmentation` reads
for ``split="train_aug"``::

    VOC2012/SegmentationClassAug/<id>.png   index PNGs, 0..20 and 255 (void), VOC's palette
    VOC2012/JPEGImages/<id>.jpg             SBD's image copied in where VOC lacks it
    VOC2012/ImageSets/Segmentation/train_aug.txt
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import IGNORE_INDEX
from ..palette import voc_color_map
from ..progress_bar import progress_bar
from .pascal import VOC_CLASSES, read_index_label

TRAIN_AUG_LIST = "train_aug.txt"
TRAIN_AUG_LABEL_DIR = "SegmentationClassAug"


def train_aug_ids(voc_train: set[str], voc_val: set[str], sbd_train: set[str], sbd_val: set[str]) -> list[str]:
    """DeepLab's train_aug: VOC train and all of SBD (its train and its val), less VOC val; sorted."""
    return sorted((voc_train | sbd_train | sbd_val) - voc_val)


def build_train_aug(voc2012_dir: Path, sbd_dir: Path, *, progress: bool = True) -> Path:
    """Write train_aug (labels, missing images, then its list) into ``voc2012_dir``; returns the list's path.

    The list is written last and atomically, so a list on disk means a complete set: if it is
    there nothing is done, and a conversion that was interrupted is resumed on the next call
    (each label and image is also written atomically, and the ones already there are kept).
    """
    voc2012_dir, sbd_dir = Path(voc2012_dir), Path(sbd_dir)
    list_dir = voc2012_dir / "ImageSets" / "Segmentation"
    list_path = list_dir / TRAIN_AUG_LIST
    if list_path.is_file():
        return list_path
    voc_train, voc_val = (_read_ids(list_dir / f"{split}.txt") for split in ("train", "val"))
    sbd_train, sbd_val = (_read_ids(sbd_dir / f"{split}.txt") for split in ("train", "val"))
    sbd_ids = sbd_train | sbd_val
    ids = train_aug_ids(voc_train, voc_val, sbd_train, sbd_val)
    label_dir, image_dir = voc2012_dir / TRAIN_AUG_LABEL_DIR, voc2012_dir / "JPEGImages"
    label_dir.mkdir(exist_ok=True)
    with progress_bar(len(ids), "train_aug", unit="img", enabled=progress) as bar:
        for name in ids:
            image = image_dir / f"{name}.jpg"
            if not image.is_file():
                _copy_atomically(sbd_dir / "img" / f"{name}.jpg", image)
            label = label_dir / f"{name}.png"
            if not label.is_file():
                # SBD annotated its images afresh (and more of them): its label wins where it has one.
                if name in sbd_ids:
                    indices = read_sbd_label(sbd_dir / "cls" / f"{name}.mat")
                else:
                    indices = read_index_label(voc2012_dir / "SegmentationClass" / f"{name}.png", num_classes=21)
                _check_same_size(image, indices, label)
                _save_index_png_atomically(indices, label)
            bar.update()
    _write_atomically(list_path, "".join(f"{name}\n" for name in ids).encode())
    return list_path


def read_sbd_label(path: Path) -> np.ndarray:
    """SBD's class label (``GTcls.Segmentation`` of its .mat file) as (H, W) uint8 indices 0..20."""
    from scipy.io import loadmat

    # The indexing torchvision's SBDataset uses: GTcls is a 1x1 struct array, Segmentation a cell of it.
    indices = np.asarray(loadmat(path)["GTcls"][0]["Segmentation"][0])
    bad = ((indices >= len(VOC_CLASSES)) & (indices != IGNORE_INDEX)) | (indices < 0)
    if indices.ndim != 2 or bad.any():
        raise ValueError(
            f"SBD label {path}: expected GTcls.Segmentation to be a 2-d array of class indices 0..20, "
            f"got shape {indices.shape} with values {sorted(int(v) for v in np.unique(indices))[:10]}"
        )
    return indices.astype(np.uint8)


def _read_ids(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; building train_aug needs the VOC 2012 and SBD id lists")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _check_same_size(image: Path, indices: np.ndarray, label: Path) -> None:
    with Image.open(image) as opened:
        width, height = opened.size
    if indices.shape != (height, width):
        raise ValueError(
            f"the label for {label.name} is {indices.shape[1]}x{indices.shape[0]} but its image {image} is "
            f"{width}x{height}; the VOC and SBD folders do not belong together"
        )


def _save_index_png_atomically(indices: np.ndarray, path: Path) -> None:
    picture = Image.fromarray(indices)
    # The palette VOC's own label PNGs carry (void in entry 255), so these open in colour in any viewer too.
    picture.putpalette([value for colour in voc_color_map() for value in colour])
    partial = path.with_name(f".{path.name}.partial")
    picture.save(partial, "PNG")
    os.replace(partial, path)


def _copy_atomically(source: Path, target: Path) -> None:
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist; train_aug needs this SBD image, which VOC lacks")
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
