"""``python -m segscale train-head CHECKPOINT``: an attention head on a frozen network, in one command.

    python -m segscale train-head checkpoints/lraspp_mobilenet_v3_large.pt --dataset voc --data-root data/VOC --download
    torchrun --nproc_per_node 4 -m segscale train-head checkpoints/deeplabv3_mobilenet_v3_large.pt --data-root data/VOC

With ``--download`` it first fetches PASCAL VOC 2012 (``--sbd``: SBD too, converted into the
10,582-image train_aug set by :mod:`segscale.data.voc_aug`) into ``--data-root`` through
torchvision's dataset downloaders, with their progress bars (only rank 0 under torchrun; the
others wait). Then it trains as ``segscale train`` with the settings of
configs/torchvision_head.toml: the checkpoint's network frozen, only a shared attention head
learning. Running the same command again continues the run from its ``state.pt``; every
``train`` flag is accepted and overrides those settings.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from ..merges import ATTENTION
from .train import add_arguments as add_train_arguments

# configs/torchvision_head.toml, less what depends on the checkpoint and the data (filled in by run).
HEAD_SETTINGS = {
    "train_head_only": True,
    "head": "shared",
    "head_hidden_channels": 256,
    "merge": ATTENTION,
    "scales": (1.0, 0.75, 0.5),
    "extra_supervision": False,
    "dropout": 0.5,
    "crop_size": 513,
    "augment_scale_range": (0.5, 1.5),
    "optimizer": "sgd",
    "lr": 0.01,
    "head_lr_multiplier": 1.0,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "schedule": "poly",
    "batch_size": 10,
    "iterations": 6000,
    "val_every": 1000,
    "val_images": 1449,
    "checkpoint_every": 200,
    "workers": 4,
}
# How long the other ranks wait for rank 0's downloads (about 3.4 GB with SBD) and the train_aug conversion.
DOWNLOAD_WAIT = timedelta(hours=6)
VOC_LAYOUT = "DIR/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation/train.txt, val.txt}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint_file", type=Path, metavar="CHECKPOINT", help="the network to put a head on (.pt)")
    parser.add_argument(
        "--download", action="store_true", help="fetch PASCAL VOC 2012 into --data-root first (skipped if there)"
    )
    parser.add_argument(
        "--sbd",
        action="store_true",
        help="with --download: SBD too, made into VOC2012's train_aug (SegmentationClassAug/, "
        "ImageSets/Segmentation/train_aug.txt), and train on it",
    )
    add_train_arguments(parser)


def download_voc(root: Path, sbd: bool = False, *, progress: bool = True) -> None:
    """PASCAL VOC 2012 (and SBD, made into train_aug) into ``root`` with torchvision's downloaders, unless there.

    With ``sbd``, SBD lands in ``root/SBD`` in its own layout (img/, cls/*.mat, train.txt, val.txt)
    and :func:`segscale.data.voc_aug.build_train_aug` then writes the train_aug set into VOC2012/
    (SegmentationClassAug/, ImageSets/Segmentation/train_aug.txt), which ``--dataset voc_aug`` reads.
    """
    from torchvision.datasets import SBDataset, VOCSegmentation

    from ..data.pascal import find_voc2012_dir
    from ..data.voc_aug import build_train_aug

    root.mkdir(parents=True, exist_ok=True)
    try:
        find_voc2012_dir(root)
    except (FileNotFoundError, ValueError):
        VOCSegmentation(str(root), year="2012", image_set="train", download=True)
    if not sbd:
        return
    sbd_dir = root / "SBD"
    # torchvision moves SBD's val.txt out of the unpacked archive last: without it, the folder is a broken-off try.
    if not (sbd_dir / "val.txt").is_file():
        # Its folders are moved again from the archive (kept, and checked) on this try; into a folder left
        # from the last one they would nest.
        for folder in ("cls", "img", "inst"):
            shutil.rmtree(sbd_dir / folder, ignore_errors=True)
        (sbd_dir / "train.txt").unlink(missing_ok=True)
        # image_set "train": train_aug drops VOC's val images itself, so "train_noval" would only add one more
        # download, from a personal page whose address has already broken once.
        SBDataset(str(sbd_dir), image_set="train", mode="segmentation", download=True)
    build_train_aug(find_voc2012_dir(root), sbd_dir, progress=progress)


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..checkpoint import model_from_checkpoint
    from ..training.config import TrainConfig
    from .train import run as run_train

    if not args.checkpoint_file.is_file():
        raise ValueError(f"{args.checkpoint_file}: no such checkpoint file")
    _, metadata = model_from_checkpoint(args.checkpoint_file)
    root = Path(args.data_root or "data/VOC")
    if args.download:
        # The process group starts here rather than in training, so that the other ranks can wait for rank 0.
        if distributed.distributed_context().is_main:
            try:
                download_voc(root, args.sbd, progress=not args.quiet)
            except RuntimeError as error:  # torchvision's words for a failed checksum
                raise ValueError(f"PASCAL VOC download into {root}: {error}; delete the partial files, retry") from None
        distributed.barrier(timeout=DOWNLOAD_WAIT)
    from ..data.pascal import find_voc2012_dir

    try:
        find_voc2012_dir(root)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"--data-root {root}: {error}; expected the layout {VOC_LAYOUT} (or add --download)") from None
    settings = dict(HEAD_SETTINGS)
    settings.update(
        trunk=metadata.model.trunk.name,
        init_from=str(args.checkpoint_file),
        dataset="voc_aug" if args.sbd else "voc",
        data_root=str(root),
        out_dir=f"runs/head_{args.checkpoint_file.stem}",
    )
    # Every TrainConfig field as `segscale train` reads it: a flag given here wins over these settings.
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    values.update({key: value for key, value in settings.items() if values.get(key) is None})
    return run_train(argparse.Namespace(**{**vars(args), **values}))
