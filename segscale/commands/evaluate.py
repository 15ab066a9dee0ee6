"""``python -m segscale evaluate``: score a checkpoint, for any scale set and merge modes.

    python -m segscale evaluate --checkpoint checkpoints/scaleshapes_demo.pt --split test --count 500 \
        --scales 1 0.75 0.5 --merge attention average max --json results.json
    python -m segscale evaluate --checkpoint voc.pt --dataset voc --data-root ~/data --split val
    torchrun --nproc_per_node 2 -m segscale evaluate --count 500 --json results.json

Prints mIoU, pixel accuracy and per-class IoU per merge mode; for ScaleShapes also IoU by
object size and the mean attention weight per scale by object size. ``--json`` writes all of it.
Under ``torchrun`` each process scores its share of the images and the counts are summed, so
rank 0 prints and writes the report one process would (means up to float rounding).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoint import DEFAULT_CHECKPOINT_PATH
from ..config import MERGE_MODES
from ._inputs import add_precision_argument

DATASETS = ("scaleshapes", "voc", "person_part", "ade20k", "cityscapes", "folder")
# Those read by segscale.data.folders; "folder" takes --images and --masks instead of --data-root.
FOLDER_DATASETS = ("ade20k", "cityscapes", "folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT_PATH,
        help=f"the segscale .pt checkpoint to score (default: {DEFAULT_CHECKPOINT_PATH})",
    )
    parser.add_argument(
        "--dataset",
        default="scaleshapes",
        choices=DATASETS,
        help="what to score on: scaleshapes (generated, no download), voc (PASCAL VOC 2012), person_part "
        "(PASCAL-Person-Part), ade20k (ADEChallengeData2016), cityscapes (gtFine labelTrainIds), all with "
        "--data-root; or folder (--images DIR --masks DIR, index PNGs paired by file stem) (default: scaleshapes)",
    )
    parser.add_argument("--images", type=Path, metavar="DIR", help="--dataset folder: the images (default: none)")
    parser.add_argument(
        "--masks",
        type=Path,
        metavar="DIR",
        help="--dataset folder: index PNG masks named as the images, 255 ignored (default: none)",
    )
    parser.add_argument(
        "--data-root",
        help=(
            "folder holding VOC (with VOCdevkit/) or PASCAL-Person-Part (default: none; needed for voc and person_part)"
        ),
    )
    parser.add_argument(
        "--split",
        default="val",
        help="scaleshapes: train, val or test; voc and person_part: val or train (default: val)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=500,
        help="images to score; ScaleShapes generates them, the others take the first N (default: 500)",
    )
    parser.add_argument(
        "--start",
        "--first",
        dest="start",
        type=int,
        default=0,
        metavar="INDEX",
        help=(
            "index of the first ScaleShapes image; under torchrun write --first, "
            "as torchrun takes --start for its --start-method (default: 0)"
        ),
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        metavar="S",
        help="the scale set to predict with (default: the checkpoint's trained set)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        choices=MERGE_MODES,
        help="merge modes to score, all from one forward pass (default: the checkpoint's own)",
    )
    parser.add_argument("--device", help="where to run: cpu, cuda, cuda:1, mps (default: the best available)")
    add_precision_argument(
        parser, "float32", "so that a score depends on no timing and every torchrun process computes alike"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the full report to this JSON file (default: print only)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import distributed

    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    if args.start < 0:
        raise ValueError(f"--start must be 0 or more, got {args.start}")
    if args.dataset == "scaleshapes":
        from ..data.scaleshapes import SPLITS

        if args.split not in SPLITS:
            raise ValueError(f"unknown ScaleShapes split {args.split!r}; valid: {', '.join(SPLITS)}")
    elif args.dataset == "folder":
        if not args.images or not args.masks:
            raise ValueError("--dataset folder needs --images DIR and --masks DIR")
    elif not args.data_root:
        raise ValueError(f"--dataset {args.dataset} needs --data-root (the folder holding the dataset)")
    if args.json is not None and args.json.is_dir():
        raise ValueError(f"--json {args.json} is a folder; give a file name such as {args.json / 'report.json'}")
    context = distributed.distributed_context(distributed.device_type(args.device))
    try:
        report, classes = _score(args, context)
        if context.is_main:  # every rank holds the summed report; one prints and writes it
            print(format_report(report, classes))
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2) + "\n")
                print(f"wrote {args.json}")
    finally:
        distributed.shutdown()
    return 0


def _score(args: argparse.Namespace, context) -> tuple[dict, list[str]]:
    """(the report, the class names): this rank's share of the images, summed over every rank."""
    from .. import distributed
    from ..evaluation import evaluate_pairs_report, evaluate_scaleshapes
    from ..inference import FastPathOptions
    from ..predictor import Predictor
    from ..progress_bar import progress_bar
    from ._inputs import PRECISIONS, check_scaleshapes_request

    options = FastPathOptions(autocast=PRECISIONS[args.precision])
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=distributed.rank_device(args.device, context), options=options
    )
    merges = tuple(dict.fromkeys(args.merge or [predictor.default_merge]))
    for merge in merges:  # every merge and the scale set, before the first image
        if args.dataset == "scaleshapes":
            check_scaleshapes_request(predictor, args.scales, merge)
        else:
            predictor.check_request(args.scales, merge)
    enabled = not args.quiet and context.is_main  # rank 0's bar stands for every rank's
    if args.dataset == "scaleshapes":
        share = len(context.share(range(args.count)))
        with progress_bar(share, _bar_title(context), unit="img", enabled=enabled) as bar:
            report = evaluate_scaleshapes(
                predictor,
                args.split,
                args.count,
                args.scales,
                merges,
                args.start,
                on_image=lambda i: bar.update(),
                context=context,
            )
    else:
        if args.dataset in FOLDER_DATASETS:
            dataset = _folder_dataset(args, predictor.classes)
        else:
            from ..data import pascal

            dataset = (pascal.VOC2012Segmentation if args.dataset == "voc" else pascal.PersonPartSegmentation)(
                args.data_root, args.split
            )
            if list(dataset.classes) != predictor.classes:
                raise ValueError(f"{args.checkpoint} predicts {predictor.classes}, not the classes of {args.dataset}")
        count = min(args.count, len(dataset))
        with progress_bar(len(context.share(range(count))), _bar_title(context), unit="img", enabled=enabled) as bar:
            report = evaluate_pairs_report(
                predictor, dataset, count, args.scales, merges, on_image=lambda i: bar.update(), context=context
            )
        report["dataset"], report["split"] = args.dataset, args.split
    report["checkpoint"] = str(args.checkpoint)
    report["device"] = predictor.device_name
    return report, predictor.classes


def _folder_dataset(args: argparse.Namespace, classes: list[str]):
    """ADE20K, Cityscapes or a pair of folders; the checkpoint must predict as many classes as the data set has."""
    from ..data import folders

    if args.dataset == "folder":
        return folders.folder_pairs(args.images, args.masks)
    dataset = (folders.ade20k if args.dataset == "ade20k" else folders.cityscapes)(args.data_root, args.split)
    if len(dataset.classes) != len(classes):
        raise ValueError(
            f"{args.checkpoint} predicts {len(classes)} classes, {args.dataset} has {len(dataset.classes)}; "
            f"score it on a checkpoint trained for {args.dataset}'s classes"
        )
    return dataset


def _bar_title(context) -> str:
    return f"evaluate, rank 0 of {context.world_size}" if context.is_distributed else "evaluate"


def format_report(report: dict, classes) -> str:
    from ..formatting import count_of, format_scale_set

    lines = [
        f"{report['dataset']} {report['split']}, {count_of(report['images'], 'image')}, "
        f"scales {format_scale_set(report['scales'])}"
    ]
    header = f"{'merge':<10}{'mIoU':>8}{'pixel acc':>11}  " + " ".join(f"{c[:8]:>8}" for c in classes)
    lines += [header, "-" * len(header)]
    for merge, scores in report["merges"].items():
        ious = " ".join(f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in scores["class_iou"].values())
        lines.append(f"{merge:<10}{scores['miou']:8.4f}{scores['pixel_accuracy']:11.4f}  {ious}")
    first = next(iter(report["merges"].values()))
    if "iou_by_size" in first:
        lines += ["", "IoU by object extent (px):"]
        bins = first["iou_by_size"]
        lines.append(f"{'merge':<10}" + "".join(f"{int(b['extent_low']):>5}-{int(b['extent_high']):<5}" for b in bins))
        for merge, scores in report["merges"].items():
            lines.append(
                f"{merge:<10}"
                + "".join(f"{b['iou']:11.3f}" if b["iou"] is not None else f"{'-':>11}" for b in scores["iou_by_size"])
            )
        lines.append(f"{'objects':<10}" + "".join(f"{b['objects']:11d}" for b in bins))
    if "attention_by_size" in report:
        lines += ["", "mean attention weight per scale, by object extent (px):"]
        lines.append(
            f"{'extent':<12}" + "".join(f"{'s=' + s:>9}" for s in report["attention_by_size"][0]["mean_weight"])
        )
        for row in report["attention_by_size"]:
            weights = "".join(f"{w:9.3f}" if w is not None else f"{'-':>9}" for w in row["mean_weight"].values())
            lines.append(
                f"{int(row['extent_low']):>4}-{int(row['extent_high']):<7}{weights}   "
                f"({count_of(row['objects'], 'object')})"
            )
    return "\n".join(lines)
