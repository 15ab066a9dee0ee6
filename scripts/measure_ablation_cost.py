"""What the views of what each scale decides add to a prediction's time, measured in the same run.

    python scripts/measure_ablation_cost.py --threads 1 --rounds 15 --json docs/bench/ablation-cost-cpu.json

The demo checkpoint predicts a 512x512 ScaleShapes image (validation sample 0, its top-left corner)
with attention at each scale set; after ``--warmup`` calls, each round times one prediction
(``Predictor.predict``), then, on that prediction, the three views computed from its score maps alone:
leave one scale out (``Prediction.scale_ablation``, image resolution, with the shares the pages show,
which read its decision map), max pooling's deciding scale and the per-scale confidence; then the main
view's pictures of them at display size
(``segscale.ablation_view.build_ablation_view``, which computes the three views again, then every picture
drawn from it: the page draws them at each run, the view it caches keeps index maps).
Medians over the rounds, and the ratio of the medians, are printed and written to the JSON report.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segscale.ablation_view import build_ablation_view  # noqa: E402
from segscale.data.scaleshapes import generate_sample  # noqa: E402
from segscale.predictor import Predictor  # noqa: E402

SCALE_SETS = ((1.0, 0.75, 0.5), (1.0, 0.875, 0.75, 0.625, 0.5))


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())


def views(prediction) -> None:
    """The three views and every number the pages show of them (the shares read the decision map)."""
    ablation = prediction.scale_ablation()
    shown = (ablation.shares, ablation.sole_shares, ablation.several_share, ablation.any_share)
    shown += (prediction.max_deciding_scale(), prediction.scale_confidence().most_confident_shares)


def pictures(prediction, palette) -> None:
    """The main view's pictures of them: the view (index maps at display size) and every picture drawn from it."""
    view = build_ablation_view(prediction, palette)
    drawn = (view.without, view.decision, view.confidence, view.most_confident)
    drawn += (view.max_deciding, view.max_deciding_map)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/scaleshapes_demo.pt")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: torch's); 1 on a loaded machine, see docs/PERFORMANCE.md"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    image = generate_sample("val", 0).image[: args.size, : args.size]
    report = {
        "checkpoint": args.checkpoint,
        "image": f"ScaleShapes val 0, top-left {image.shape[1]}x{image.shape[0]}",
        "merge": "attention",
        "machine": {
            "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "rounds": args.rounds,
        "results": [],
    }
    for scales in SCALE_SETS:
        for _ in range(args.warmup):
            prediction = predictor.predict(image, scales=scales, merge="attention")
            views(prediction)
            pictures(prediction, predictor.palette)
        predict_s, views_s, pictures_s = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            prediction = predictor.predict(image, scales=scales, merge="attention")
            predicted = time.perf_counter()
            views(prediction)
            viewed = time.perf_counter()
            pictures(prediction, predictor.palette)
            drawn = time.perf_counter()
            predict_s.append(predicted - started)
            views_s.append(viewed - predicted)
            pictures_s.append(drawn - viewed)
        row = {
            "scales": list(scales),
            "precision": predictor.precision,
            "predict_median_s": statistics.median(predict_s),
            "views_median_s": statistics.median(views_s),
            "pictures_median_s": statistics.median(pictures_s),
        }
        row["views_over_predict"] = row["views_median_s"] / row["predict_median_s"]
        row["pictures_over_predict"] = row["pictures_median_s"] / row["predict_median_s"]
        report["results"].append(row)
        print(
            f"{len(scales)} scales {scales}: predict {row['predict_median_s'] * 1e3:.0f} ms, "
            f"views {row['views_median_s'] * 1e3:.1f} ms ({row['views_over_predict']:.1%}), "
            f"page pictures {row['pictures_median_s'] * 1e3:.1f} ms ({row['pictures_over_predict']:.1%})"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
