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

from ..training.config import TrainConfig

HELP = {
    "config": "a .toml or .json file of settings; flags override it",
    "width": "channel multiplier of the trunk (1 = the paper's VGG-16; 0.125 trains on a CPU)",
    "norm": "normalisation after each convolution: none (the paper), batch, group",
    "head": "attention head: paper (tied to --scales) or shared (any scale set)",
    "merge": "how score maps are merged over scales: attention, average, max",
    "scales": "the scale set to train with (and the checkpoint's default), e.g. 1 0.75 0.5",
    "scale_sampling": "fixed: always --scales; random: a new set per step from --random-scale-range",
    "extra_supervision": "E-Supv: also a loss on every scale's own output",
    "foreground_weight": "loss weight of object classes relative to background (1 = plain cross-entropy)",
    "hard_pixel_fraction": "online hard example mining: only this fraction of the hardest pixels counts (1 = off)",
    "freeze_norm_statistics": "batch norm keeps its running statistics while training (for fine-tuning a trained trunk)",
    "imagenet_init": "start the trunk from torchvision's ImageNet VGG-16 (needs the weights cached or internet)",
    "init_from": "a segscale checkpoint whose matching weights start this run",
    "train_head_only": "keep the --init-from checkpoint's network (trunk and score head) fixed, under no_grad; train only the attention head",
    "dataset": "scaleshapes (generated), voc, voc_aug (with SBD train_aug), person_part",
    "data_root": "folder holding the dataset (VOC: the folder with VOCdevkit/)",
    "iterations": "training steps",
    "amp": "bf16 autocast where it pays (CUDA, CPUs with AMX); --no-amp trains in float32",
    "out_dir": "run folder: state.pt (to continue), model.pt, best.pt, history.jsonl",
}


def _flag_type(hint):
    """(element type for argparse, nargs) of a resolved field type such as ``tuple[float, ...] | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], "+"
    return hint, None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=HELP["config"])
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if --out-dir holds a run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(TrainConfig)
    for field in fields(TrainConfig):
        kind, nargs = _flag_type(hints[field.name])
        default = field.default if field.default is not MISSING else None
        text = HELP.get(field.name, field.name.replace("_", " ")) + f" (default: {default})"
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(flag, type=kind, nargs=nargs, default=None, help=text, metavar=field.name.upper())


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
