"""``python -m segscale diagnose``: which scale the attention trusts, over many images (the "Scale diagnostics" view).

    python -m segscale diagnose --count 50 --split val --out diagnostics/
    python -m segscale diagnose --checkpoint voc.pt --dataset voc --data-root ~/data --count 200 --out diag/
    python -m segscale diagnose --checkpoint ade.pt --dataset ade20k --data-root ~/data --out diag/
    python -m segscale diagnose --checkpoint city.pt --dataset cityscapes --data-root ~/cityscapes --out diag/
    python -m segscale diagnose --checkpoint mine.pt --dataset folder --images photos/ --masks labels/ --out diag/
    python -m segscale diagnose --images a.jpg b.png --out diagnostics/
    torchrun --nproc_per_node 2 -m segscale diagnose --count 500 --out diagnostics/

It reads the data sets ``evaluate`` reads, with the same flags (:mod:`._datasets`), and reports the
same mIoU for the same merges and scales. Over labelled images it tabulates every visible object --
image, class, extent, visible pixels, mean attention weight per scale, dominant scale, recall
per merge -- and aggregates: mean weight per scale by object extent and by class, the share of
pixels each scale dominates, what each scale decides and the mIoU without it, and mIoU per merge
(all merges from one forward pass per image). ScaleShapes' objects are its generator's shapes;
a data set read from disk has only masks, so there an object is a connected region of one class
(:mod:`segscale.data.regions`). Over image files (``--images FILE ...`` without ``--dataset``, no
ground truth) it gives per image the mean weight and dominant share per scale and the attention
entropy. With ``--out`` it writes:

* labelled images: ``objects.csv`` (the per-object table), ``aggregates.json``, ``weight_by_extent.png``,
  ``weight_by_class.png``, ``dominant_share.png``, ``miou_by_merge.png``, ``decided_by_extent.png``;
* image files: ``images.csv``, ``aggregates.json``, ``image_weights.png``, ``dominant_share.png``.

Under ``torchrun`` each process runs its share of the images; the per-object (or per-image)
rows are gathered and the counts summed, and rank 0 prints and writes what one process would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import MERGE_MODES
from ..progress_bar import progress_bar
from ._datasets import IMAGE_FILES, add_dataset_arguments, check_dataset_arguments, dataset_kind, open_dataset
from ._inputs import (
    add_model_arguments,
    add_precision_argument,
    check_scaleshapes_request,
    load_predictor,
    prepare_out,
    write_bytes,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, count_default=50, image_files=True)
    add_model_arguments(parser, merge=False)
    add_precision_argument(
        parser, "float32", "so that the tables depend on no timing and every torchrun process computes alike"
    )
    parser.add_argument(
        "--merge", nargs="+", choices=MERGE_MODES, help="merges to score (default: every one the model has)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the CSV, the JSON aggregates and the PNG plots here (default: print only)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import distributed

    check_dataset_arguments(args)
    prepare_out(args.out)
    context = distributed.distributed_context(distributed.device_type(args.device))
    try:  # under torchrun each rank runs its share; rank 0 prints and writes what one process would
        args = argparse.Namespace(**{**vars(args), "device": distributed.rank_device(args.device, context)})
        return _run_images(args, context) if dataset_kind(args) == IMAGE_FILES else _run_labelled(args, context)
    finally:
        distributed.shutdown()


def _run_labelled(args: argparse.Namespace, context) -> int:
    """ScaleShapes or a data set from disk: the per-object table, its aggregates and the plots."""
    from .. import plots
    from ..diagnostics import dataset_diagnostics, scale_diagnostics

    predictor = load_predictor(args)
    chosen = open_dataset(args, predictor.classes)
    if chosen.pairs is None:
        check_scaleshapes_request(predictor, args.scales, predictor.inspection_merge)
    else:  # each image's own size is checked against the pixel budget as it comes
        predictor.check_request(args.scales, predictor.inspection_merge)
    share = len(context.share(range(chosen.count)))
    source = "" if chosen.pairs is None else chosen.dataset  # ScaleShapes' bar reads "diagnose val", as it did
    title = " ".join(part for part in ("diagnose", source, chosen.split) if part)
    with progress_bar(share, _bar_title(title, context), unit="img", enabled=not args.quiet and context.is_main) as bar:
        common = {"on_image": lambda _: bar.update(), "context": context}
        if chosen.pairs is None:
            diagnostics = scale_diagnostics(
                predictor, chosen.split, chosen.count, args.scales, args.merge, start=chosen.start, **common
            )
        else:
            diagnostics = dataset_diagnostics(
                predictor,
                chosen.pairs,
                chosen.start,
                chosen.count,
                args.scales,
                args.merge,
                dataset=chosen.dataset,
                split=chosen.split,
                **common,
            )
    if not context.is_main:
        return 0
    print(f"{predictor.metadata.name or args.checkpoint} on {predictor.device_name}")
    print(diagnostics.to_text())
    if args.out:
        files = {
            "objects.csv": diagnostics.to_csv().encode(),
            "aggregates.json": (
                json.dumps({"checkpoint": str(args.checkpoint), **diagnostics.to_dict()}, indent=2) + "\n"
            ).encode(),
        }
        files.update(
            {f"{name}.png": plots.figure_png(figure) for name, figure in plots.diagnostics_figures(diagnostics).items()}
        )
        _write(args.out, files)
    return 0


def _run_images(args: argparse.Namespace, context) -> int:
    from .. import plots
    from ..diagnostics import image_diagnostics
    from ..images import ImageError, check_min_size, load_image

    names = [path.name for path in args.images]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"several files are named {', '.join(repeated)}; the table could not tell them apart")
    say = print if context.is_main else lambda *_, **__: None  # every rank reads every file; rank 0 speaks
    images, names, skipped = [], [], 0
    for path in args.images:  # as the app's page: a file that cannot be used is left out with a warning
        try:
            if not path.is_file():
                raise ImageError("no such file" if not path.exists() else "not a file")
            loaded = load_image(path.read_bytes(), path.name)
            check_min_size(loaded.rgb)
        except (ImageError, OSError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            say(f"warning: {path}: {reason}; left out", file=sys.stderr)
            skipped += 1
            continue
        for notice in loaded.notices:
            say(f"note: {path.name}: {notice}")
        images.append(loaded.rgb)
        names.append(path.name)
    if skipped:
        say(
            f"warning: {skipped} of {len(args.images)} files left out (unreadable); {len(images)} remain",
            file=sys.stderr,
        )
    if not images:
        raise ValueError(f"none of the {len(args.images)} files could be read as an image; nothing to diagnose")
    predictor = load_predictor(args)
    for name, rgb in zip(names, images):  # the request and its pixel budget before the first forward pass
        try:
            predictor.check_request(args.scales, predictor.inspection_merge, image_size=rgb.shape[:2])
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    share = len(context.share(range(len(images))))
    with progress_bar(
        share, _bar_title("diagnose images", context), unit="img", enabled=not args.quiet and context.is_main
    ) as bar:
        result = image_diagnostics(
            predictor, images, names, args.scales, on_image=lambda _: bar.update(), context=context
        )
    if not context.is_main:
        return 0
    print(f"{predictor.metadata.name or args.checkpoint} on {predictor.device_name}")
    print(result.to_text())
    if args.out:
        _write(
            args.out,
            {
                "images.csv": result.to_csv().encode(),
                "aggregates.json": (
                    json.dumps({"checkpoint": str(args.checkpoint), **result.to_dict()}, indent=2) + "\n"
                ).encode(),
                "image_weights.png": plots.figure_png(plots.image_weights_figure(result)),
                "dominant_share.png": plots.figure_png(
                    plots.dominant_share_figure(result.scales, result.dominant_share)
                ),
            },
        )
    return 0


def _bar_title(title: str, context) -> str:
    return f"{title}, rank 0 of {context.world_size}" if context.is_distributed else title


def _write(out: Path, files: dict[str, bytes]) -> None:
    written = [write_bytes(out / name, data) for name, data in files.items()]
    print(f"wrote {', '.join(p.name for p in written)} to {out}")
