"""``python -m segscale compare``: attention, average and max pooling on one image, side by side, without a browser.

    python -m segscale compare photo.jpg --out compare/
    python -m segscale compare --sample val:3 --out compare/ --json
    python -m segscale compare photo.png --labels photo_labels.png --out compare/

All merges are scored from one forward pass (they differ only in Eq. 1's weights). It prints
where they disagree and, with ground truth (a ScaleShapes sample has its own; for an image
file give ``--labels FILE``), each merge's mIoU, pixel accuracy and per-class IoU. A label
image is a palette PNG or a greyscale PNG of class indices (255: ignore) of the image's size,
or an RGB PNG in the checkpoint's class colours. With ``--out`` it writes, named after the image:

* ``<stem>_labels_<merge>.png``  each merge's labels (indexed PNG with the checkpoint's palette);
* ``<stem>_disagreement.png``    white where the merges disagree, black elsewhere;
* ``<stem>_errors_<merge>.png``  with ground truth: white where the merge is wrong;
* ``<stem>_max_deciding_scale.png``  max pooling's deciding scale per pixel (indexed PNG: the
  value is the scale's index in the set, the colour the scale's);
* ``<stem>_comparison.png``      the figure with all of them;
* ``<stem>_comparison.json``     the numbers.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from ..diagnostics.ablation import deciding_scale_at, index_shares, max_deciding_text
from ..palette import scale_colour
from ._inputs import add_image_arguments, add_model_arguments, load_predictor, prepare_out, read_input, write_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_arguments(parser)
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="ground truth for IMAGE: a palette PNG or greyscale PNG of class indices (255: ignore) of the image's "
        "size; gives IoU and error maps (default: none; a --sample brings its own)",
    )
    add_model_arguments(parser, merge=False)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the label, disagreement and error PNGs and the figure here (default: print only)",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import compare_merges

    if args.labels is not None and args.sample is not None:
        raise ValueError("--labels is for an IMAGE file; a --sample brings its own ground truth")
    if args.labels is not None and not args.labels.is_file():
        raise ValueError(f"--labels {args.labels}: no such file")
    source = read_input(args)
    prepare_out(args.out)
    predictor = load_predictor(args, max_side=args.max_side)
    scales, merge = predictor.check_request(args.scales, predictor.inspection_merge, image_size=source.original_size)
    ground_truth = source.ground_truth
    if args.labels is not None:
        ground_truth = read_labels(args.labels, predictor, source)
    prediction = predictor.predict(source.rgb, scales=scales, merge=merge)
    comparison = compare_merges(prediction, ground_truth, predictor.classes)
    written = (
        write_outputs(comparison, prediction, predictor.palette, args.out, source.stem, source.name) if args.out else []
    )
    deciding = prediction.max_deciding_scale()
    deciding_shares = dict(zip(map(str, scales), index_shares(deciding, len(scales))))
    if args.json:
        print(
            json.dumps(
                {
                    "image": source.name,
                    "checkpoint": str(args.checkpoint),
                    "scales": list(scales),
                    **comparison.to_dict(),
                    "max_deciding_scale_share": deciding_shares,
                },
                indent=2,
            )
        )
        return 0
    for notice in source.notices:
        print(f"note: {notice}")
    print(
        f"{source.name} · {predictor.metadata.name or args.checkpoint.name} "
        f"· scales {{{', '.join(f'{s:g}' for s in scales)}}}"
    )
    print(comparison.to_text())
    print(max_deciding_text(deciding, scales))
    if written:
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


def write_outputs(comparison, prediction, palette, out: Path, stem: str, title: str = "") -> list[Path]:
    """Write the comparison's PNGs and JSON into ``out``; returns the paths written."""
    from .. import plots

    files: dict[str, bytes] = {}
    for result in comparison.results:
        files[f"{stem}_labels_{result.method}.png"] = _indexed_png(result.labels, palette)
    files[f"{stem}_disagreement.png"] = _mask_png(comparison.disagreement)
    for result in comparison.results:
        if result.errors is not None:
            files[f"{stem}_errors_{result.method}.png"] = _mask_png(result.errors)
    # Max pooling's deciding scale, in the scales' colours: the PNG's values are indices into the scale set.
    deciding = deciding_scale_at(prediction.max_deciding_scale(), prediction.labels.shape)
    files[f"{stem}_max_deciding_scale.png"] = _indexed_png(
        deciding, [scale_colour(k) for k in range(len(prediction.scales))]
    )
    figure = plots.merge_comparison_figure(comparison, prediction.image, palette, title=title)
    files[f"{stem}_comparison.png"] = plots.figure_png(figure)
    files[f"{stem}_comparison.json"] = (json.dumps(comparison.to_dict(), indent=2) + "\n").encode()
    return [write_bytes(out / name, data) for name, data in files.items()]


def read_labels(path: Path, predictor, source) -> np.ndarray:
    """The label image for ``source``, at the size it is predicted (nearest-neighbour when --max-side scaled it)."""
    from PIL import Image

    from ..images import load_label_image

    labels = load_label_image(
        path.read_bytes(), str(path), predictor.classes, predictor.palette, size=source.original_size
    )
    height, width = source.rgb.shape[:2]
    if labels.shape != (height, width):  # the image was scaled down; class indices must not be blended
        labels = np.asarray(
            Image.fromarray(labels.astype(np.uint8), mode="L").resize((width, height), Image.Resampling.NEAREST)
        )
    return labels.astype(np.int64)


def _indexed_png(labels: np.ndarray, palette) -> bytes:
    from PIL import Image

    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = [v for rgb in palette for v in rgb]
    image.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _mask_png(mask: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
