r"""Peak memory of one 2048x1024 prediction at 5 scales on the CPU: whole image against sliding-window tiles.

    python scripts/measure_tiled_memory.py --json docs/bench/tiled-memory-cpu.json
    python scripts/measure_tiled_memory.py --checkpoint paper-width --tiles 1024 \
        --json docs/bench/tiled-memory-cpu-paper.json

Each mode runs in a fresh Python process (peak resident set size is a per-process high-water
mark): it loads the demo checkpoint, makes the image (ScaleShapes samples tiled to 2048x1024),
reads ``ru_maxrss``, predicts once, and reads it again. Reported: the peak RSS of the process
and the increase over what was resident before the prediction (weights, image, libraries),
plus the wall time and the share of labels equal to the whole-image labels.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = (1.0, 0.875, 0.75, 0.625, 0.5)


def one_mode(mode: str, tile: int, overlap: int, checkpoint: str, labels_out: str | None) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from segscale.data.scaleshapes import generate_sample
    from segscale.inference import FastPathOptions
    from segscale.predictor import Predictor
    from segscale.sliding_window import predict_tiled

    torch.set_num_threads(1)
    if checkpoint == "paper-width":  # the paper's full-width net, random weights (memory does not depend on them)
        from segscale.checkpoint import CheckpointMetadata
        from segscale.config import HeadConfig, ModelConfig, TrunkConfig
        from segscale.modeling import build_model

        config = ModelConfig(num_classes=21, trunk=TrunkConfig(width=1.0), head=HeadConfig(kind="shared"))
        metadata = CheckpointMetadata(
            model=config,
            classes=tuple(f"class{i}" for i in range(21)),
            palette=tuple((i, i, i) for i in range(21)),
            name="vgg16_largefov, full width, random weights",
            scale_range=(0.25, 2.0),
        )
        predictor = Predictor(build_model(config), metadata, device="cpu", options=FastPathOptions(autocast="off"))
    else:
        predictor = Predictor.from_checkpoint(checkpoint, device="cpu", options=FastPathOptions(autocast="off"))
    sample = generate_sample("val", 0).image
    image = np.ascontiguousarray(np.tile(sample, (3, 5, 1))[:1024, :2048])
    scales, merge = predictor.check_request(SCALES, "attention", image_size=image.shape[:2])
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "whole":
        _, labels = predictor.run_pixels(torch.from_numpy(image)[None], scales, merge)
    else:
        _, labels = predict_tiled(predictor, image, scales, merge, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if labels_out:
        np.save(labels_out, labels[0].numpy().astype(np.uint8))
    return {
        "mode": mode if mode == "whole" else f"tiles {tile} overlap {overlap}",
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "increase_mib": round((peak_kib - before_kib) / 1024, 1),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        default=str(ROOT / "checkpoints" / "scaleshapes_demo.pt"),
        help="a .pt checkpoint, or paper-width for the full-width vgg16_largefov with random weights",
    )
    parser.add_argument("--tiles", type=int, nargs="+", default=[512, 1024], help="tile sizes to measure")
    parser.add_argument("--overlap", type=int, default=256)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "TILE", "LABELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, tile, labels_out = args.child
        print(json.dumps(one_mode(mode, int(tile), args.overlap, args.checkpoint, labels_out)))
        return

    import numpy as np

    runs = [("whole", 0)] + [("tiled", tile) for tile in args.tiles]
    rows, labels = [], {}
    for mode, tile in runs:
        labels_path = f"/tmp/segscale-labels-{mode}-{tile}.npy"
        command = [
            sys.executable,
            __file__,
            "--checkpoint",
            args.checkpoint,
            "--overlap",
            str(args.overlap),
            "--child",
            mode,
            str(tile),
            labels_path,
        ]
        row = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        labels[row["mode"]] = np.load(labels_path)
        row["labels_equal_whole"] = round(float((labels[row["mode"]] == labels["whole"]).mean()), 5)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        report = {
            "checkpoint": Path(args.checkpoint).name,
            "image": "2048x1024",
            "scales": list(SCALES),
            "merge": "attention",
            "precision": "float32",
            "torch_threads": 1,
            "runs": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
