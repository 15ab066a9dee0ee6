"""What a bench run measures: the models, sizes, scale sets and rounds, with the defaults per device."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import PAPER_SCALES, normalize_scales
from ..devices import select_device
from ..inference import FastPathOptions

FIVE_SCALES = (1.0, 0.875, 0.75, 0.625, 0.5)
DEFAULT_SCALE_SETS = ((1.0,), (1.0, 0.5), PAPER_SCALES, FIVE_SCALES)
# A torchvision kind is benched with random weights: its published ones cannot be downloaded
# on the machines where the bench runs, and the speed of a network does not depend on them.
TORCHVISION_BENCH_KIND = "deeplabv3_mobilenet_v3_large"
MODEL_NAMES = ("vgg16_largefov", "demo", TORCHVISION_BENCH_KIND)
# The paper evaluates the full-width net on 513x513 PASCAL crops; the demo was trained on ScaleShapes;
# torchvision's reference recipe evaluates its networks at about 520 px.
NOMINAL_SIZE = {"vgg16_largefov": 513, "demo": 512, TORCHVISION_BENCH_KIND: 512}
# Scale sets of a model when --scale-sets is not given; other models take DEFAULT_SCALE_SETS.
MODEL_SCALE_SETS = {TORCHVISION_BENCH_KIND: (PAPER_SCALES,)}
# Input sizes of the sweep when --sizes is not given. On a CPU the full-width net runs only at
# its nominal size (a 1024-pixel 5-scale pass takes half a minute there); --full sweeps it too.
SWEEP = {
    "cpu": {"vgg16_largefov": (513,), "demo": (256, 512, 768, 1024), TORCHVISION_BENCH_KIND: (512,)},
    "cuda": {
        "vgg16_largefov": (256, 513, 1024, 2048),
        "demo": (256, 512, 1024, 2048),
        TORCHVISION_BENCH_KIND: (256, 512, 1024),
    },
}
FULL_CPU_SWEEP = (256, 513, 768, 1024)
# Throughput batch: about this many 512x512 images' worth of pixels per batch.
LARGE_BATCH = {"cpu": 8, "cuda": 32}


@dataclass
class Settings:
    device: torch.device
    models: tuple[str, ...]
    checkpoint: Path
    width: float
    classes: int
    sizes: tuple[int, ...] | None
    scale_sets: tuple[tuple[float, ...], ...]
    scale_sets_given: bool
    batch: int
    warmup: int
    repeats: int
    largest: int
    budget_s: float | None
    precision: str
    options: FastPathOptions
    ablation: str
    full: bool
    quick: bool
    notes: list[str] = field(default_factory=list)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings ``python -m segscale bench``'s arguments ask for; ValueError (one line) for a bad one."""
    device = select_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid: {', '.join(MODEL_NAMES)}")
    scale_sets = DEFAULT_SCALE_SETS
    if args.scale_sets:
        scale_sets = tuple(normalize_scales(text.split(",")) for text in args.scale_sets)
    if args.warmup < 0 or args.repeats < 1:
        raise ValueError("--warmup must be >= 0 and --repeats >= 1")
    kind = "cuda" if device.type == "cuda" else "cpu"
    settings = Settings(
        device=device,
        models=tuple(dict.fromkeys(args.models)),
        checkpoint=args.checkpoint,
        width=args.width,
        classes=args.classes,
        sizes=tuple(args.sizes) if args.sizes else None,
        scale_sets=scale_sets,
        scale_sets_given=bool(args.scale_sets),
        batch=args.batch or LARGE_BATCH[kind],
        warmup=args.warmup,
        repeats=args.repeats,
        largest=args.largest,
        budget_s=args.budget or None,
        precision=args.precision,
        options=FastPathOptions(
            compile=args.compile, cuda_graphs=args.cuda_graphs, cudnn_benchmark=args.cudnn_benchmark
        ),
        ablation=args.ablation,
        full=args.full,
        quick=args.quick,
    )
    if args.quick:
        settings.sizes = settings.sizes or (64,)
        settings.scale_sets = scale_sets if args.scale_sets else ((1.0,), (1.0, 0.5))
        settings.batch = args.batch or 2
        settings.warmup = min(args.warmup, 1)
        settings.repeats = 1
        settings.largest = min(args.largest, 96)
        settings.budget_s = None
    if any(size < 16 for size in settings.sizes or ()):
        raise ValueError("input sizes must be at least 16 pixels")
    return settings
