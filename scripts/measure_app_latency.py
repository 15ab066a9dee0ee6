"""Latency of the main view in a real browser: from an upload to every map rendered.

    python scripts/measure_app_latency.py                 # 5 timed runs after 1 warm-up
    python scripts/measure_app_latency.py --runs 9 --json latency.json

What is timed: Playwright puts a 512x512 PNG into the page's file uploader; the clock stops
when the script run that the upload causes has finished, no element is stale, and every
<img> on the page has loaded (complete, naturalWidth > 0). That spans the upload request,
decoding, the model at three scales {1, 0.75, 0.5} with attention, building the maps, sending
them, and the browser decoding them. Each run uploads a different image (ScaleShapes test
samples drawn at 512x512), so the prediction cache never answers; the first upload is a
warm-up (the model is loaded by the page's first run before it). The server is
`streamlit run app.py` with the checkpoint folder it would use for a person (checkpoints/,
or SEGSCALE_CHECKPOINT_DIR), and the demo checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import browser_support as browser  # noqa: E402


def machine() -> dict:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average_1_5_15": os.getloadavg(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python": platform.python_version(),
    }


def sample_images(count: int, folder: Path) -> list[Path]:
    from PIL import Image

    from segscale.data.scaleshapes import ScaleShapesConfig, generate_sample

    config = ScaleShapesConfig(min_side=512, max_side=512)
    paths = []
    for index in range(count):
        path = folder / f"latency_{index}.png"
        Image.fromarray(generate_sample("test", 1000 + index, config).image).save(path)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the warm-up (default: 5)")
    parser.add_argument("--width", type=int, default=1500, help="browser window width in px (default: 1500)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        images = sample_images(args.runs + 1, Path(folder))
        with browser.chromium_page(args.width, 1000) as page, browser.streamlit_server() as url:
            browser.open_app(page, url)
            if page.get_by_text("{1, 0.75, 0.5} (trained)").count() == 0:
                raise SystemExit(
                    "the default checkpoint's trained set is not {1, 0.75, 0.5}; this harness measures that set"
                )
            browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), images=False)
            seconds, server = [], []
            for k, image in enumerate(images):
                summary = f"{image.name}: 512x512 px · {{1, 0.75, 0.5}} · attention"
                started = time.perf_counter()
                browser.after_rerun(page, lambda image=image: browser.upload(page, image), expect_text=summary)
                elapsed = time.perf_counter() - started
                if browser.exceptions_on_page(page):
                    raise SystemExit(f"an exception shows on the page: {browser.exceptions_on_page(page)}")
                images_shown = len(browser.image_status(page))
                line = (
                    page.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]')
                    .last.inner_text()
                    .replace("\n", " · ")
                )
                if "Model: " not in line:
                    raise SystemExit(f"no timings in the sidebar after {image.name}: {line!r}")
                label = "warm-up" if k == 0 else f"run {k}"
                print(f"{label}: {elapsed:.2f} s, {images_shown} images; server: {line}")
                if k:
                    seconds.append(elapsed)
                    server.append(line)

    result = {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "runs_s": [round(s, 3) for s in seconds],
        "server_timings": server,
        "image": "512x512 PNG (ScaleShapes test samples), scales {1, 0.75, 0.5}, attention",
        "machine": machine(),
        "command": "python scripts/measure_app_latency.py " + " ".join(sys.argv[1:]),
    }
    print(
        f"upload -> every map rendered: median {result['median_s']:.2f} s over {len(seconds)} runs "
        f"(min {result['min_s']:.2f}, max {result['max_s']:.2f})"
    )
    print(json.dumps(result["machine"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
