"""``python -m segscale checkpoints``: what each checkpoint file is (the "Checkpoints" view).

    python -m segscale checkpoints                 # every .pt in checkpoints/
    python -m segscale checkpoints my_run.pt other_folder/

For each file: its name and short card (the fields of
:data:`segscale.checkpoint_cards.CARD_SHORT_FIELDS` and its metrics, as the app's Checkpoints page
shows them), or why it cannot be used. Files are read with ``weights_only=True``: a file whose pickle would
run code is refused, never executed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_FOLDER = Path("checkpoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"checkpoint files, or folders whose .pt files to list (default: {DEFAULT_FOLDER}/)",
    )


def run(args: argparse.Namespace) -> int:
    from ..checkpoint_cards import read_checkpoint_card, read_checkpoint_cards

    cards = []
    for path in args.paths or [DEFAULT_FOLDER]:
        if path.is_dir():
            cards += read_checkpoint_cards(path)
        elif path.exists():
            cards.append(read_checkpoint_card(path))
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not cards:
        print(f"no .pt files in {', '.join(str(p) for p in args.paths or [DEFAULT_FOLDER])}")
        return 0
    for card in cards:
        print(f"{card.path} ({card.size_bytes / 1e6:.1f} MB)")
        if not card.ok:
            print(f"  cannot be used: {card.error}")
        else:
            width = max(len(name) for name, _ in card.summary)
            for name, value in card.summary:
                print(f"  {name:<{width}}  {value}")
        print()
    return 0 if all(card.ok for card in cards) else 1
