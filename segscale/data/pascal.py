"""PASCAL VOC 2012 and PASCAL-Person-Part, the two data sets of Chen et al. (CVPR 2016), read from disk.

Both follow the training-data contract shared with ScaleShapes: ``dataset[i]`` is a pair
``(image, label)`` of numpy arrays, image uint8 (H, W, 3) RGB and label uint8 (H, W) class
indices with 255 = ignore (VOC's "void" border); ``dataset.classes`` and ``dataset.palette``
name and colour the indices. Augmentation is not applied here (see
:mod:`segscale.data.transforms`), so a caller can look at the data exactly as stored.

Nothing here downloads anything. The layouts are the ones the public releases unpack to
(torchvision's ``VOCSegmentation`` uses the same VOC layout, so a folder it unpacked works):

PASCAL VOC 2012, ``root`` holding ``VOCdevkit/VOC2012/`` (or that folder itself)::

    VOC2012/JPEGImages/<id>.jpg
    VOC2012/SegmentationClass/<id>.png            palette PNGs of class indices (train, val, trainval)
    VOC2012/SegmentationClassAug/<id>.png         SBD-augmented labels (train_aug), DeepLab's release
    VOC2012/ImageSets/Segmentation/{train,val,trainval,train_aug}.txt

PASCAL-Person-Part, ``root`` as in DeepLab's release::

    root/JPEGImages/<id>.jpg
    root/SegmentationPart/<id>.png                index PNGs, 0..6 and 255
    root/pascal_person_part_trainval_list/{train,val}.txt

A list file holds one sample per line, either a plain id (``2007_000032``) or DeepLab's pair
of paths relative to the data set folder (``/JPEGImages/2007_000032.jpg
/SegmentationClassAug/2007_000032.png``); both forms may be mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..config import IGNORE_INDEX
from ..palette import voc_color_map

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

PERSON_PART_CLASSES = (
    "background",
    "head",
    "torso",
    "upper arms",
    "lower arms",
    "upper legs",
    "lower legs",
)


VOC_PALETTE = voc_color_map(len(VOC_CLASSES))
# DeepLab's Person-Part PNGs carry the VOC palette, so parts get the same colours they have in its release.
PERSON_PART_PALETTE = voc_color_map(len(PERSON_PART_CLASSES))

VOC_SOURCE = (
    "PASCAL VOC 2012 comes from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ "
    "(VOCtrainval_11-May-2012.tar unpacks to VOCdevkit/VOC2012)"
)
SBD_SOURCE = (
    "the 10,582-image train_aug set is VOC 2012 train plus SBD "
    "(http://home.bharathh.info/pubs/codes/SBD/download.html) minus VOC 2012 val; DeepLab's release converts it to "
    "index PNGs: unpack SegmentationClassAug/ into VOCdevkit/VOC2012/ "
    "and put its list as ImageSets/Segmentation/train_aug.txt (or let "
    "`python -m segscale train-head CHECKPOINT --download --sbd` fetch SBD and build both)"
)
PERSON_PART_SOURCE = (
    "PASCAL-Person-Part (Chen et al., CVPR 2014, from the PASCAL-Part annotations "
    "http://roozbehm.info/pascal-parts/pascal-parts.html) is distributed with DeepLab, see "
    "http://liangchiehchen.com/projects/Datasets.html; its images are the VOC JPEGImages"
)


@dataclass(frozen=True)
class SamplePaths:
    """Where one sample lives: its id (the file stem) and the image and label files."""

    name: str
    image: Path
    label: Path


class PairListDataset(Dataset):
    """Image/label pairs named by a list file; the shared reading and checking of both PASCAL sets.

    Subclasses find the list and say how plain ids map to files; this class reads the pairs,
    checks at construction that every listed file exists (so a training run fails in its first
    second, not hours in), and decodes a pair on each ``__getitem__``.
    """

    classes: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()

    def __init__(self, samples: tuple[SamplePaths, ...], *, list_path: Path, help_text: str, check_files: bool = True):
        if not samples:
            raise ValueError(f"the list {list_path} names no samples; {help_text}")
        self.samples = samples
        self.list_path = list_path
        self._help_text = help_text
        if check_files:
            _check_samples_exist(samples, list_path, help_text)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 (H, W, 3) RGB, label uint8 (H, W) with 255 = ignore) of sample ``index``."""
        sample = self.samples[index]
        image = read_rgb(sample.image)
        label = read_index_label(sample.label, num_classes=len(self.classes))
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"image {sample.image} is {image.shape[1]}x{image.shape[0]} but its label {sample.label} is "
                f"{label.shape[1]}x{label.shape[0]}; the two files of a sample must have the same size"
            )
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples from {self.list_path})"


class VOC2012Segmentation(PairListDataset):
    """PASCAL VOC 2012 semantic segmentation: 21 classes, labels 0..20 and 255 on object borders.

    Args:
        root: the folder holding ``VOCdevkit/VOC2012`` (torchvision's root), or ``VOC2012`` itself.
        split: "train" (1,464), "val" (1,449), "trainval" (2,913) or "train_aug" (10,582, the
            paper's training set: VOC train plus SBD, from ``SegmentationClassAug``).
        check_files: check at construction that every listed image and label exists.
    """

    SPLITS = ("train", "val", "trainval", "train_aug")
    classes = VOC_CLASSES
    palette = VOC_PALETTE

    def __init__(self, root: str | Path, split: str = "train", *, check_files: bool = True):
        _check_split(split, self.SPLITS, "PASCAL VOC 2012")
        self.split = split
        self.root = find_voc2012_dir(root)
        help_text = SBD_SOURCE if split == "train_aug" else VOC_SOURCE
        list_path = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_path.is_file():
            raise FileNotFoundError(
                f"no list file {list_path} for the {split!r} split of PASCAL VOC 2012; expected "
                f"VOC2012/ImageSets/Segmentation/{split}.txt with one image id per line; {help_text}"
            )
        label_dir = "SegmentationClassAug" if split == "train_aug" else "SegmentationClass"
        samples = read_pair_list(list_path, self.root, image_dir="JPEGImages", label_dir=label_dir)
        super().__init__(samples, list_path=list_path, help_text=help_text, check_files=check_files)


class PersonPartSegmentation(PairListDataset):
    """PASCAL-Person-Part: six body parts and background, on the people of PASCAL VOC 2010 images.

    Args:
        root: the folder of DeepLab's release, holding ``JPEGImages``, ``SegmentationPart`` and
            ``pascal_person_part_trainval_list``.
        split: "train" (1,716 images) or "val" (1,817).
        check_files: check at construction that every listed image and label exists.
    """

    SPLITS = ("train", "val")
    LIST_DIR = "pascal_person_part_trainval_list"
    classes = PERSON_PART_CLASSES
    palette = PERSON_PART_PALETTE

    def __init__(self, root: str | Path, split: str = "train", *, check_files: bool = True):
        _check_split(split, self.SPLITS, "PASCAL-Person-Part")
        self.split = split
        self.root = Path(root).expanduser()
        layout = "JPEGImages/, SegmentationPart/ and pascal_person_part_trainval_list/{train,val}.txt"
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"PASCAL-Person-Part folder {self.root} does not exist; expected a folder holding {layout}; "
                f"{PERSON_PART_SOURCE}"
            )
        list_path = self.root / self.LIST_DIR / f"{split}.txt"
        if not list_path.is_file():
            raise FileNotFoundError(
                f"no list file {list_path} for the {split!r} split of PASCAL-Person-Part; expected {self.root} "
                f"to hold {layout}; {PERSON_PART_SOURCE}"
            )
        samples = read_pair_list(list_path, self.root, image_dir="JPEGImages", label_dir="SegmentationPart")
        super().__init__(samples, list_path=list_path, help_text=PERSON_PART_SOURCE, check_files=check_files)


def find_voc2012_dir(root: str | Path) -> Path:
    """The ``VOC2012`` folder under ``root``: ``root/VOCdevkit/VOC2012``, ``root/VOC2012`` or ``root`` itself."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"PASCAL VOC root {root} does not exist; expected a folder holding VOCdevkit/VOC2012/"
            f"{{JPEGImages,SegmentationClass,ImageSets/Segmentation}}; {VOC_SOURCE}"
        )
    candidates = (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root)
    for candidate in candidates:
        if (candidate / "JPEGImages").is_dir() and (candidate / "ImageSets").is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"found no VOC2012 folder (one holding JPEGImages/ and ImageSets/) under {root}; looked at {looked}; "
        f"{VOC_SOURCE}"
    )


def read_pair_list(list_path: Path, base_dir: Path, *, image_dir: str, label_dir: str) -> tuple[SamplePaths, ...]:
    """Parse a list file: plain ids, or DeepLab's ``/JPEGImages/x.jpg /Labels/x.png`` pairs.

    Pair paths are relative to ``base_dir`` (the leading slash is DeepLab's, not the file
    system root); a plain id becomes ``base_dir/image_dir/<id>.jpg`` and ``base_dir/label_dir/<id>.png``.
    """
    samples = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 1:
            name = Path(fields[0]).stem  # tolerates "x.jpg" or "/JPEGImages/x.jpg" as well as "x"
            samples.append(
                SamplePaths(name, base_dir / image_dir / f"{name}.jpg", base_dir / label_dir / f"{name}.png")
            )
        elif len(fields) == 2:
            image, label = (base_dir / field.lstrip("/") for field in fields)
            samples.append(SamplePaths(image.stem, image, label))
        else:
            raise ValueError(
                f"{list_path}, line {number}: expected an image id or 'IMAGE_PATH LABEL_PATH', got {line.strip()!r}"
            )
    return tuple(samples)


def read_rgb(path: Path) -> np.ndarray:
    """A JPEG as (H, W, 3) uint8 RGB, pixels as stored.

    No EXIF rotation on purpose: the label PNGs were drawn on the stored pixel grid.
    """
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_index_label(path: Path, *, num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """An index PNG (palette "P" or greyscale "L") as (H, W) uint8 class indices.

    The indices are read, never the colours, so the void border keeps its value 255. A
    colour-coded RGB label, or one with an index outside 0..num_classes-1 and ``ignore_index``,
    is an error: silently training on wrong classes is worse than stopping.
    """
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(
                f"label {path} is a {image.mode} image; expected a palette (P) or greyscale (L) PNG of class "
                f"indices 0..{num_classes - 1} and {ignore_index}, as in the official releases"
            )
        label = np.array(image, dtype=np.uint8)
    bad = (label >= num_classes) & (label != ignore_index)
    if bad.any():
        raise ValueError(
            f"label {path} holds indices {sorted(int(v) for v in np.unique(label[bad]))[:10]} outside the "
            f"{num_classes} classes (0..{num_classes - 1}) and the "
            f"ignore value {ignore_index}; is it the right data set?"
        )
    return label


def _check_split(split: str, valid: tuple[str, ...], dataset: str) -> None:
    if split not in valid:
        raise ValueError(f"unknown {dataset} split {split!r}; valid: {', '.join(valid)}")


def _check_samples_exist(samples: tuple[SamplePaths, ...], list_path: Path, help_text: str) -> None:
    missing = [path for sample in samples for path in (sample.image, sample.label) if not path.is_file()]
    if missing:
        shown = ", ".join(str(path) for path in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"{len(missing)} file(s) named by {list_path} do not exist: {shown}{more}; {help_text}")
