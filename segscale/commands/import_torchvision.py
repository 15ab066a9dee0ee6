"""``python -m segscale import-torchvision KIND --out FILE.pt``:
a torchvision segmentation model as a segscale checkpoint.

    python -m segscale import-torchvision deeplabv3_mobilenet_v3_large --out checkpoints/deeplabv3_mobilenet_v3_large.pt
    python -m segscale import-torchvision fcn_resnet50 --weights my_fcn.pth --out checkpoints/my_fcn.pt

Without ``--weights`` the kind's published ``COCO_WITH_VOC_LABELS_V1`` weights are read from the
torch hub cache (downloaded there first when online; ``--offline`` never tries). ``--weights``
reads a local state dict instead (``weights_only=True``). The checkpoint holds the backbone as
the trunk and the classifier as the score head, no attention head yet: it merges by average
until one is trained (``python -m segscale train-head CHECKPOINT --data-root DIR --download``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import PAPER_SCALES, TORCHVISION_TRUNKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind", choices=TORCHVISION_TRUNKS, metavar="KIND", help=f"one of: {', '.join(TORCHVISION_TRUNKS)}"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="a local state dict of that torchvision model (default: the published weights from the torch hub cache)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.pt", help="the segscale checkpoint to write")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(PAPER_SCALES),
        help="the checkpoint's default scale set (default: 1 0.75 0.5)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="never download; fail clearly when the weights are not cached"
    )
    parser.add_argument("--quiet", action="store_true", help="no download progress bar")


def run(args: argparse.Namespace) -> int:
    from ..checkpoint_cards import read_checkpoint_card
    from ..torchvision_import import import_to_checkpoint, train_head_command

    if args.out.suffix != ".pt":
        raise ValueError(
            f"--out {args.out}: name the checkpoint with a .pt suffix (the app and `segscale checkpoints` list *.pt)"
        )
    path = import_to_checkpoint(
        args.kind, args.out, args.weights, scales=tuple(args.scales), download=not args.offline, progress=not args.quiet
    )
    card = read_checkpoint_card(path)
    print(f"wrote {path} ({card.size_bytes / 1e6:.1f} MB)")
    for name, value in card.summary:
        print(f"  {name}: {value}")
    print(
        f"next: `python -m segscale predict --checkpoint {path} IMAGE`, or train an attention head: "
        f"`{train_head_command(str(path))}` (docs/TORCHVISION.md)"
    )
    return 0
