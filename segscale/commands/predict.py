"""``python -m segscale predict``: the app's main view without a browser.

    python -m segscale predict photo.jpg --scales 1 0.75 0.5 --merge attention --out results/

For every image it writes the kinds of :data:`segscale.outputs.OUTPUT_KINDS`, the page's downloads among them, with
the same names and bytes (``<stem>``: image, merge, scale set):

* ``<stem>_labels.png``    the fused labels as an indexed (palette) PNG;
* ``<stem>_attention.png`` the weight maps w^s side by side (not for ``--merge max``);
* ``<stem>_maps.npz``      every map of the prediction as arrays;
* ``<stem>_figure.png``    the side-by-side figure (input, labels, class map and weights per
  scale; fused labels, dominant scale, entropy);
* ``<stem>_ablation.png``  leave one scale out: the labels without each scale and the pixels it
  decides (two or more scales; its shares are printed too).

``--outputs KIND ...`` writes only those files (default: all of them).

Images are read by :func:`segscale.images.load_image`, the app's reader, so the same files
are accepted, turned upright and refused, with the same messages.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import visualize as viz
from ..batch.inputs import is_batch_input
from ..config import MERGE_MODES
from ..formatting import format_scale_set
from ..images import ImageError, load_image
from ..outputs import OutputOptions, kinds_that_apply, output_paths, safe_file_stem, write_outputs
from ..photos import shapes_model_on_photo_note
from ._inputs import add_max_side_argument, add_model_arguments, check_ablation_request
from .predict_folder import add_arguments as add_folder_arguments
from .predict_folder import run as run_folder_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files (PNG, JPEG, WebP, BMP, TIFF, GIF), or one folder, quoted glob or list file (.txt) of them",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the maps and figures (required; created if missing)",
    )
    add_model_arguments(parser, merge=False)
    parser.add_argument("--merge", choices=MERGE_MODES, help="how to merge the scales (default: the checkpoint's own)")
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help=(
            "class whose score map the figure shows (default: the most frequent predicted class besides the background)"
        ),
    )
    parser.add_argument(
        "--score",
        choices=viz.SCORE_KINDS,
        default="probability",
        help="show that class as a probability (0-1) or as the raw score f^s_c (default: probability)",
    )
    add_max_side_argument(parser)
    add_folder_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..predictor import Predictor

    if any(is_batch_input(path) for path in args.images):  # a folder job: segscale/commands/predict_folder.py
        if len(args.images) > 1:
            raise ValueError("give one folder, glob pattern or list file, or any number of image files, not both")
        return run_folder_job(args)
    if args.max_side < 16:
        raise ValueError(f"--max-side must be at least 16, got {args.max_side}")
    stems = [safe_file_stem(path.name) for path in args.images]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise ValueError(
            f"several images would write the same files ({', '.join(repeated)}); rename or predict them separately"
        )
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    for path in args.images:  # every input is checked before the model loads, so a typo fails at once
        if not path.is_file():
            raise ValueError(f"{path}: no such file")

    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, max_side=args.max_side)
    metadata = predictor.metadata
    scales, merge = predictor.check_request(args.scales, args.merge)
    kinds = tuple(args.outputs) if args.outputs else None
    check_ablation_request(kinds, scales)
    class_index = _class_index(args.class_name, metadata.classes)
    print(
        f"{metadata.name or args.checkpoint.name} on {predictor.device_name}: {merge} over {format_scale_set(scales)}"
    )

    note = shapes_model_on_photo_note(metadata.classes)  # the app's line for an image of one's own
    if note:
        print(f"note: {note}")

    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        try:
            loaded = load_image(path.read_bytes(), path.name, max_side=args.max_side)
        except ImageError as error:
            raise ImageError(f"{path}: {error}") from None
        for notice in loaded.notices:
            print(f"  {path.name}: {notice}")
        started = time.perf_counter()
        prediction = predictor.predict(loaded.rgb, scales=scales, merge=merge)
        paths = output_paths(args.out, path.name, merge, scales, kinds_that_apply(kinds, merge, scales))
        options = OutputOptions(title=path.name, class_index=class_index, score_kind=args.score)
        written = write_outputs(prediction, metadata, paths, options)
        if len(scales) > 1 and (kinds is None or "ablation" in kinds):
            print(prediction.scale_ablation().to_text())
        print(
            f"{path.name}: {loaded.rgb.shape[1]}x{loaded.rgb.shape[0]}, model {prediction.timings.model_s:.2f} s, "
            f"total {time.perf_counter() - started:.2f} s -> {', '.join(p.name for p in written)}"
        )
    return 0


def _class_index(name: str | None, classes) -> int | None:
    if name is None:
        return None
    if name not in classes:
        raise ValueError(f"unknown class {name!r}; this checkpoint's classes: {', '.join(classes)}")
    return list(classes).index(name)
