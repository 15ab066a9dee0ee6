"""``python -m segscale import-smp ...``: a segmentation_models_pytorch model as a segscale checkpoint.

    python -m segscale import-smp ./my_unet --out checkpoints/my_unet.pt
    python -m segscale import-smp --arch Unet --encoder resnet34 --num-classes 4 --weights unet.pth --out u.pt

From the folder ``model.save_pretrained`` wrote, or from a state dict (``model.state_dict()``,
read with ``weights_only=True``) plus the architecture, encoder and class count that built it.
Class names from ``--classes FILE`` (one a line; default "class 0", "class 1", ...);
normalisation from the encoder's ImageNet preprocessing unless --mean and --std are given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._network_import import add_common_arguments, check_out, save_and_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="FOLDER",
        help="a folder written by an smp model's save_pretrained (default: none; then the four flags below)",
    )
    parser.add_argument(
        "--arch", help="without FOLDER: the smp architecture, e.g. Unet, FPN, DeepLabV3Plus (default: none)"
    )
    parser.add_argument("--encoder", help="without FOLDER: the encoder name, e.g. resnet34 (default: none)")
    parser.add_argument("--num-classes", type=int, help="without FOLDER: the model's class count (default: none)")
    parser.add_argument(
        "--weights", type=Path, metavar="FILE", help="without FOLDER: the model's state dict (default: none)"
    )
    parser.add_argument(
        "--classes",
        type=Path,
        metavar="FILE",
        help="class names, one a line, in label order (default: class 0, class 1, ...)",
    )
    add_common_arguments(parser, normalisation_default="default: ImageNet's, as smp's pretrained encoders expect")


def run(args: argparse.Namespace) -> int:
    from ..network_import import import_smp, read_classes_file

    check_out(args.out)
    if args.source is not None and (args.arch or args.encoder or args.weights or args.num_classes):
        raise ValueError("import-smp: give either FOLDER or --arch/--encoder/--num-classes/--weights, not both")
    if args.num_classes is not None and args.num_classes < 1:
        raise ValueError(f"--num-classes must be at least 1, got {args.num_classes}")
    classes = read_classes_file(args.classes) if args.classes else None
    model, metadata = import_smp(
        args.source,
        arch=args.arch,
        encoder=args.encoder,
        num_classes=args.num_classes,
        weights=args.weights,
        classes=classes,
        scales=tuple(args.scales),
        mean=args.mean,
        std=args.std,
    )
    return save_and_report(model, metadata, args.out)
