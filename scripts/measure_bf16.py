"""bf16 autocast against float32 on this machine's CPU: median latency of the fast path, and label agreement.

    python scripts/measure_bf16.py --threads 1 --rounds 15 --json docs/bench/bf16-cpu.json

Two Predictors on the demo checkpoint, one with ``FastPathOptions(autocast="off")`` (float32) and
one with ``autocast="bf16"`` (bf16 autocast, convolution weights stored in bf16), predict the same
ScaleShapes image at each size; after ``--warmup`` calls each, the two run interleaved for
``--rounds`` rounds (the order alternating), and the median of each is reported with the
per-round ratio. Prints one line per size and writes the JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segscale.data.scaleshapes import generate_sample  # noqa: E402
from segscale.inference import FastPathOptions  # noqa: E402
from segscale.predictor import Predictor  # noqa: E402


def cpu_description() -> dict:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "model": model,
        "amx_bf16": " amx_bf16" in flags,
        "avx512_bf16": " avx512_bf16" in flags,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/scaleshapes_demo.pt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.75, 0.5])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: no OpenMP barriers on a shared machine)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    predictors = {
        "float32": Predictor.from_checkpoint(args.checkpoint, device="cpu", options=FastPathOptions(autocast="off")),
        "bf16": Predictor.from_checkpoint(args.checkpoint, device="cpu", options=FastPathOptions(autocast="bf16")),
    }
    sample = generate_sample("val", 0).image
    report = {"cpu": cpu_description(), "torch": torch.__version__, "scales": args.scales, "results": []}
    for size in args.sizes:
        image = np.asarray(Image.fromarray(sample).resize((size, size), Image.Resampling.BILINEAR))
        times: dict[str, list[float]] = {name: [] for name in predictors}
        labels = {name: p.predict(image, scales=args.scales).labels for name, p in predictors.items()}
        for _ in range(args.warmup):
            for predictor in predictors.values():
                predictor.predict(image, scales=args.scales)
        for round_index in range(args.rounds):
            order = list(predictors) if round_index % 2 == 0 else list(reversed(predictors))
            for name in order:
                started = time.perf_counter()
                predictors[name].predict(image, scales=args.scales)
                times[name].append(time.perf_counter() - started)
        ratios = [f / b for f, b in zip(times["float32"], times["bf16"])]
        row = {
            "size": size,
            "float32_ms": round(1000 * statistics.median(times["float32"]), 1),
            "bf16_ms": round(1000 * statistics.median(times["bf16"]), 1),
            "speedup_bf16": round(statistics.median(ratios), 3),
            "label_agreement": round(float((labels["float32"] == labels["bf16"]).mean()), 5),
            "rounds": args.rounds,
        }
        report["results"].append(row)
        print(json.dumps(row), flush=True)
    report["cpu"]["load_average_end"] = os.getloadavg()
    print(json.dumps(report["cpu"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
