"""Resident memory of `streamlit run app.py` after many uploads in one session, then in many sessions.

    python scripts/measure_app_memory.py                       # 50 uploads, then 8 sessions of 3
    python scripts/measure_app_memory.py --json docs/bench/app-memory.json

What is measured: the RSS of the server process (VmRSS in /proc/PID/status; Streamlit runs every
session's script in threads of that one process), read once the run an upload caused has finished
and every image of the page has loaded. Phase 1: one browser session uploads N different images
in turn (each a ScaleShapes test image drawn at SIDE x SIDE, so no cache ever answers), RSS after
each. Phase 2: M more sessions (one browser context each, all left open) each upload K further new
images; RSS after each session. The caches are bounded (ui/limits.py: PREDICTION_CACHE_ENTRIES,
VIEW_CACHE_ENTRIES, DECODED_UPLOAD_CACHE_ENTRIES, CACHE_TTL_S), so past the first
PREDICTION_CACHE_ENTRIES uploads the curve must be flat: each new entry pushes an old one out.
The script fits a line to the RSS after the caches are full (the "plateau", from upload
PREDICTION_CACHE_ENTRIES + 5) and exits 1 if that trend grows more than --tolerance-mb over it. The server is the one a
person would get: real `checkpoints/` (or SEGSCALE_CHECKPOINT_DIR), the demo checkpoint, its trained scale set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure_app_latency import machine  # noqa: E402  (scripts/ is this script's own folder)

from tests import browser_support as browser  # noqa: E402
from ui.limits import PREDICTION_CACHE_ENTRIES  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


def summarise(single: list[dict], sessions: list[dict]) -> dict:
    """The plateau: RSS from PREDICTION_CACHE_ENTRIES + 5 uploads on (a few past the prediction cache's fill,
    for the other caches and the allocator to settle). RSS jumps by 100-300 MiB from one upload to the
    next (the model's activations are freed, and the allocator keeps or returns them), so the trend
    is a least-squares line through every point, not last minus first."""
    full = PREDICTION_CACHE_ENTRIES + 5
    points = [point for point in single if point["uploads"] >= full]
    plateau = [point["rss_mib"] for point in points]
    slope = fitted_slope([point["uploads"] for point in points], plateau)
    after = plateau + [point["rss_mib"] for point in sessions]
    return {
        "plateau_from_upload": full,
        "plateau_slope_mib_per_upload": round(slope, 2),
        "plateau_growth_mib": round(slope * (points[-1]["uploads"] - points[0]["uploads"]), 1),
        "plateau_mean_mib": round(statistics.mean(plateau), 1),
        "plateau_stdev_mib": round(statistics.stdev(plateau), 1),
        "plateau_range_mib": [min(plateau), max(plateau)],
        "after_sessions_range_mib": [min(after), max(after)],
    }


def fitted_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mean_x, mean_y = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def draw_images(count: int, side: int, folder: Path, first_index: int) -> list[Path]:
    """``count`` different ScaleShapes test images of side x side px, saved as PNG."""
    from PIL import Image

    from segscale.data.scaleshapes import ScaleShapesConfig, generate_sample

    config = ScaleShapesConfig(min_side=side, max_side=side)
    paths = []
    for index in range(first_index, first_index + count):
        path = folder / f"memory_{index:03d}.png"
        Image.fromarray(generate_sample("test", 5000 + index, config).image).save(path)
        paths.append(path)
    return paths


def upload_and_wait(page, image: Path, side: int) -> None:
    browser.after_rerun(page, lambda: browser.upload(page, image), expect_text=f"{image.name}: {side}x{side} px")
    if browser.exceptions_on_page(page):
        raise SystemExit(f"an exception shows on the page after {image.name}: {browser.exceptions_on_page(page)}")


def open_upload_session(context, url: str):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    try:
        browser.open_app(page, url)
        try:
            browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), timeout_s=60, images=False)
        except PlaywrightTimeout:  # seen once on a loaded machine: a click that started no run; a second click does
            print("no run after choosing Upload within 60 s; clicking again")
            browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), images=False)
    except Exception:
        shot = Path(tempfile.gettempdir()) / "measure_app_memory_failure.png"
        browser.full_page_screenshot(page, shot)
        print(f"screenshot of the page: {shot}")
        raise
    return page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=50, help="different uploads in the first session (default: 50)")
    parser.add_argument(
        "--sessions", type=int, default=8, help="further sessions, each in its own browser context (default: 8)"
    )
    parser.add_argument(
        "--per-session", type=int, default=3, help="different uploads in each further session (default: 3)"
    )
    parser.add_argument("--side", type=int, default=1024, help="image width and height in px (default: 1024)")
    parser.add_argument(
        "--tolerance-mb",
        type=float,
        default=100.0,
        help="largest growth of the fitted RSS trend once the caches are full, MiB (default: 100)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server, e.g. MALLOC_MMAP_THRESHOLD_=1048576 (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the series here")
    args = parser.parse_args()
    if args.uploads <= PREDICTION_CACHE_ENTRIES + 5:
        parser.error(
            "--uploads must exceed the prediction cache's "
            f"{PREDICTION_CACHE_ENTRIES} entries by more than 5 to show the plateau"
        )

    from playwright.sync_api import sync_playwright

    single, sessions = [], []
    with tempfile.TemporaryDirectory() as folder:
        images = draw_images(args.uploads + args.sessions * args.per_session, args.side, Path(folder), 0)
        first, rest = images[: args.uploads], images[args.uploads :]
        server_env = dict(item.split("=", 1) for item in args.server_env)
        with browser.streamlit_process(env=server_env) as (url, server), sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS)
            try:
                started = time.perf_counter()
                page = open_upload_session(chromium.new_context(viewport={"width": 1500, "height": 1000}), url)
                single.append({"uploads": 0, "rss_mib": round(rss_mb(server.pid), 1), "s": 0.0})
                print(f"after the first page run (model loaded): {single[0]['rss_mib']:.0f} MiB")
                for count, image in enumerate(first, start=1):
                    upload_and_wait(page, image, args.side)
                    single.append(
                        {
                            "uploads": count,
                            "rss_mib": round(rss_mb(server.pid), 1),
                            "s": round(time.perf_counter() - started, 1),
                        }
                    )
                    if count % 5 == 0:
                        print(
                            f"one session, {count:2d} uploads: "
                            f"{single[-1]['rss_mib']:.0f} MiB ({single[-1]['s']:.0f} s)"
                        )
                for number in range(1, args.sessions + 1):
                    session_page = open_upload_session(
                        chromium.new_context(viewport={"width": 1500, "height": 1000}), url
                    )
                    for image in rest[(number - 1) * args.per_session : number * args.per_session]:
                        upload_and_wait(session_page, image, args.side)
                    sessions.append(
                        {
                            "sessions": number,
                            "uploads_in_all": args.uploads + number * args.per_session,
                            "rss_mib": round(rss_mb(server.pid), 1),
                            "s": round(time.perf_counter() - started, 1),
                        }
                    )
                    print(
                        f"{number} more session{'s' if number > 1 else ''} open, {args.per_session} uploads each: "
                        f"{sessions[-1]['rss_mib']:.0f} MiB"
                    )
            finally:
                chromium.close()

    result = {
        "single_session": single,
        "more_sessions": sessions,
        **summarise(single, sessions),
        "image": (
            f"{args.side}x{args.side} PNG (ScaleShapes test samples), "
            "the demo checkpoint's trained scale set, attention"
        ),
        "prediction_cache_entries": PREDICTION_CACHE_ENTRIES,
        "server_env": args.server_env,
        "machine": machine(),
        "command": "python scripts/measure_app_memory.py " + " ".join(sys.argv[1:]),
    }
    print(
        f"from upload {result['plateau_from_upload']} to {args.uploads}: mean {result['plateau_mean_mib']:.0f} MiB, "
        f"sd {result['plateau_stdev_mib']:.0f}, range "
        f"{result['plateau_range_mib'][0]:.0f}-{result['plateau_range_mib'][1]:.0f}, trend "
        f"{result['plateau_slope_mib_per_upload']:+.2f} MiB per upload ({result['plateau_growth_mib']:+.0f} MiB over "
        f"the plateau); with {args.sessions} more sessions: "
        f"{result['after_sessions_range_mib'][0]:.0f}-{result['after_sessions_range_mib'][1]:.0f} MiB"
    )
    print(json.dumps(result["machine"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if result["plateau_growth_mib"] > args.tolerance_mb:
        print(
            f"NOT FLAT: the fitted trend grew {result['plateau_growth_mib']:.0f} MiB after the caches were full "
            f"(tolerance {args.tolerance_mb:g})"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
