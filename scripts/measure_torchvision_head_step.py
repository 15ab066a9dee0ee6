"""Cost of training an attention head on a frozen torchvision network: one step against inference alone.

    python scripts/measure_torchvision_head_step.py                                   # both kinds, batch 2 x 321 px
    python scripts/measure_torchvision_head_step.py --kinds deeplabv3_resnet50 --batch 10 --crop 513 --device cuda

The network has random weights (torchvision builds it; the cost does not depend on the
values), so this runs with no download. Each round times, back to back on the same batch,

* a training step of ``segscale train --train-head-only``: the frozen share-net (eval mode,
  no_grad) at every scale, the attention head forward and backward, an SGD step;
* inference alone: the same multi-scale forward under no_grad, merging by average;

and prints the medians after the warm-up rounds, the head's share of the step, and peak
memory (CUDA: ``max_memory_allocated``; CPU: the process's peak resident set).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from segscale.config import PAPER_SCALES, HeadConfig, ModelConfig, TrunkConfig
from segscale.losses import extra_supervision_loss
from segscale.modeling import build_model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def measure(kind: str, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    config = ModelConfig(
        num_classes=21,
        trunk=TrunkConfig(name=kind, norm="batch", dropout=0.0),
        head=HeadConfig(kind=args.head, hidden_channels=args.hidden),
        scales=PAPER_SCALES,
        merge="attention",
    )
    model = build_model(config).freeze_share_net().to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # as segscale train does on the CPU
    model.train()  # the share-net stays in eval mode: freeze_share_net
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    images = torch.randn(args.batch, 3, args.crop, args.crop, device=device)
    if device.type == "cpu":
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 21, (args.batch, args.crop, args.crop), device=device)

    def train_step():
        output = model(images, scales=PAPER_SCALES)
        loss = extra_supervision_loss(output, labels, extra_supervision=False).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def inference():
        with torch.no_grad():
            model(images, scales=PAPER_SCALES, merge="average")

    steps, forwards = [], []
    for round_index in range(args.warmup + args.repeats):
        step_s, forward_s = timed(train_step, device), timed(inference, device)
        if round_index >= args.warmup:
            steps.append(step_s)
            forwards.append(forward_s)
    head = sum(p.numel() for p in model.attention_head.parameters())
    frozen = sum(p.numel() for p in model.parameters()) - head
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS (process, cumulative)"
    return {
        "kind": kind,
        "step": statistics.median(steps),
        "inference": statistics.median(forwards),
        "head_params": head,
        "frozen_params": frozen,
        "peak": peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50"])
    parser.add_argument("--head", choices=("shared", "paper"), default="shared")
    parser.add_argument(
        "--hidden", type=int, default=256, help="the head's hidden channels (configs/torchvision_head.toml: 256)"
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: torch's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__} on {where}; {args.head} head ({args.hidden} hidden), scales {{1, 0.75, 0.5}}, "
        f"batch {args.batch} x {args.crop} px, float32, median of {args.repeats} rounds after {args.warmup} warm-up"
    )
    print(
        f"{'kind':<30} {'step s':>8} {'inference s':>12} {'step/inf':>9} "
        f"{'head params':>12} {'frozen params':>14}  peak memory"
    )
    for kind in args.kinds:
        r = measure(kind, args, device)
        print(
            f"{r['kind']:<30} {r['step']:8.3f} {r['inference']:12.3f} {r['step'] / r['inference']:8.2f}x "
            f"{r['head_params']:>12,} {r['frozen_params']:>14,}  {r['peak']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
