"""Driving the app's pages through Streamlit's AppTest: open a page, read what it shows, upload an image.

Shared by tests/test_app.py (the main view) and tests/test_pages.py (the other pages); the
fixtures that build a checkpoint folder for them (``checkpoint_dir``, ``shapes_dir``) are in
tests/conftest.py. Image URLs in AppTest are content hashes, which is how "the picture
changed" is checked. Streamlit is a test requirement (requirements.txt), so it is imported
plainly: a missing one fails the tests instead of skipping them.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from segscale.predictor import Prediction
from ui.common import LAST_PREDICTION_KEY

TIMEOUT = 120  # seconds per run; the tiny model answers in well under one on two cores
REPO = Path(__file__).resolve().parents[1]
APP = "app.py"
INSPECTOR, COMPARISON, DIAGNOSTICS, HOW, CHECKPOINTS = (
    "pages/1_Pixel_inspector.py",
    "pages/2_Merge_comparison.py",
    "pages/3_Scale_diagnostics.py",
    "pages/4_How_it_works.py",
    "pages/5_Checkpoints.py",
)


def open_page(page: str = APP) -> AppTest:
    """Run a page (a path relative to the repository) once, and check that it raised nothing."""
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def image_url(at: AppTest, caption_start: str) -> str:
    """The URL (a content hash) of the first image whose caption starts with ``caption_start``."""
    for image in at.get("image"):
        for caption, url in zip(image.captions, image.value):
            if caption.startswith(caption_start):
                return url
    raise AssertionError(f"no image captioned {caption_start!r}; captions: {captions(at)}")


def unescaped(text: object) -> str:
    """Text as a person reads it: the Markdown escapes of :func:`ui.common.plain` removed."""
    return re.sub(r"\\(.)", r"\1", str(text))


def errors(at: AppTest) -> list[str]:
    return [unescaped(error.value) for error in at.error]


def texts(elements) -> str:
    return "\n".join(unescaped(e.value) for e in elements)


def last_prediction(at: AppTest) -> Prediction:
    return at.session_state[LAST_PREDICTION_KEY]


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def upload_image(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    """Choose "Upload" as the image source and upload one file."""
    at.radio(key="image_source").set_value("Upload").run()
    at.file_uploader(key="upload").upload(name, data, mime)
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, errors(at)


def assert_every_map(at: AppTest, scales=(1.0, 0.75, 0.5), merge: str = "attention") -> None:
    """The main view shows every map of every scale, the fused result, the downloads and the timings."""
    assert_clean(at)
    shown = captions(at)
    for scale in scales:
        label = f"Scale {scale:g} · "
        for quantity in ("input resized to", "labels of fˢ", "probability"):
            assert any(c.startswith(label) and quantity in c for c in shown), (scale, quantity, shown)
        if merge != "max":
            assert any(c.startswith(label) and f"weight wˢ ({merge})" in c for c in shown), (scale, shown)
    assert any(c.startswith("Fused labels (") for c in shown)
    assert any(c.startswith("Fused labels on the input") for c in shown)
    if merge == "attention":
        assert any(c.startswith("Dominant scale") for c in shown) and any(c.startswith("Attention entropy") for c in shown)
    assert len(at.get("download_button")) == (3 if merge == "max" else 4)
    prediction = last_prediction(at)
    assert prediction.scales == tuple(scales) and prediction.merge == merge
    timings = " ".join(c.value for c in at.sidebar.caption)
    assert "CPU" in timings and "Model: " in timings
