"""``python -m segscale fetch-weights KIND``: download a torchvision kind's weights into the torch hub cache.

    python -m segscale fetch-weights deeplabv3_mobilenet_v3_large

Run it on a machine with the internet; torchvision's loader checks the file's hash and keeps it
in ``$TORCH_HOME/hub/checkpoints``, where ``import-torchvision`` (and torchvision itself) then
read it with no network. Copy that folder to an offline machine to use it there.
"""

from __future__ import annotations

import argparse

from ..config import TORCHVISION_TRUNKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind", nargs="?", choices=TORCHVISION_TRUNKS, metavar="KIND", help=f"one of: {', '.join(TORCHVISION_TRUNKS)}"
    )
    parser.add_argument(
        "--list", action="store_true", help="say which kinds' weights are already in the cache, download nothing"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..torchvision_import import (
        cached_kinds,
        cached_weights_path,
        fetch_weights,
        hub_checkpoint_dir,
        import_command,
    )

    if args.list or args.kind is None:
        print(f"torch hub cache: {hub_checkpoint_dir()}")
        for kind, path in cached_kinds().items():
            print(f"  {kind:<30} {'cached: ' + path.name if path else 'not cached: ' + cached_weights_path(kind).name}")
        return 0
    already = cached_weights_path(args.kind).is_file()
    path = fetch_weights(args.kind, progress=not args.quiet)
    print(f"{args.kind}: {'already in the cache' if already else 'downloaded'}: {path}")
    print(f"next: {import_command(args.kind)}")
    return 0
