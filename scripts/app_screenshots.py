"""Screenshots of every page for the README, docs/APP.md and docs/PAGES.md.

    python scripts/app_screenshots.py            # writes docs/screenshots/*.png
    python scripts/app_screenshots.py --only pixel_inspector merge_comparison

Starts `streamlit run app.py` (the checkpoints/ folder, or SEGSCALE_CHECKPOINT_DIR), drives
Debian's Chromium at 1500 px width through the sidebar navigation, in one session (so the
gallery sample chosen on the main view is the one the other pages show), and saves:

* main_view.png: a ScaleShapes gallery sample at {1, 0.75, 0.5} with attention, whole page;
* main_view_top.png: the first screenful of the same page (controls and the first rows);
* pixel_inspector.png: the same sample, its most telling pixel picked by a click on the grid;
* merge_comparison.png: the same sample, attention / average / max with ground truth;
* scale_diagnostics.png: after running the checkpoint over --count ScaleShapes images;
* how_it_works.png: the explanation, architecture and training card of the checkpoint;
* checkpoints.png: the shipped checkpoints' cards and, uploaded as "your own", the first of them;
* upload_error.png: the first screenful of the main view after uploading a text file named .png.

Each is a full page unless said otherwise. Re-run it when the shipped checkpoint changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import browser_support as browser  # noqa: E402

SHOTS = (
    "main_view",
    "pixel_inspector",
    "merge_comparison",
    "scale_diagnostics",
    "how_it_works",
    "checkpoints",
    "upload_error",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "screenshots", help="folder (default: docs/screenshots)"
    )
    parser.add_argument("--width", type=int, default=1500, help="window width in px (default: 1500)")
    parser.add_argument("--sample", type=int, default=2, help="gallery sample to show (default: 2)")
    parser.add_argument(
        "--count", type=int, default=20, help="ScaleShapes images for the diagnostics page (default: 20)"
    )
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=SHOTS, help="take only these screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with (
        tempfile.TemporaryDirectory() as folder,
        browser.chromium_page(args.width, 950) as page,
        browser.streamlit_server() as url,
    ):
        browser.open_app(page, url)
        if args.sample:
            select = page.locator('[data-testid="stSelectbox"]').filter(has_text="ScaleShapes sample")
            select.click()
            browser.after_rerun(
                page, lambda: page.get_by_role("option").filter(has_text=f"val #{args.sample}:").click()
            )

        def shot(name: str, top_only: bool = False) -> None:
            page.mouse.move(args.width // 2, 5)  # no hover effects in the pictures
            problems = browser.exceptions_on_page(page) + [str(i) for i in browser.all_images_loaded(page)]
            if problems:
                raise SystemExit(f"{name}: the page shows an exception or a broken image: {problems}")
            path = args.out / f"{name}.png"
            if top_only:
                page.screenshot(path=str(path))
            else:
                browser.full_page_screenshot(page, path)
            print(f"wrote {path}")

        if "main_view" in args.only:
            shot("main_view")
            shot("main_view_top", top_only=True)
        if "pixel_inspector" in args.only:
            browser.go_to_page(page, "Pixel inspector")
            pick_salient_cell(page)
            shot("pixel_inspector")
        if "merge_comparison" in args.only:
            browser.go_to_page(page, "Merge comparison")
            shot("merge_comparison")
        if "scale_diagnostics" in args.only:
            browser.go_to_page(page, "Scale diagnostics", images=False)
            field = page.get_by_label("Images (N)")
            if field.input_value() != str(args.count):  # an unchanged value runs nothing
                field.fill(str(args.count))
                browser.after_rerun(page, lambda: field.press("Enter"), images=False)
            run = page.get_by_role("button", name="Run diagnostics")
            browser.after_rerun(
                page, run.click, timeout_s=60 + 10 * args.count, expect_text=f"images 0 to {args.count - 1}"
            )
            shot("scale_diagnostics")
        if "how_it_works" in args.only:
            browser.go_to_page(page, "How it works")
            shot("how_it_works")
        if "checkpoints" in args.only:
            browser.go_to_page(page, "Checkpoints", images=False)
            shipped = sorted((REPO / "checkpoints").glob("*.pt"))
            if shipped:
                browser.after_rerun(
                    page, lambda: browser.upload(page, shipped[0]), images=False, expect_text="Use it in the app"
                )
            shot("checkpoints")
        if "upload_error" in args.only:
            browser.go_to_page(page, "Main view")
            text_file = Path(folder) / "holiday photo.png"
            text_file.write_text("Dear diary, today I uploaded the wrong file.\n")
            browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), images=False)
            browser.after_rerun(page, lambda: browser.upload(page, text_file), images=False, expect_text="not an image")
            shot("upload_error", top_only=True)
    return 0


def pick_salient_cell(page) -> None:
    """Click the grid cell the page opened on (its most telling pixel),
    as a person would, so the picture shows a click's result."""
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.locator("canvas, svg").first.wait_for()
    page.locator('[data-testid="stNumberInput"] input').nth(1).wait_for()  # widgets' code loads on first use
    row, col = (int(field.input_value()) for field in page.locator('[data-testid="stNumberInput"] input').all()[:2])
    height, width = (
        int(v)
        for v in page.evaluate(
            """() => [...document.querySelectorAll('[data-testid="stNumberInput"] label')]
                .map(l => l.innerText.match(/to (\\d+)/)[1])"""
        )
    )
    box = chart.locator("canvas, svg").first.bounding_box()
    x = box["x"] + (col + 0.5) / (width + 1) * box["width"]
    y = box["y"] + (row + 0.5) / (height + 1) * box["height"]
    browser.after_rerun(page, lambda: page.mouse.click(x, y))


if __name__ == "__main__":
    raise SystemExit(main())
