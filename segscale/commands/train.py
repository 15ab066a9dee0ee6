"""``python -m segscale train``: train a model from a config file and/or flags.

    python -m segscale train --config configs/demo.toml
    python -m segscale train --width 0.125 --norm batch --head shared --scale-sampling random --iterations 20000
    torchrun --nproc_per_node 2 -m segscale train --config configs/demo.toml   # DDP

Every setting of :class:`~segscale.training.config.TrainConfig` is a flag (``lr`` is ``--lr``).
Running the same command again continues the run from its ``state.pt``.
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from dataclasses import MISSING, fields

from ..config import MERGE_MODES, NORM_KINDS, TRUNK_NAMES
from ..training.config import DATASETS, OPTIMIZERS, SCHEDULES, TrainConfig

# What each setting does; the default is added from TrainConfig. Every field needs a line here
# (tests/test_bad_invocations.py checks), so a new setting cannot reach --help as its bare name.
HELP = {
    "config": "a .toml or .json file of settings; flags override it (default: none, every setting at its default)",
    # Model
    "trunk": f"the network that computes features at each scale: {', '.join(TRUNK_NAMES)}",
    "width": "channel multiplier of the trunk (1 = the paper's VGG-16; 0.125 trains on a CPU)",
    "norm": f"normalisation after each convolution: {', '.join(NORM_KINDS)} (none is the paper's)",
    "head": "attention head: paper (tied to --scales) or shared (any scale set)",
    "head_hidden_channels": "channels of the attention head's hidden layer (default: none, the head's own choice)",
    "merge": f"how score maps are merged over scales: {', '.join(MERGE_MODES)}",
    "scales": "the scale set to train with (and the checkpoint's default), e.g. 1 0.75 0.5",
    "scale_sampling": "fixed: always --scales; random: a new set per step from --random-scale-range",
    "random_scale_range": "with --scale-sampling random: the smallest and largest scale to draw (log-uniformly)",
    "random_scale_count": "with --scale-sampling random: the fewest and most scales in one drawn set",
    "max_scale_pixels": (
        "in random sets, keep crop area x scale^2 summed over the scales under this many crop areas (0 = no limit)"
    ),
    "inference_scale_range": (
        "the smallest and largest scale the checkpoint accepts at inference (default: "
        "none, the scales trained on); e.g. 0.25 2 for a hierarchical model trained on 1 0.5"
    ),
    "extra_supervision": "E-Supv: also a loss on every scale's own output",
    "foreground_weight": "loss weight of object classes relative to background (1 = plain cross-entropy)",
    "hard_pixel_fraction": "online hard example mining: only this fraction of the hardest pixels counts (1 = off)",
    "dropout": "dropout probability in the trunk's fully convolutional layers and the attention head",
    "freeze_norm_statistics": (
        "batch norm keeps its running statistics while training (for fine-tuning a trained trunk)"
    ),
    "imagenet_init": "start the trunk from torchvision's ImageNet VGG-16 (needs the weights cached or internet)",
    "init_from": "a segscale checkpoint whose matching weights start this run",
    "train_head_only": (
        "keep the --init-from checkpoint's network (trunk and score "
        "head) fixed, under no_grad; train only the attention head"
    ),
    # Data
    "dataset": f"what to train on: {', '.join(DATASETS)} (scaleshapes is generated; voc_aug adds SBD's train_aug)",
    "data_root": "folder holding the dataset (VOC: the folder with VOCdevkit/); not needed for scaleshapes",
    "images": "dataset folder: the images (trained on all; the first val_images validate)",
    "masks": "dataset folder: index PNG masks named as the images (255: ignore)",
    "train_images": "ScaleShapes: how many distinct training images to generate",
    "val_images": "validation images (ScaleShapes: from its val split; others: the first N)",
    "crop_size": "side of the square training crops, in pixels (the paper's 321)",
    "augment_scale_range": "random rescaling of each training image before cropping: smallest and largest factor",
    "cache_dir": "folder where generated ScaleShapes images are kept between runs",
    # Optimisation
    "optimizer": f"the optimiser: {', '.join(OPTIMIZERS)}",
    "lr": "base learning rate",
    "head_lr_multiplier": "learning-rate factor of the new layers (score layer, attention head), as in DeepLab",
    "momentum": "SGD momentum (unused by adamw)",
    "weight_decay": "weight decay of the convolution weights (biases have none)",
    "schedule": f"learning-rate schedule: {', '.join(SCHEDULES)}",
    "poly_power": "with --schedule poly: lr x (1 - step/iterations)^power",
    "step_size": "with --schedule step: steps between learning-rate drops",
    "step_gamma": "with --schedule step: factor of each drop",
    "warmup_iterations": "steps of linear learning-rate warm-up at the start",
    "batch_size": "crops per step in each process (DDP multiplies it by the process count)",
    "iterations": "training steps",
    "seed": "random seed of the initialisation, data order and augmentation",
    # Running
    "out_dir": "run folder: state.pt (to continue), model.pt, best.pt, history.jsonl",
    "val_every": "steps between validations (and best.pt updates)",
    "checkpoint_every": "steps between saves of state.pt, from which a run continues",
    "workers": "data-loading worker processes (0 loads in the training process)",
    "amp": "bf16 autocast where it pays (CUDA, CPUs with AMX); --no-amp trains in float32",
    "threads": "torch threads on the CPU (0 = torch's default)",
}

# Metavars by type, so that --help reads "--lr X" rather than "--lr LR".
_METAVARS = {int: "N", float: "X", str: "TEXT"}


def _flag_type(hint):
    """(element type for argparse, nargs) of a resolved field type such as ``tuple[float, ...] | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], "+"
    return hint, None


def _format_default(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help=HELP["config"])
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if --out-dir holds a run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(TrainConfig)
    for field in fields(TrainConfig):
        kind, nargs = _flag_type(hints[field.name])
        default = field.default if field.default is not MISSING else None
        text = HELP[field.name]
        if "(default:" not in text:
            text += f" (default: {_format_default(default)})"
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(
                flag, type=kind, nargs=nargs, default=None, help=text, metavar=_METAVARS.get(kind, "VALUE")
            )


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_train_config
    from ..training.loop import train

    overrides = {field.name: getattr(args, field.name) for field in fields(TrainConfig)}
    config = load_train_config(args.config, **overrides)
    result = train(config, resume=not args.no_resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 130 if result.interrupted else 0  # rank 0 reports for the whole run
    summary = f"{result.steps} steps in {result.wall_time_s / 60:.1f} min"
    if result.final_miou is not None:
        summary += f"; validation mIoU {result.final_miou:.4f} (best {result.best_miou:.4f})"
    print(f"{'interrupted' if result.interrupted else 'done'}: {summary}; run folder {result.out_dir}")
    return 130 if result.interrupted else 0
