"""The main view through Streamlit's AppTest: every map shows, controls change it, errors stay messages.

Checkpoints are tiny ones built here (the ``checkpoint_dir`` fixture of tests/conftest.py), in a
folder the app finds through SEGSCALE_CHECKPOINT_DIR, so nothing depends on the shipped model.
The helpers that drive the page are in tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from segscale import visualize as viz
from segscale.data.scaleshapes import generate_sample
from tests.conftest import (
    TINY_CLASSES,
    assert_every_map,
    captions,
    errors,
    image_url,
    last_prediction,
    open_page,
    png,
    unescaped,
)
from tests.conftest import upload_image as upload
from ui.model_controls import MAX_CUSTOM_SCALES
from ui.model_loading import CHECKPOINT_DIR_ENV


def test_a_gallery_sample_gives_every_map_and_its_ground_truth(checkpoint_dir):
    at = open_page()
    assert_every_map(at)
    assert "Ground truth (ScaleShapes)" in captions(at)
    assert at.selectbox(key="checkpoint").value == "tiny.pt"


def test_an_uploaded_image_gives_every_map(checkpoint_dir):
    at = open_page()
    rgb = np.random.default_rng(0).integers(0, 256, size=(72, 96, 3), dtype=np.uint8)
    upload(at, "noise.png", png(rgb))
    assert_every_map(at)
    np.testing.assert_array_equal(last_prediction(at).image, rgb)
    assert "Input: noise.png, uploaded (uploads have no ground truth)" in captions(at)
    assert any("noise" in m.value and "96x72 px" in m.value for m in at.markdown)


def test_a_random_sample_and_a_new_one(checkpoint_dir):
    at = open_page()
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
    at = open_page()
    before = last_prediction(at)
    fused_before = image_url(at, "Fused labels (")
    at.radio(key="scale_preset").set_value((1.0, 0.5)).run()
    assert_every_map(at, scales=(1.0, 0.5))
    assert not any(c.startswith("Scale 0.75") for c in captions(at))
    after = last_prediction(at)
    assert after.score_maps.shape[0] == 2 and not np.allclose(after.fused, before.fused)
    # With this tiny model and the first gallery sample, dropping scale 0.75 relabels some
    # thousands of pixels, so the fused labels' picture must change with them.
    assert not np.array_equal(after.labels, before.labels)
    assert image_url(at, "Fused labels (") != fused_before


def test_a_custom_scale_set_within_the_checkpoint_range(checkpoint_dir):
    at = open_page()
    at.radio(key="scale_preset").set_value("custom").run()
    custom = at.multiselect(key="custom_scales")
    assert min(custom.options) == "0.25" and max(custom.options) == "2"  # the tiny model's range (conftest), 0.05 apart
    custom.set_value([0.6, 1.0]).run()
    assert_every_map(at, scales=(1.0, 0.6))
    at.multiselect(key="custom_scales").set_value([]).run()
    assert not at.exception and "Pick at least one scale" in errors(at)[0]


def per_scale_lines(at) -> list[tuple[int, int]]:
    """Each line of per-scale maps on the main view: (maps on it, columns it has, the title's column included)."""
    lines = []
    for block in at.main.children.values():
        if getattr(block, "type", None) == "flex_container":
            maps = sum(1 for image in block.get("image") for caption in image.captions if caption.startswith("Scale "))
            if maps:
                lines.append((maps, len(block.children)))
    return lines


def test_a_long_custom_set_wraps_into_lines_of_at_most_six_maps_and_stops_at_eight(checkpoint_dir):
    at = open_page()
    # input, labels, class map, weights, without each scale, confidence: one line each
    assert per_scale_lines(at) == [(3, 4)] * 6
    at.radio(key="scale_preset").set_value("custom").run()
    custom = at.multiselect(key="custom_scales")
    assert custom.proto.max_selections == MAX_CUSTOM_SCALES == 8
    eight = (2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25)
    custom.set_value(list(eight)).run()
    assert_every_map(at, scales=eight)
    # Two lines of four per quantity, four columns each (the key goes above the maps at this count), so every map
    # has the same width.
    assert per_scale_lines(at) == [(4, 4)] * 12
    assert any("8 scales is the most a custom set takes" in c.value for c in at.caption)


def test_a_single_scale_says_it_has_nothing_to_fuse_instead_of_flat_maps(checkpoint_dir):
    at = open_page()
    at.radio(key="scale_preset").set_value((1.0,)).run()
    assert not at.exception and not at.error
    # input, labels, class map, confidence: no all-1 weight map, nothing to leave out
    assert per_scale_lines(at) == [(1, 2)] * 4
    shown = captions(at)
    assert not any("weight wˢ" in c or c.startswith(("Dominant scale", "Attention entropy")) for c in shown), shown
    notes = [unescaped(m.value) for m in at.markdown] + [unescaped(c.value) for c in at.caption]
    assert (
        sum(viz.SINGLE_SCALE_NOTE in text for text in notes) == 2
    )  # where the weights and where dominant scale and entropy would be


@pytest.mark.parametrize("merge", ["average", "max"])
def test_changing_the_merge_method_changes_the_result(checkpoint_dir, merge):
    at = open_page()
    attention = last_prediction(at)
    at.radio(key="merge").set_value(merge).run()
    assert_every_map(at, merge=merge)
    merged = last_prediction(at)
    np.testing.assert_array_equal(merged.score_maps, attention.score_maps)  # same network, same f^s
    assert not np.allclose(merged.fused, attention.fused)
    if merge == "average":
        np.testing.assert_allclose(merged.attention, 0.5 if merged.attention.shape[0] == 2 else 1 / 3, rtol=1e-6)
    else:
        assert merged.attention is None
        assert not any("weight wˢ" in c for c in captions(at))
        assert any(c.startswith("Dominant scale: max score") for c in captions(at))
    # "Which scale decides" shows and says only what the merge has: no learned weight, so no entropy map, and
    # no dominant scale explained by "the largest weight".
    decides = next(m.value for m in at.markdown if m.value.startswith("**Which scale decides**"))
    assert "largest" not in decides.replace("largest score", "") and "entropy" not in decides.replace("no entropy", "")
    assert not any("entropy" in c.lower() for c in captions(at))
    if merge == "average":
        assert not any(c.startswith("Dominant scale") for c in captions(at)) and "no weight map" in decides
    else:
        assert "largest score over the scales" in decides


def test_the_class_selector_and_raw_scores_change_the_score_maps(checkpoint_dir):
    at = open_page()
    probability = image_url(at, "Scale 1 · ")  # the input; the class map is further on
    class_map = [url for image in at.get("image") for c, url in zip(image.captions, image.value) if "probability" in c]
    assert at.selectbox(key="score_class").value != 0  # the default is an object class, so background is a change
    at.selectbox(key="score_class").set_value(0).run()
    assert not at.exception
    other = [url for image in at.get("image") for c, url in zip(image.captions, image.value) if "probability" in c]
    assert other != class_map and image_url(at, "Scale 1 · ") == probability
    at.radio(key="score_kind").set_value("score").run()
    assert not at.exception
    assert any("background score" in c for c in captions(at))


def shown_class(at) -> tuple[int, set[str]]:
    """The class box's value, and the class names the score-map row's title and captions use."""
    names = {
        m.value.split("**")[1].removeprefix("Score maps fˢ: ")
        for m in at.markdown
        if m.value.startswith("**Score maps fˢ: ")
    }
    names.discard("labels")  # the row of argmax labels, not of one class
    names |= {c.split(" · ")[1].removesuffix(" probability") for c in captions(at) if c.endswith(" probability")}
    return at.selectbox(key="score_class").value, names


def check_class_follows_the_image(at, defaults: list) -> None:
    """The box names the new image's default class, and the maps are drawn and titled for it."""
    assert not at.exception and not at.error
    value, names = shown_class(at)
    default = viz.default_class(last_prediction(at).labels, len(TINY_CLASSES))
    assert value == default and names == {TINY_CLASSES[default]}, (value, names, default)
    defaults.append(default)


def test_each_new_image_sets_the_class_box_and_the_maps_to_its_default_class(checkpoint_dir):
    # With the tiny model (seed 0), gallery val #0 and #3 have different defaults (disc, bar):
    # before the fix the box kept the first image's class on the server, and the second
    # image's maps and title followed it while the browser showed the new default.
    at = open_page()
    defaults: list = []
    check_class_follows_the_image(at, defaults)
    for index in (3, 0):
        at.selectbox(key="gallery_index").set_value(index).run()
        check_class_follows_the_image(at, defaults)
    for index in (3, 0):
        upload(at, f"val{index}.png", png(generate_sample("val", index).image))
        check_class_follows_the_image(at, defaults)
    assert defaults == [1, 2, 1, 2, 1], defaults  # the two images really differ, so every step was a change


def test_a_chosen_class_stays_while_the_image_stays(checkpoint_dir):
    at = open_page()
    at.selectbox(key="score_class").set_value(0).run()
    at.radio(key="scale_preset").set_value((1.0, 0.5)).run()
    assert shown_class(at) == (0, {"background"})
    at.selectbox(key="gallery_index").set_value(3).run()  # a new image: its own default again
    assert shown_class(at) == (2, {"bar"})


def test_display_sliders_do_not_run_the_model_again(checkpoint_dir):
    at = open_page()
    at.slider(key="overlay_alpha").set_value(0.9).run()
    assert not at.exception
    assert "Fused labels on the input, opacity 0.90, background clear" in captions(at)
    assert "prediction cached" in " ".join(c.value for c in at.sidebar.caption)


def test_the_overlay_leaves_the_background_clear_unless_asked(checkpoint_dir):
    at = open_page()
    at.slider(key="overlay_alpha").set_value(1.0).run()
    clear = image_url(at, "Fused labels on the input")
    at.toggle(key="overlay_background").set_value(True).run()
    assert not at.exception
    assert "Fused labels on the input, opacity 1.00" in captions(at)
    # The tiny model labels most pixels background: painting them (black, at opacity 1) changes the picture.
    assert image_url(at, "Fused labels on the input") != clear
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
    at = open_page()
    upload(at, name, data)
    assert not at.exception
    assert errors(at) and message in errors(at)[0], errors(at)
    assert not at.get("download_button")
    at.radio(key="image_source").set_value("Gallery").run()  # another source works at once
    assert_every_map(at)


def test_a_truncated_upload_is_refused(checkpoint_dir):
    at = open_page()
    noise = png(np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    upload(at, "half.png", noise[: len(noise) // 2])
    assert not at.exception and "cut off" in errors(at)[0]


def test_upload_notices_are_shown(checkpoint_dir):
    at = open_page()
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (0, 0, 255, 255)
    upload(at, "cut-out.png", png(rgba))
    assert_every_map(at)
    assert any("transparent areas" in info.value for info in at.info)


def test_file_names_are_shown_literally_never_as_markup(checkpoint_dir):
    at = open_page()
    rgb = np.full((32, 32, 3), 120, np.uint8)
    upload(at, "<img src=x onerror=alert(1)>[link](http://x).png", png(rgb))
    assert_every_map(at)
    summary = next(m.value for m in at.markdown if "32x32 px" in m.value)
    assert r"\<img" in summary and r"\[link\]\(http" in summary


def test_a_checkpoint_that_fails_to_load_is_a_message(checkpoint_dir):
    (checkpoint_dir / "broken.pt").write_bytes(b"not a checkpoint")
    at = open_page()
    at.selectbox(key="checkpoint").set_value("broken.pt").run()
    assert not at.exception
    assert "broken.pt: not a readable PyTorch file" in errors(at)[0] and "cannot be used" in errors(at)[0]
    at.selectbox(key="checkpoint").set_value("tiny.pt").run()
    assert_every_map(at)


def test_no_checkpoint_folder_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path / "missing"))
    at = open_page()
    assert not at.exception and "No checkpoint" in errors(at)[0]


def test_the_demo_checkpoint_is_the_default(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("another.pt")
    make_checkpoint("scaleshapes_demo.pt", seed=1)
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page()
    assert at.selectbox(key="checkpoint").value == "scaleshapes_demo.pt"
    assert at.selectbox(key="checkpoint").options == ["scaleshapes_demo.pt", "another.pt"]


def test_a_paper_head_offers_only_its_trained_set_for_attention(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("paper.pt", head="paper", scales=(1.0, 0.5))
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page()
    assert at.radio(key="scale_preset").options == ["{1, 0.5} (trained)"]
    assert_every_map(at, scales=(1.0, 0.5))
    at.radio(key="merge").set_value("average").run()
    assert "custom…" in at.radio(key="scale_preset").options  # any set within the range for average
    assert_every_map(at, scales=(1.0, 0.5), merge="average")


def test_a_scaleshapes_checkpoint_scores_the_sample_against_its_ground_truth(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("shapes.pt", scaleshapes=True)
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page()
    assert_every_map(at)
    assert any(c.value.startswith("On this image: pixel accuracy") for c in at.caption)


def test_every_merge_mode_has_its_help_line():
    """The merge radio's help is built from MERGE_HELP for whatever the
    checkpoint offers; a missing mode would be a KeyError on the page."""
    from segscale.config import MERGE_MODES
    from ui.model_controls import MERGE_HELP

    assert set(MERGE_HELP) == set(MERGE_MODES)
