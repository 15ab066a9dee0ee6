"""Time one training step in float32 and under bf16 autocast, interleaved, per trunk width.

    python scripts/measure_training_step.py                  # widths 1/8, 1/4, 1/2; batch 16 x 160 px
    python scripts/measure_training_step.py --widths 0.25 --repeats 7

The figures behind `amp = true` being the training default on CPUs with AMX
(docs/RESULTS.md, "Recipe"). Each round runs both precisions back to back, so a busy machine
slows both alike; the speed-up printed is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from segscale.config import ModelConfig, TrunkConfig
from segscale.losses import extra_supervision_loss
from segscale.modeling import build_model


def step_seconds(model, optimizer, images, labels, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        output = model(images, scales=(1.0,))
    loss = extra_supervision_loss(output, labels, extra_supervision=False).total
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25, 0.5])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch} x {args.crop} px, "
        f"median of {args.repeats} rounds after {args.warmup} warm-up"
    )
    print(f"{'width':>6} {'fp32 s':>8} {'bf16 s':>8} {'speed-up':>9}")
    for width in args.widths:
        torch.manual_seed(0)
        config = ModelConfig(
            num_classes=7, trunk=TrunkConfig(width=width, norm="batch"), merge="average", scales=(1.0,)
        )
        model = build_model(config).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.AdamW(model.parameters())
        images = torch.randn(args.batch, 3, args.crop, args.crop).contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 7, (args.batch, args.crop, args.crop))
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_index in range(args.warmup + args.repeats):
            for bf16 in (False, True) if round_index % 2 == 0 else (True, False):
                seconds = step_seconds(model, optimizer, images, labels, bf16)
                if round_index >= args.warmup:
                    times[bf16].append(seconds)
        ratio = statistics.median(f / b for f, b in zip(times[False], times[True]))
        print(f"{width:>6g} {statistics.median(times[False]):8.3f} {statistics.median(times[True]):8.3f} {ratio:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
