"""The main view through Streamlit's AppTest: every map shows, controls change it, errors stay messages.

Checkpoints are tiny ones built here (tests/conftest.py), in a folder the app finds through
SEGSCALE_CHECKPOINT_DIR, so nothing depends on the shipped model. Image URLs in AppTest are
content hashes, which is how "the picture changed" is checked.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_helpers import CHECKPOINT_DIR_ENV, LAST_PREDICTION_KEY
from segscale.predictor import Prediction

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 120  # seconds per run; the tiny model answers in well under one on two cores
APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def checkpoint_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny shared-head checkpoint, which the app lists."""
    make_checkpoint("tiny.pt")
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    return tmp_path


def start(checkpoint_dir) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def image_url(at: AppTest, caption_start: str) -> str:
    for image in at.get("image"):
        for caption, url in zip(image.captions, image.value):
            if caption.startswith(caption_start):
                return url
    raise AssertionError(f"no image captioned {caption_start!r}; captions: {captions(at)}")


def errors(at: AppTest) -> list[str]:
    """Error texts as a person reads them (the Markdown escapes of :func:`app_helpers.plain` removed)."""
    return [re.sub(r"\\(.)", r"\1", error.value) for error in at.error]


def last_prediction(at: AppTest) -> Prediction:
    return at.session_state[LAST_PREDICTION_KEY]


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    at.radio(key="image_source").set_value("Upload").run()
    at.file_uploader(key="upload").upload(name, data, mime)
    return at.run()


def assert_every_map(at: AppTest, scales=(1.0, 0.75, 0.5), merge: str = "attention") -> None:
    assert not at.exception, at.exception
    assert not at.error, errors(at)
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


def test_a_gallery_sample_gives_every_map_and_its_ground_truth(checkpoint_dir):
    at = start(checkpoint_dir)
    assert_every_map(at)
    assert "Ground truth (ScaleShapes)" in captions(at)
    assert at.selectbox(key="checkpoint").value == "tiny.pt"


def test_an_uploaded_image_gives_every_map(checkpoint_dir):
    at = start(checkpoint_dir)
    rgb = np.random.default_rng(0).integers(0, 256, size=(72, 96, 3), dtype=np.uint8)
    upload(at, "noise.png", png(rgb))
    assert_every_map(at)
    np.testing.assert_array_equal(last_prediction(at).image, rgb)
    assert "Input (uploads have no ground truth)" in captions(at)
    assert any("noise" in m.value and "96x72 px" in m.value for m in at.markdown)


def test_a_random_sample_and_a_new_one(checkpoint_dir):
    at = start(checkpoint_dir)
    at.radio(key="image_source").set_value("Random sample").run()
    assert_every_map(at)
    first = at.session_state["random_index"]
    for _ in range(3):  # three draws from 100 000 all equal to the first: not a fair coin
        at.button(key="new_sample").click().run()
        if at.session_state["random_index"] != first:
            break
    assert at.session_state["random_index"] != first
    assert not at.exception


def test_changing_the_scale_set_changes_the_result(checkpoint_dir):
    at = start(checkpoint_dir)
    before = last_prediction(at)
    fused_before = image_url(at, "Fused labels (")
    at.radio(key="scale_preset").set_value((1.0, 0.5)).run()
    assert_every_map(at, scales=(1.0, 0.5))
    assert not any(c.startswith("Scale 0.75") for c in captions(at))
    after = last_prediction(at)
    assert after.score_maps.shape[0] == 2 and not np.allclose(after.fused, before.fused)
    assert image_url(at, "Fused labels (") != fused_before or np.array_equal(after.labels, before.labels)


def test_a_custom_scale_set_within_the_checkpoint_range(checkpoint_dir):
    at = start(checkpoint_dir)
    at.radio(key="scale_preset").set_value("custom").run()
    custom = at.multiselect(key="custom_scales")
    assert min(custom.options) == "0.25" and max(custom.options) == "2"  # the tiny model's range (conftest), 0.05 apart
    custom.set_value([0.6, 1.0]).run()
    assert_every_map(at, scales=(1.0, 0.6))
    at.multiselect(key="custom_scales").set_value([]).run()
    assert not at.exception and "Pick at least one scale" in errors(at)[0]


@pytest.mark.parametrize("merge", ["average", "max"])
def test_changing_the_merge_method_changes_the_result(checkpoint_dir, merge):
    at = start(checkpoint_dir)
    attention = last_prediction(at)
    at.radio(key="merge").set_value(merge).run()
    assert_every_map(at, merge=merge)
    merged = last_prediction(at)
    np.testing.assert_array_equal(merged.score_maps, attention.score_maps)  # same network, same f^s
    assert not np.allclose(merged.fused, attention.fused)
    if merge == "average":
        np.testing.assert_allclose(merged.attention, 0.5 if merged.attention.shape[0] == 2 else 1 / 3, rtol=1e-6)
        assert any(c.startswith("Attention entropy") for c in captions(at))
    else:
        assert merged.attention is None
        assert not any("weight wˢ" in c for c in captions(at))
        assert any(c.startswith("Dominant scale: max score") for c in captions(at))


def test_the_class_selector_and_raw_scores_change_the_score_maps(checkpoint_dir):
    at = start(checkpoint_dir)
    probability = image_url(at, "Scale 1 · ")  # the input; the class map is further on
    class_map = [url for image in at.get("image") for c, url in zip(image.captions, image.value) if "probability" in c]
    at.selectbox(key="score_class").set_value(0).run()
    assert not at.exception
    other = [url for image in at.get("image") for c, url in zip(image.captions, image.value) if "probability" in c]
    assert other != class_map and image_url(at, "Scale 1 · ") == probability
    at.radio(key="score_kind").set_value("score").run()
    assert not at.exception
    assert any("background score" in c for c in captions(at))


def test_display_sliders_do_not_run_the_model_again(checkpoint_dir):
    at = start(checkpoint_dir)
    at.slider(key="overlay_alpha").set_value(0.9).run()
    assert not at.exception
    assert "Fused labels on the input, opacity 0.90" in captions(at)
    assert "prediction cached" in " ".join(c.value for c in at.sidebar.caption)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("broken.png", b"this is not a picture", "holds text, not an image"),
        ("empty.jpg", b"", "empty"),
        ("tiny.png", png(np.zeros((4, 4, 3), np.uint8)), "at least 16 pixels"),
    ],
)
def test_a_broken_upload_shows_an_error_and_the_session_keeps_working(checkpoint_dir, name, data, message):
    at = start(checkpoint_dir)
    upload(at, name, data)
    assert not at.exception
    assert errors(at) and message in errors(at)[0], errors(at)
    assert not at.get("download_button")
    at.radio(key="image_source").set_value("Gallery").run()  # another source works at once
    assert_every_map(at)


def test_a_truncated_upload_is_refused(checkpoint_dir):
    at = start(checkpoint_dir)
    noise = png(np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    upload(at, "half.png", noise[: len(noise) // 2])
    assert not at.exception and "cut off" in errors(at)[0]


def test_upload_notices_are_shown(checkpoint_dir):
    at = start(checkpoint_dir)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (0, 0, 255, 255)
    upload(at, "cut-out.png", png(rgba))
    assert_every_map(at)
    assert any("transparent areas" in info.value for info in at.info)


def test_file_names_are_shown_literally_never_as_markup(checkpoint_dir):
    at = start(checkpoint_dir)
    rgb = np.full((32, 32, 3), 120, np.uint8)
    upload(at, "<img src=x onerror=alert(1)>[link](http://x).png", png(rgb))
    assert_every_map(at)
    summary = next(m.value for m in at.markdown if "32x32 px" in m.value)
    assert r"\<img" in summary and r"\[link\]\(http" in summary


def test_a_checkpoint_that_fails_to_load_is_a_message(checkpoint_dir):
    (checkpoint_dir / "broken.pt").write_bytes(b"not a checkpoint")
    at = start(checkpoint_dir)
    at.selectbox(key="checkpoint").set_value("broken.pt").run()
    assert not at.exception
    assert "broken.pt: not a readable PyTorch file" in errors(at)[0] and "cannot be used" in errors(at)[0]
    at.selectbox(key="checkpoint").set_value("tiny.pt").run()
    assert_every_map(at)


def test_no_checkpoint_folder_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path / "missing"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and "No checkpoint" in errors(at)[0]


def test_the_demo_checkpoint_is_the_default(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("another.pt")
    make_checkpoint("scaleshapes_demo.pt", seed=1)
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.selectbox(key="checkpoint").value == "scaleshapes_demo.pt"
    assert at.selectbox(key="checkpoint").options == ["scaleshapes_demo.pt", "another.pt"]


def test_a_paper_head_offers_only_its_trained_set_for_attention(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("paper.pt", head="paper", scales=(1.0, 0.5))
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.radio(key="scale_preset").options == ["{1, 0.5} (trained)"]
    assert_every_map(at, scales=(1.0, 0.5))
    at.radio(key="merge").set_value("average").run()
    assert "custom…" in at.radio(key="scale_preset").options  # any set within the range for average
    assert_every_map(at, scales=(1.0, 0.5), merge="average")


def test_a_scaleshapes_checkpoint_scores_the_sample_against_its_ground_truth(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("shapes.pt", scaleshapes=True)
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_every_map(at)
    assert any(c.value.startswith("On this image: pixel accuracy") for c in at.caption)
