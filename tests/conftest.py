"""Shared fixtures: tiny models and checkpoints built on the spot (nothing is downloaded).

The app's tests (test_app.py, test_pages.py) also get a checkpoint folder the app finds
(``checkpoint_dir``, ``shapes_dir``) and, at the end of this file, the helpers that drive a
page through Streamlit's AppTest: open a page, read what it shows, upload an image. Image URLs
in AppTest are content hashes, which is how "the picture changed" is checked. Streamlit is a
test requirement (requirements.txt), so it is imported plainly: a missing one fails the tests
instead of skipping them.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from segscale.checkpoint import CheckpointMetadata, save_checkpoint
from segscale.config import HeadConfig, ModelConfig, TrunkConfig
from segscale.modeling import build_model
from segscale.outputs import APP_DOWNLOADS, OUTPUT_KINDS
from segscale.predictor import Prediction
from ui.model_loading import CHECKPOINT_DIR_ENV
from ui.session import LAST_PREDICTION_KEY

TINY_CLASSES = ("background", "disc", "bar")
TINY_PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))


def tiny_config(
    head: str = "shared",
    merge: str = "attention",
    scales=(1.0, 0.75, 0.5),
    norm: str = "none",
    num_classes: int = len(TINY_CLASSES),
) -> ModelConfig:
    """A width-1/16 LargeFOV: the real structure, few enough channels for fast tests."""
    return ModelConfig(
        num_classes=num_classes,
        trunk=TrunkConfig(width=1 / 16, norm=norm),
        head=HeadConfig(kind=head),
        scales=scales,
        merge=merge,
    )


def tiny_metadata(config: ModelConfig, classes=TINY_CLASSES, palette=TINY_PALETTE, **extra) -> CheckpointMetadata:
    """Metadata of a tiny model; its scale range is the shipped models' (0.25 to 2) unless given."""
    extra.setdefault("scale_range", (0.25, 2.0))
    return CheckpointMetadata(model=config, classes=classes, palette=palette, name="tiny test model", **extra)


@pytest.fixture(autouse=True)
def keep_main_module():
    """Put ``sys.modules["__main__"]`` back after each test.

    Streamlit's script runner (AppTest) installs the page it runs as ``__main__`` and leaves it
    there; a later ``multiprocessing`` spawn re-imports ``__main__`` in each child, so the
    children ran that page script instead (a NameError in test_distributed after
    test_app_limits, seen only in a full run).
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def float32_unless_asked(request, monkeypatch):
    """Predictions in float32 unless a test is marked ``real_autocast``.

    On CPUs with native bf16 (AMX or AVX512-BF16) and on CUDA, autocast="auto" times the
    first image both ways and may keep bf16: a choice that depends on the machine and its
    load, which would make tight comparisons with float32 flaky and every first prediction
    four passes long. The bf16 path has tests of its own (test_fast_path, test_concurrency,
    test_autocast_probe); the marked test checks the real choice end to end.
    """
    if request.node.get_closest_marker("real_autocast") is None:
        monkeypatch.setattr("segscale.devices.bf16_worth_probing", lambda device: False)
        monkeypatch.setattr("segscale.devices.bf16_pays_off", lambda device: False)


@pytest.fixture
def make_checkpoint(tmp_path):
    """make_checkpoint(head=..., merge=..., scaleshapes=False, ...) -> path of a freshly initialised tiny checkpoint.

    With ``scaleshapes=True`` it predicts ScaleShapes' seven classes (for evaluation code).
    """

    def make(name: str = "tiny.pt", seed: int = 0, scaleshapes: bool = False, **config_kwargs):
        torch.manual_seed(seed)
        classes, palette = TINY_CLASSES, TINY_PALETTE
        if scaleshapes:
            from segscale.data.scaleshapes import CLASSES, PALETTE

            classes, palette = CLASSES, PALETTE
        config = tiny_config(num_classes=len(classes), **config_kwargs)
        model = build_model(config)
        return save_checkpoint(tmp_path / name, model, tiny_metadata(config, classes, palette))

    return make


def _point_the_app_to(folder, monkeypatch) -> None:
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(folder))


@pytest.fixture
def checkpoint_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny shared-head checkpoint (three classes of its own), which the app lists."""
    make_checkpoint("tiny.pt")
    _point_the_app_to(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture
def shapes_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny checkpoint for ScaleShapes' seven classes, which the pages list."""
    make_checkpoint("shapes.pt", scaleshapes=True)
    _point_the_app_to(tmp_path, monkeypatch)
    return tmp_path


# ----------------------------------------------------------------------------- driving the app

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
    """Text as a person reads it: the Markdown escapes of :func:`ui.messages.plain` removed."""
    return re.sub(r"\\(.)", r"\1", str(text))


def errors(at: AppTest) -> list[str]:
    return [unescaped(error.value) for error in at.error]


def texts(elements) -> str:
    return "\n".join(unescaped(e.value) for e in elements)


def rows_of(frame, header: str):
    """A table drawn with ``widgets.table_by_column`` (one column per scale or merge) read back as one row per
    scale or merge, its ``header`` column first; cells that are numbers become floats again."""
    import pandas as pd

    fields = list(frame[header])
    rows = []
    for name in [c for c in frame.columns if c != header]:
        row = {header: name}
        for field, value in zip(fields, frame[name]):
            try:
                row[field] = float(value)
            except ValueError:
                row[field] = value
        rows.append(row)
    return pd.DataFrame(rows)


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
        assert any(c.startswith("Dominant scale") for c in shown) and any(
            c.startswith("Attention entropy") for c in shown
        )
    offered = [kind for kind in APP_DOWNLOADS if OUTPUT_KINDS[kind].applies(merge, scales)]  # no weights for max
    assert [button.label for button in at.get("download_button")] == [OUTPUT_KINDS[kind].label for kind in offered]
    prediction = last_prediction(at)
    assert prediction.scales == tuple(scales) and prediction.merge == merge
    timings = " ".join(c.value for c in at.sidebar.caption)
    assert "CPU" in timings and "Model: " in timings
