"""``python -m segscale evaluate``: score a checkpoint, for any scale set and merge modes.

    python -m segscale evaluate --checkpoint checkpoints/scaleshapes_demo.pt --split test --count 500 \
        --scales 1 0.75 0.5 --merge attention average max --json results.json
    python -m segscale evaluate --checkpoint voc.pt --dataset voc --data-root ~/data --split val
    python -m segscale evaluate --checkpoint ade.pt --dataset ade20k --data-root ~/data --count 2000
    python -m segscale evaluate --checkpoint mine.pt --dataset folder --images photos/ --masks labels/
    torchrun --nproc_per_node 2 -m segscale evaluate --count 500 --json results.json

Prints mIoU, pixel accuracy and per-class IoU per merge mode; for ScaleShapes also IoU by
object size and the mean attention weight per scale by object size. ``--json`` writes all of it.
The data set flags are :mod:`._datasets`', shared with ``diagnose``.
Under ``torchrun`` each process scores its share of the images and the counts are summed, so
rank 0 prints and writes the report one process would (means up to float rounding).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoint import DEFAULT_CHECKPOINT_PATH
from ..config import MERGE_MODES
from ._datasets import add_dataset_arguments, check_dataset_arguments
from ._inputs import add_precision_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT_PATH,
        help=f"the segscale .pt checkpoint to score (default: {DEFAULT_CHECKPOINT_PATH})",
    )
    add_dataset_arguments(parser, count_default=500)
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

    check_dataset_arguments(args)
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
    from ._datasets import open_dataset
    from ._inputs import PRECISIONS, check_scaleshapes_request

    options = FastPathOptions(autocast=PRECISIONS[args.precision])
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=distributed.rank_device(args.device, context), options=options
    )
    merges = tuple(dict.fromkeys(args.merge or [predictor.default_merge]))
    chosen = open_dataset(args, predictor.classes)
    for merge in merges:  # every merge and the scale set, before the first image
        if chosen.pairs is None:
            check_scaleshapes_request(predictor, args.scales, merge)
        else:
            predictor.check_request(args.scales, merge)
    enabled = not args.quiet and context.is_main  # rank 0's bar stands for every rank's
    share = len(context.share(range(chosen.count)))
    with progress_bar(share, _bar_title(context), unit="img", enabled=enabled) as bar:
        if chosen.pairs is None:
            report = evaluate_scaleshapes(
                predictor,
                chosen.split,
                chosen.count,
                args.scales,
                merges,
                chosen.start,
                on_image=lambda i: bar.update(),
                context=context,
            )
        else:
            report = evaluate_pairs_report(
                predictor,
                chosen.pairs,
                chosen.count,
                args.scales,
                merges,
                on_image=lambda i: bar.update(),
                context=context,
                start=chosen.start,
            )
            report["dataset"], report["split"] = chosen.dataset, chosen.split
    report["checkpoint"] = str(args.checkpoint)
    report["device"] = predictor.device_name
    return report, predictor.classes


def _bar_title(context) -> str:
    return f"evaluate, rank 0 of {context.world_size}" if context.is_distributed else "evaluate"


def format_report(report: dict, classes) -> str:
    from ..formatting import count_of, format_scale_set

    source = " ".join(part for part in (report["dataset"], report["split"]) if part)  # a folder has no split
    lines = [f"{source}, {count_of(report['images'], 'image')}, scales {format_scale_set(report['scales'])}"]
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
