"""``python -m segscale import-transformers SOURCE --out FILE.pt``: a Hugging Face segmentation model as a checkpoint.

    python -m segscale import-transformers ./my_segformer --out checkpoints/my_segformer.pt
    python -m segscale import-transformers nvidia/segformer-b0-finetuned-ade-512-512 --out checkpoints/b0.pt

SOURCE is a folder ``save_pretrained`` wrote, or a model id read from the Hugging Face cache
(downloaded there first when online, as ``from_pretrained`` does; ``--offline`` never tries).
Class names come from ``config.id2label``, normalisation from the image processor's settings
(``preprocessor_config.json``). Supported: the kinds AutoModelForSemanticSegmentation builds
for SegFormer, UperNet, DPT, BEiT, Data2Vec-vision and MobileViT(-V2); instance, panoptic and
universal models (Mask2Former, OneFormer) are refused.
"""

from __future__ import annotations

import argparse

from ._network_import import add_common_arguments, check_out, save_and_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a save_pretrained folder, or a model id (org/name)")
    add_common_arguments(parser, normalisation_default="default: the image processor's settings")
    parser.add_argument("--offline", action="store_true", help="never download; fail clearly when not cached")


def run(args: argparse.Namespace) -> int:
    from ..network_import import import_transformers

    check_out(args.out)
    model, metadata = import_transformers(
        args.source, scales=tuple(args.scales), download=not args.offline, mean=args.mean, std=args.std
    )
    return save_and_report(model, metadata, args.out)
