"""What the three network importers share: the output, scale and normalisation flags, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import PAPER_SCALES


def add_common_arguments(parser: argparse.ArgumentParser, *, normalisation_default: str) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.pt", help="the segscale checkpoint to write")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(PAPER_SCALES),
        help="the checkpoint's default scale set (default: 1 0.75 0.5)",
    )
    parser.add_argument(
        "--mean", type=float, nargs=3, metavar=("R", "G", "B"), help=f"input mean, RGB in 0-1 ({normalisation_default})"
    )
    parser.add_argument(
        "--std", type=float, nargs=3, metavar=("R", "G", "B"), help=f"input std, RGB in 0-1 ({normalisation_default})"
    )


def check_out(out: Path) -> None:
    if out.suffix != ".pt":
        raise ValueError(
            f"--out {out}: name the checkpoint with a .pt suffix (the app and `segscale checkpoints` list *.pt)"
        )
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give a file name ending in .pt")


def save_and_report(model, metadata, out: Path) -> int:
    """Write the checkpoint atomically (a temporary file, then a rename) and print its card."""
    from ..checkpoint import save_checkpoint
    from ..checkpoint_cards import read_checkpoint_card

    path = save_checkpoint(out, model, metadata)
    card = read_checkpoint_card(path)
    print(f"wrote {path} ({card.size_bytes / 1e6:.1f} MB)")
    for name, value in card.summary:
        print(f"  {name}: {value}")
    print(
        f"next: `python -m segscale predict --checkpoint {path} IMAGE`, or train an attention head (docs/NETWORKS.md)"
    )
    return 0
