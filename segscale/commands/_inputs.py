"""What the commands share: the checkpoint flags, an image from a file or a ScaleShapes sample, request checks.

``inspect`` and ``compare`` take either an image file (read by :func:`segscale.images.load_image`,
the app's reader, with its notices and refusals) or ``--sample SPLIT:INDEX``, a generated
ScaleShapes image that comes with its ground truth.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint import DEFAULT_CHECKPOINT_PATH
from ..config import MERGE_MODES
from ..formatting import format_scale_set
from ..images import DEFAULT_MAX_SIDE, ImageError, load_image


def add_model_arguments(parser: argparse.ArgumentParser, merge: bool = True) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT_PATH,
        metavar="FILE",
        help=f"the segscale .pt checkpoint to predict with (default: {DEFAULT_CHECKPOINT_PATH})",
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        metavar="S",
        help=(
            "the scale set to resize the image to, e.g. 1 0.75 0.5; "
            "within the checkpoint's range (default: its trained set)"
        ),
    )
    if merge:
        parser.add_argument(
            "--merge",
            choices=MERGE_MODES,
            help="the merge the prediction itself uses (default: attention when the model has a head, else its own)",
        )
    parser.add_argument("--device", help="where to run: cpu, cuda, cuda:1, mps (default: the best available)")


def add_max_side_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        metavar="PX",
        help=f"images with a longer side are scaled down to this many pixels first (default: {DEFAULT_MAX_SIDE})",
    )


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "image", nargs="?", type=Path, metavar="IMAGE", help="an image file (PNG, JPEG, WebP, BMP, TIFF, GIF)"
    )
    parser.add_argument(
        "--sample",
        metavar="SPLIT:INDEX",
        help=(
            "a generated ScaleShapes sample instead of IMAGE, with its "
            "ground truth, e.g. val:3 (default: none; give IMAGE or --sample)"
        ),
    )
    add_max_side_argument(parser)


def parse_sample(text: str) -> tuple[str, int]:
    """ "val:3" -> ("val", 3); ValueError saying the expected form otherwise."""
    from ..data.scaleshapes import SPLITS

    split, sep, index = text.partition(":")
    if not sep or split not in SPLITS or not index.isdigit():
        raise ValueError(
            f"--sample must be SPLIT:INDEX with SPLIT one of {', '.join(SPLITS)} and INDEX 0, 1, 2, ...; got {text!r}"
        )
    return split, int(index)


@dataclass(frozen=True, eq=False)
class InputImage:
    """An image to predict: rgb (H, W, 3) uint8, a name for files and titles, the ground truth if known."""

    rgb: np.ndarray
    name: str
    stem: str
    ground_truth: np.ndarray | None
    notices: tuple[str, ...]
    original_size: tuple[int, int] = (0, 0)  # (H, W) as decoded, before any --max-side scaling


def read_input(args: argparse.Namespace) -> InputImage:
    """The image named by ``args.image`` or ``args.sample`` (exactly one of them)."""
    if (args.image is None) == (args.sample is None):
        raise ValueError("give an IMAGE file or --sample SPLIT:INDEX (one of the two)")
    if args.max_side < 16:
        raise ValueError(f"--max-side must be at least 16, got {args.max_side}")
    if args.sample is not None:
        from ..data.scaleshapes import generate_sample

        split, index = parse_sample(args.sample)
        sample = generate_sample(split, index)
        label = sample.label.astype(np.int64)
        notices: tuple[str, ...] = ()
        if max(label.shape) > args.max_side:
            raise ValueError(
                f"ScaleShapes sample {split}:{index} is larger than --max-side {args.max_side}; raise --max-side"
            )
        return InputImage(sample.image, f"ScaleShapes {split}:{index}", sample.image_id, label, notices, label.shape)
    path: Path = args.image
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        loaded = load_image(path.read_bytes(), path.name, max_side=args.max_side)
    except ImageError as error:
        raise ImageError(f"{path}: {error}") from None
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.stem) or "image"
    return InputImage(loaded.rgb, path.name, stem, None, loaded.notices, loaded.original_size)


# --precision -> FastPathOptions.autocast (predict's folder jobs, evaluate, diagnose)
PRECISIONS = {"auto": "auto", "float32": "off", "bf16": "bf16"}


def add_precision_argument(parser, default: str, why_default: str) -> None:
    parser.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default=default,
        help=(
            "auto: bf16 where a timing probe finds it faster and its labels "
            f"agree with float32; float32; bf16 (default: {default}, {why_default})"
        ),
    )


def load_predictor(args: argparse.Namespace, max_side: int | None = DEFAULT_MAX_SIDE, float32: bool = False):
    """The checkpoint's Predictor; ``float32`` turns bf16 autocast off (numbers read digit by digit, as the pixel
    inspector's), as does ``args.precision`` where the command has that flag."""
    from ..inference import FastPathOptions
    from ..predictor import Predictor

    precision = "float32" if float32 else getattr(args, "precision", "auto")
    options = FastPathOptions(autocast=PRECISIONS[precision])
    return Predictor.from_checkpoint(args.checkpoint, device=args.device, max_side=max_side, options=options)


def write_bytes(path: Path, data: bytes) -> Path:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def prepare_out(out: Path | None) -> None:
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)


def check_scaleshapes_request(predictor, scales, merge: str) -> None:
    """Refuse a scale set before the first ScaleShapes image: the checkpoint's range, and the pixel
    budget for the largest image ScaleShapes generates (a square of its ``max_side``)."""
    from ..data.scaleshapes import ScaleShapesConfig

    largest = ScaleShapesConfig().max_side
    try:
        predictor.check_request(scales, merge, image_size=(largest, largest))
    except ValueError as error:
        if "budget" not in str(error):
            raise
        raise ValueError(f"ScaleShapes images reach {largest}x{largest} px: {error}") from None


def check_ablation_request(kinds, scales) -> None:
    """ValueError when ``--outputs ablation`` is asked of a single scale: there is nothing to leave out."""
    if kinds is not None and "ablation" in kinds and len(scales) < 2:
        from ..diagnostics.ablation import SINGLE_SCALE_ABLATION

        raise ValueError(
            f"--outputs ablation with scales {format_scale_set(scales)}: {SINGLE_SCALE_ABLATION} "
            "Give two or more with --scales."
        )
