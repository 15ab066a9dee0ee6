"""Screenshots of the main view for the README and docs/APP.md.

    python scripts/app_screenshots.py            # writes docs/screenshots/*.png

Starts `streamlit run app.py` (the checkpoints/ folder, or SEGSCALE_CHECKPOINT_DIR), drives
Debian's Chromium at 1500 px width and saves:

* main_view.png: a ScaleShapes gallery sample at {1, 0.75, 0.5} with attention, whole page;
* main_view_top.png: the first screenful of the same page (controls and the first rows);
* upload_error.png: the first screenful after uploading a text file named .png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import browser_support as browser  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder (default: docs/screenshots)")
    parser.add_argument("--width", type=int, default=1500, help="window width in px (default: 1500)")
    parser.add_argument("--sample", type=int, default=2, help="gallery sample to show (default: 2)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as folder, browser.chromium_page(args.width, 950) as page, browser.streamlit_server() as url:
        browser.open_app(page, url)
        if args.sample:
            select = page.locator('[data-testid="stSelectbox"]').filter(has_text="ScaleShapes sample")
            select.click()
            browser.after_rerun(page, lambda: page.get_by_role("option").filter(has_text=f"val #{args.sample}:").click())
        page.mouse.move(args.width // 2, 5)  # no hover effects in the pictures
        browser.full_page_screenshot(page, args.out / "main_view.png")
        page.screenshot(path=str(args.out / "main_view_top.png"))
        print(f"wrote {args.out / 'main_view.png'} and main_view_top.png")

        text_file = Path(folder) / "holiday photo.png"
        text_file.write_text("Dear diary, today I uploaded the wrong file.\n")
        browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), images=False)
        browser.after_rerun(page, lambda: browser.upload(page, text_file), images=False, expect_text="not an image")
        page.mouse.move(args.width // 2, 5)
        page.screenshot(path=str(args.out / "upload_error.png"))
        print(f"wrote {args.out / 'upload_error.png'}")
        if browser.exceptions_on_page(page):
            raise SystemExit(f"an exception shows on the page: {browser.exceptions_on_page(page)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
