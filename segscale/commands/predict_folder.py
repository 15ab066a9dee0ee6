"""``python -m segscale predict FOLDER|GLOB|LIST``: a folder job, on one process or under torchrun.

    python -m segscale predict photos/ --out results/
    python -m segscale predict 'data/val/**/*.jpg' --out results/ --outputs labels attention maps
    torchrun --nproc_per_node 2 -m segscale predict photos/ --out results/

Each image's outputs mirror the input tree under ``--out`` (``photos/a/b.jpg`` ->
``results/a/b_labels.png``); ``results/summary.json`` counts what was done, skipped (already
complete) and unreadable. Rerunning the command resumes: complete outputs are kept. See
:mod:`segscale.batch.runner` for the steps; ``predict`` with image files (not a folder) keeps
its one-image behaviour in :mod:`segscale.commands.predict`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..outputs import OUTPUT_NAMES
from ..photos import shapes_model_on_photo_note
from ._inputs import PRECISIONS, check_ablation_request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of folder jobs, added to ``predict``'s own."""
    group = parser.add_argument_group("folders, globs and list files (one IMAGE argument naming many images)")
    group.add_argument(
        "--outputs",
        nargs="+",
        choices=OUTPUT_NAMES,
        default=None,
        metavar="KIND",
        help=f"files to write per image, of {', '.join(OUTPUT_NAMES)} (default: labels for a folder, "
        "every kind for image files)",
    )
    group.add_argument("--batch-size", type=int, default=4, help="images of one size per model call (default: 4)")
    group.add_argument(
        "--workers", type=int, default=2, help="decoding processes per rank; 0 decodes in-process (default: 2)"
    )
    group.add_argument(
        "--tile",
        type=int,
        metavar="PX",
        help=(
            "sliding-window inference with PX x PX tiles (a multiple of 64) for "
            "images too large for memory at the scales (default: none, whole images)"
        ),
    )
    group.add_argument(
        "--tile-overlap", type=int, default=128, metavar="PX", help="overlap of neighbouring tiles (default: 128)"
    )
    group.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="auto",
        help="auto: bf16 where it measures faster and its labels agree with float32 (default); float32; bf16",
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import distributed
    from ..batch.inputs import enumerate_inputs
    from ..batch.runner import (
        DEFAULT_OUTPUTS,
        JOB_NAME,
        SUMMARY_NAME,
        BatchSettings,
        check_resumable,
        job_record,
        run_folder,
        summary,
        write_summary,
    )
    from ..inference import FastPathOptions
    from ..predictor import Predictor

    if args.max_side < 16:
        raise ValueError(f"--max-side must be at least 16, got {args.max_side}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {args.workers}")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    if args.tile is not None:
        from ..sliding_window import tile_spans

        tile_spans(args.tile + 1, args.tile, args.tile_overlap, 1.0)  # checks the tile size and overlap
    items = enumerate_inputs(args.images[0])  # before the model loads, so a typo fails at once

    context = distributed.distributed_context(distributed.device_type(args.device))
    try:
        device = distributed.rank_device(args.device, context)
        options = FastPathOptions(autocast=PRECISIONS[args.precision])
        predictor = Predictor.from_checkpoint(args.checkpoint, device=device, max_side=args.max_side, options=options)
        scales, merge = predictor.check_request(args.scales, args.merge)
        check_ablation_request(args.outputs, scales)
        settings = BatchSettings(
            scales=scales,
            merge=merge,
            outputs=tuple(args.outputs or DEFAULT_OUTPUTS),
            batch_size=args.batch_size,
            workers=args.workers,
            max_side=args.max_side,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
        )
        if context.is_main:
            print(
                f"{predictor.metadata.name or args.checkpoint.name}: {merge} over {_format_scales(scales)}, "
                f"{len(items)} images, {context.world_size} process(es) on {predictor.device_name}",
                file=sys.stderr,
            )
            note = shapes_model_on_photo_note(predictor.metadata.classes)  # as for one image, and in the app
            if note:
                print(f"note: {note}", file=sys.stderr)
        record = job_record(settings, predictor)
        check_resumable(args.out, record)
        distributed.barrier()  # every rank has checked before rank 0 writes the new record
        if context.is_main:
            write_summary(args.out / JOB_NAME, record)
        share = len(distributed.shard(items, context.rank, context.world_size))
        with tqdm(
            total=share,
            unit="img",
            desc=f"rank 0 of {context.world_size}" if context.is_distributed else "predict",
            disable=not context.is_main,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as progress:
            result = run_folder(predictor, items, args.out, settings, context, progress)
        rows = distributed.gather_rows(result.rows)
        seconds = max(distributed.gather_rows([result.seconds]))
        precisions = distributed.gather_rows([predictor.precision])
        if context.is_main:
            report = summary(rows, settings, predictor, context, seconds, precisions)
            write_summary(args.out / SUMMARY_NAME, report)
            _print_report(report, args.out / SUMMARY_NAME)
        distributed.barrier()
    finally:
        distributed.shutdown()
    return 0


def _format_scales(scales) -> str:
    return "{" + ", ".join(f"{scale:g}" for scale in scales) + "}"


def _print_report(report: dict, path: Path) -> None:
    rate = report["images_per_second"]
    print(
        f"{report['done']} predicted, {report['skipped_complete']} "
        f"already complete, {report['unreadable_count']} unreadable"
        + (f"; {rate:.2f} images/s over {report['processes']} process(es)" if rate else "")
        + f" -> {path}",
    )
    for entry in report["unreadable"]:
        print(f"  unreadable: {entry['input']}: {entry['reason']}")
