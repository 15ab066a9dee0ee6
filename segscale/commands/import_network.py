"""``python -m segscale import-network --factory package.module:function --classes FILE --out FILE.pt``: any module.

    python -m segscale import-network --factory mypackage.models:build --classes classes.txt --out mine.pt

The function, called with no arguments, returns an ``nn.Module`` that maps a normalised batch
(B, 3, H, W) to logits: a tensor, a dict with "out" or "logits", or an object with ``.logits``.
Its weights are saved in the checkpoint (``--weights FILE`` loads a state dict into it first).

The checkpoint records the factory, and loading it imports that module again: that runs the
module's code. Load such checkpoints only from sources you trust; the app refuses them as uploads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import IMAGENET_MEAN, IMAGENET_STD
from ._network_import import add_common_arguments, check_out, save_and_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"{parser.description}. The checkpoint records the factory; loading it imports that module, "
        "which runs its code: load such files only from sources you trust (the app refuses them as uploads)."
    )
    parser.add_argument(
        "--factory", required=True, metavar="MODULE:FUNCTION", help="package.module:function returning an nn.Module"
    )
    parser.add_argument(
        "--classes", type=Path, required=True, metavar="FILE", help="class names, one a line, in logit order"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="a state dict to load into the module (default: none, the weights the factory gives)",
    )
    parser.add_argument(
        "--size-multiple",
        type=int,
        default=1,
        metavar="N",
        help="pad inputs to a multiple of N pixels (a ViT's patch size; default 1: none)",
    )
    add_common_arguments(parser, normalisation_default="default: ImageNet's")


def run(args: argparse.Namespace) -> int:
    from ..network_import import import_factory, read_classes_file

    check_out(args.out)
    model, metadata = import_factory(
        args.factory,
        read_classes_file(args.classes),
        weights=args.weights,
        mean=args.mean or IMAGENET_MEAN,
        std=args.std or IMAGENET_STD,
        size_multiple=args.size_multiple,
        scales=tuple(args.scales),
    )
    return save_and_report(model, metadata, args.out)
