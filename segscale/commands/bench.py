"""``python -m segscale bench``: the fast path against the naive baseline, on whatever device is here.

    python -m segscale bench                              # defaults for this device, a few minutes on a 2-core CPU
    python -m segscale bench --threads 1 --json docs/bench/cpu.json
    python -m segscale bench --quick --models vgg16_largefov --width 0.0625   # a smoke run

For every model, input size and scale set: median latency at batch 1 of the naive baseline
(:class:`segscale.benchmark.NaiveMultiScale`) and of :class:`segscale.Predictor` (the app's
path), timed interleaved; their paired ratio; the counted FLOPs and achieved TFLOP/s; peak
memory; throughput of the fast path at a large batch; whether their labels agree. Also, in
the same run: reference workloads (resnet18 at 512x512; a large matrix product), the fast
path built up one optimisation at a time, a linear fit of latency against pixels x sum(s^2),
and the peak memory at the app's largest input. It prints tables and writes JSON.

This module only reads the arguments; the suite, the sweep and the report are in :mod:`segscale.benchmark`.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from ..benchmark import (
    MODEL_NAMES,
    format_markdown,
    format_report,
    read_report,
    run_suite,
    settings_from_args,
    write_text,
)
from ..checkpoint import DEFAULT_CHECKPOINT_PATH
from ..images import DEFAULT_MAX_SIDE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the best available)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODEL_NAMES),
        metavar="NAME",
        help="vgg16_largefov (random weights, --width), demo (--checkpoint), deeplabv3_mobilenet_v3_large "
        "(torchvision's, random weights, at {1,0.75,0.5} unless --scale-sets); default: all three",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT_PATH,
        help=f"the demo model (default: {DEFAULT_CHECKPOINT_PATH})",
    )
    parser.add_argument(
        "--width", type=float, default=1.0, help="channel width of the random vgg16_largefov (default: 1, the paper's)"
    )
    parser.add_argument(
        "--classes", type=int, default=21, help="classes of the random vgg16_largefov (default: 21, PASCAL VOC)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="square input sizes for every model (default: per device and model)"
    )
    parser.add_argument(
        "--scale-sets",
        nargs="+",
        metavar="S1,S2,...",
        help="scale sets for every model, e.g. 1 1,0.5 1,0.75,0.5 (default: those three and 1,0.875,0.75,0.625,0.5; "
        "the torchvision model: 1,0.75,0.5 only)",
    )
    parser.add_argument(
        "--batch", type=int, help="throughput batch at 512x512, scaled by pixels (default: 32 on GPU, 8 on CPU)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds; medians over these (default: 7)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help=(
            "seconds of timed rounds per interleaved group; fewer repeats "
            "(at least 3) when a round is long (default: 90; 0: no limit)"
        ),
    )
    parser.add_argument(
        "--largest",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"side of the memory check at the app's largest input (default: {DEFAULT_MAX_SIDE}; 0 skips it)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "float32"),
        default="auto",
        help="fast path precision: auto = the Predictor's rule for checkpoints, bf16 where it pays "
        "for random weights (whose near-ties make a label check meaningless) (default: auto)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path (and add it to the ladder)")
    parser.add_argument("--cuda-graphs", action="store_true", help="CUDA graphs in the fast path (CUDA only)")
    parser.add_argument(
        "--cudnn-benchmark", action="store_true", help="cuDNN algorithm search in the fast path (CUDA only)"
    )
    parser.add_argument(
        "--ablation",
        choices=("headline", "all", "none"),
        default="headline",
        help="the one-optimisation-at-a-time ladder for: the device's headline model (default), all, none",
    )
    parser.add_argument("--full", action="store_true", help="on a CPU, sweep every size for every model (slow)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, two scale sets, one round")
    parser.add_argument("--json", type=Path, help="write the report here (default: runs/bench/<time>-<device>.json)")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here (default: none)")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="run nothing: print (and --markdown) the tables of an earlier report (default: none, run the bench)",
    )


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        report = read_report(args.from_json)
        print(format_report(report))
    else:
        settings = settings_from_args(args)
        report = run_suite(settings)
        print(format_report(report))
        path = args.json or Path("runs/bench") / f"{datetime.now():%Y%m%d-%H%M%S}-{settings.device.type}.json"
        write_text(path, json.dumps(report, indent=1) + "\n")
        print(f"wrote {path}")
    if args.markdown:
        write_text(args.markdown, format_markdown(report))
        print(f"wrote {args.markdown}")
    return 0
