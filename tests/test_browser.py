"""The whole flow in a real browser: `streamlit run app.py`, Chromium, an upload, a new scale set.

It checks what AppTest cannot: that the page's images really load in a browser
(``naturalWidth > 0``), that the upload widget takes a file, and that no exception element
shows. The model is a tiny checkpoint built here, in a folder the server finds through
SEGSCALE_CHECKPOINT_DIR: the test is about the page, not the shipped model's quality, and
``checkpoints/`` is not in git. The browser is Debian's ``chromium``; without it this test
fails (it does not skip), so CI cannot pass while silently not running it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests import browser_support as browser

pytestmark = pytest.mark.browser


def test_upload_and_change_the_scale_set_in_chromium(make_checkpoint, tmp_path):
    make_checkpoint("tiny.pt")
    photo = tmp_path / "upload me.png"
    rgb = np.random.default_rng(0).integers(0, 256, size=(160, 200, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photo)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is text, not a picture")

    with browser.chromium_page() as page, browser.streamlit_server(env={"SEGSCALE_CHECKPOINT_DIR": str(tmp_path)}) as url:
        try:
            browser.open_app(page, url)
            browser.after_rerun(page, lambda: browser.choose_radio(page, "Upload"), images=False)

            browser.after_rerun(page, lambda: browser.upload(page, photo), expect_text="upload me.png: 200x160 px")
            assert page.get_by_text("Scale 0.75 · input resized to 150x120").count() == 1
            check_page(page)

            summary = "upload me.png: 200x160 px · {1, 0.5} · attention"
            browser.after_rerun(page, lambda: browser.choose_radio(page, "{1, 0.5}"), expect_text=summary)
            assert page.get_by_text("Scale 0.75 · input resized to 150x120").count() == 0
            assert page.get_by_text("Scale 0.5 · input resized to 100x80").count() == 1
            check_page(page)
            check_downloads(page, tmp_path / "downloads", scales=(1.0, 0.5))

            browser.after_rerun(page, lambda: browser.upload(page, broken), images=False, expect_text="not an image")
            error = page.locator('[data-testid="stAlertContentError"]')
            error.first.wait_for()
            assert "holds text, not an image" in error.first.inner_text()
            assert not browser.exceptions_on_page(page)
        except Exception:
            browser.full_page_screenshot(page, tmp_path / "failure.png")
            print(f"screenshot of the page: {tmp_path / 'failure.png'}")
            raise


def check_downloads(page, folder, scales) -> None:
    """The .npz and figure buttons give files (made only on the click) that hold this prediction."""
    folder.mkdir()
    for label, name in (("Every map (.npz)", "upload_me_maps.npz"), ("Side-by-side figure (PNG)", "upload_me_figure.png")):
        with page.expect_download(timeout=60_000) as download_info:
            page.get_by_role("button", name=label).click()
        download = download_info.value
        assert download.suggested_filename == name
        download.save_as(folder / name)
    maps = np.load(folder / "upload_me_maps.npz", allow_pickle=False)
    assert tuple(maps["scales"]) == scales and maps["labels"].shape == (160, 200)
    assert Image.open(folder / "upload_me_figure.png").format == "PNG"
    assert not browser.exceptions_on_page(page)


def check_page(page) -> None:
    """Every image loaded, at least the 12 per-scale maps and the fused ones, and no exception element."""
    images = browser.image_status(page)
    broken = [image for image in images if not (image["complete"] and image["naturalWidth"] > 0)]
    assert not broken, broken
    assert len(images) >= 12, images
    assert not browser.exceptions_on_page(page)
