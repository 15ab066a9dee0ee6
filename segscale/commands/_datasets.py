"""The data sets ``evaluate`` and ``diagnose`` read: one set of flags, one function from the flags to the images.

    --dataset scaleshapes                      generated, no download (--split train/val/test)
    --dataset voc|person_part --data-root DIR  PASCAL VOC 2012, PASCAL-Person-Part
    --dataset ade20k|cityscapes --data-root DIR
    --dataset folder --images DIR --masks DIR  index PNGs paired with the images by file stem, 255 ignored

``--start``/``--first`` and ``--count`` pick images ``start .. start + count - 1``: of ScaleShapes'
generated sequence, or of the data set's images in their sorted order.

``diagnose`` also reads image files without ground truth, ``--images FILE ...`` without ``--dataset``;
so there ``--images`` takes one or more paths, and ``--dataset folder`` reads it as the one folder
of images (``evaluate`` takes a single ``--images DIR``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("scaleshapes", "voc", "person_part", "ade20k", "cityscapes", "folder")
# Read from --data-root; "folder" takes --images and --masks instead, ScaleShapes is generated.
ROOTED_DATASETS = ("voc", "person_part", "ade20k", "cityscapes")
# diagnose's name for --images FILE ... without --dataset: image files, no ground truth.
IMAGE_FILES = "image files"


def add_dataset_arguments(parser: argparse.ArgumentParser, *, count_default: int, image_files: bool = False) -> None:
    """The data set flags. ``image_files``: ``--images`` also takes image files without ground truth (diagnose)."""
    without = " or, with --images FILE ... and no --dataset, image files without ground truth" if image_files else ""
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        help="what to score on: scaleshapes (generated, no download), voc (PASCAL VOC 2012), person_part "
        "(PASCAL-Person-Part), ade20k (ADEChallengeData2016), cityscapes (gtFine labelTrainIds), all four with "
        f"--data-root; or folder (--images DIR --masks DIR, index PNGs paired by file stem) (default: scaleshapes"
        f"{without})",
    )
    if image_files:
        parser.add_argument(
            "--images",
            type=Path,
            nargs="+",
            metavar="PATH",
            help="with --dataset folder: the one folder of images the --masks label; without --dataset: image "
            "files to diagnose without ground truth (unreadable ones are left out with a warning) (default: none)",
        )
    else:
        parser.add_argument(
            "--images", type=Path, metavar="DIR", help="--dataset folder: the folder of images (default: none)"
        )
    parser.add_argument(
        "--masks",
        type=Path,
        metavar="DIR",
        help="--dataset folder: index PNG masks named as the images, 255 ignored (default: none)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        metavar="DIR",
        help="the folder holding voc (VOCdevkit/), person_part, ade20k (ADEChallengeData2016/) or cityscapes "
        "(leftImg8bit/ and gtFine/) (default: none; needed for those four)",
    )
    parser.add_argument(
        "--split",
        default="val",
        help="scaleshapes: train, val or test; voc: train, val, trainval or train_aug; person_part: train or val; "
        "ade20k: train or val; cityscapes: train, val or test; folder: unused (default: val)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=count_default,
        metavar="N",
        help=f"images to run; ScaleShapes generates them, the others take N from --start on (default: {count_default})",
    )
    parser.add_argument(
        "--start",
        "--first",
        dest="start",
        type=int,
        default=0,
        metavar="INDEX",
        help=(
            "index of the first image: of ScaleShapes' sequence, or of the data set's images in sorted order; "
            "under torchrun write --first, as torchrun takes --start for its --start-method (default: 0)"
        ),
    )


def dataset_kind(args: argparse.Namespace) -> str:
    """The --dataset asked for; without one, image files where --images names files (diagnose), else ScaleShapes."""
    if args.dataset is not None:
        return args.dataset
    return IMAGE_FILES if isinstance(args.images, list) else "scaleshapes"


def check_dataset_arguments(args: argparse.Namespace) -> None:
    """Refuse what the chosen data set cannot use, before any model is loaded."""
    kind = dataset_kind(args)
    if kind != IMAGE_FILES and args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    if args.start < 0:
        raise ValueError(f"--start must be 0 or more, got {args.start}")
    if kind == "scaleshapes":
        from ..data.scaleshapes import SPLITS

        if args.split not in SPLITS:
            raise ValueError(f"unknown ScaleShapes split {args.split!r}; valid: {', '.join(SPLITS)}")
    if kind == "folder":
        if not args.images or not args.masks:
            raise ValueError("--dataset folder needs --images DIR and --masks DIR")
        if isinstance(args.images, list) and len(args.images) != 1:
            raise ValueError(
                f"--dataset folder reads one --images DIR (the folder of images), got {len(args.images)} paths; "
                "to diagnose image files without ground truth, leave --dataset and --masks out"
            )
    elif args.masks is not None:
        raise ValueError(f"--masks is read with --dataset folder only (the data set here is {kind})")
    elif args.images is not None and kind != IMAGE_FILES:
        takes_files = isinstance(args.images, list)  # diagnose's --images, which also takes image files
        raise ValueError(
            f"--images is read with --dataset folder only (the data set here is {kind})"
            + ("; to diagnose image files without ground truth, leave --dataset out" if takes_files else "")
        )
    if kind in ROOTED_DATASETS and not args.data_root:
        raise ValueError(f"--dataset {kind} needs --data-root (the folder holding the dataset)")


@dataclass(frozen=True)
class ChosenImages:
    """The labelled images the flags name: images ``start .. start + count - 1`` of ``split`` of ``dataset``.

    pairs: (image, label) pairs indexed as the data set is (labels index the checkpoint's classes, 255
        ignored); None for ScaleShapes, which the scoring pass generates itself with its object metadata.
    """

    dataset: str
    split: str
    start: int
    count: int
    pairs: object | None


def open_dataset(args: argparse.Namespace, classes) -> ChosenImages:
    """The data set of the flags (checked with :func:`check_dataset_arguments` first), for a checkpoint that
    predicts ``classes``; a layout that is not there is a ValueError naming the one expected."""
    kind = dataset_kind(args)
    if kind == "scaleshapes":
        return ChosenImages(kind, args.split, args.start, args.count, None)
    if kind == "folder":
        from ..data import folders

        images = args.images[0] if isinstance(args.images, list) else args.images
        pairs = folders.folder_pairs(images, args.masks)
        split = ""  # a folder has no splits
    elif kind in ("ade20k", "cityscapes"):
        from ..data import folders

        pairs = (folders.ade20k if kind == "ade20k" else folders.cityscapes)(args.data_root, args.split)
        if len(pairs.classes) != len(classes):
            raise ValueError(
                f"{args.checkpoint} predicts {len(classes)} classes, {kind} has {len(pairs.classes)}; "
                f"score it on a checkpoint trained for {kind}'s classes"
            )
        split = args.split
    else:
        from ..data import pascal

        reader = pascal.VOC2012Segmentation if kind == "voc" else pascal.PersonPartSegmentation
        pairs = reader(args.data_root, args.split)
        if list(pairs.classes) != list(classes):
            raise ValueError(f"{args.checkpoint} predicts {list(classes)}, not the classes of {kind}")
        split = args.split
    if args.start >= len(pairs):
        raise ValueError(f"--start {args.start} is past the last image: {kind} has {len(pairs)} (0..{len(pairs) - 1})")
    return ChosenImages(kind, split, args.start, min(args.count, len(pairs) - args.start), pairs)
