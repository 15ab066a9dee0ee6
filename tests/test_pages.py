"""The five pages beside the main view through Streamlit's AppTest: no exception, the main controls change the output.

Checkpoints are tiny ones built here (the ``shapes_dir`` fixture of tests/conftest.py) in a folder
the pages find through SEGSCALE_CHECKPOINT_DIR; most predict ScaleShapes' classes, so that ground truth, IoU and the
diagnostics over ScaleShapes images apply. A page is opened on its own
(``AppTest.from_file("pages/...")``), or reached from the main view with ``switch_page`` where
what is tested is a choice carried across pages. The helpers that drive a page are in
tests/conftest.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from tests.conftest import (
    CHECKPOINTS,
    COMPARISON,
    DIAGNOSTICS,
    HOW,
    INSPECTOR,
    assert_clean,
    captions,
    errors,
    last_prediction,
    noise,
    open_page,
    png,
    rows_of,
    texts,
    unescaped,
    upload_image,
)
from ui import widgets
from ui.model_loading import CHECKPOINT_DIR_ENV
from ui.session import UPLOADED_CHECKPOINTS_KEY

# ----------------------------------------------------------------------------- 1. pixel inspector


def test_inspector_writes_eq2_and_eq1_with_the_numbers_in_float32(shapes_dir):
    at = open_page(INSPECTOR)
    assert_clean(at)
    eq2, eq1 = (latex.value for latex in at.latex)
    assert r"\frac{\exp(h^{(s)})}" in eq2 and "w^{(0.75)}" in eq2  # Eq. 2, one line per scale
    assert r"\sum_{s=1}^{S} w^{(s)}" in eq1 and r"g_{\text{" in eq1  # Eq. 1 for the shown classes
    scale_table, merge_table, without_table = (frame.value for frame in at.dataframe)
    assert list(scale_table.columns) == ["scale", "1", "0.75", "0.5"]  # a column per scale: it fits the page
    scale_table, merge_table = rows_of(scale_table, "scale"), rows_of(merge_table, "merge")
    without_table = rows_of(without_table, "scale")
    assert list(scale_table["scale"]) == ["1", "0.75", "0.5"]
    np.testing.assert_allclose(scale_table["wˢ"].sum(), 1.0, rtol=1e-6)  # the weights of Eq. 2 sum to 1
    assert set(scale_table["winner"]) <= set(SCALESHAPES_CLASSES)
    assert [m.split(" ")[0] for m in merge_table["merge"]] == ["attention", "average", "max"]
    # Without each scale, every merge: the label at the pixel, marked * where it changes.
    assert list(without_table["scale"]) == ["1", "0.75", "0.5"]
    assert {"attention without it", "average without it", "max without it"} <= set(without_table.columns)
    assert set(without_table["own label"]) == set(scale_table["winner"])
    assert "float32" in texts(at.caption)
    assert last_prediction(at).merge == "attention"
    assert any(c.startswith("Input at scale 1 around pixel") for c in captions(at))
    assert at.get("vega_lite_chart"), "the clickable grid is missing"


def test_inspector_numbers_follow_the_pixel(shapes_dir):
    at = open_page(INSPECTOR)
    before = [latex.value for latex in at.latex]
    at.number_input(key="inspect_row").set_value(10)
    at.number_input(key="inspect_col").set_value(20).run()
    assert_clean(at)
    assert [latex.value for latex in at.latex] != before
    assert "**Pixel (row 10, col 20)**" in at.markdown[0].value
    at.number_input(key="inspect_col").set_value(400).run()
    assert "col 400" in at.markdown[0].value and [latex.value for latex in at.latex] != before


def test_inspector_tables_size_text_columns_for_their_longest_cell(shapes_dir):
    # Left to itself, a table kept the column widths of its first run: a winner column sized
    # for "circle" showed "backgrou" once another pixel's winner was the background.
    at = open_page(INSPECTOR)
    for row, col in ((2, 2), (300, 200)):
        at.number_input(key="inspect_row").set_value(row)
        at.number_input(key="inspect_col").set_value(col).run()
        checked = []
        for frame in at.dataframe:
            config = json.loads(frame.proto.columns)
            for name in frame.value.columns:
                if pd.api.types.is_string_dtype(frame.value[name]):
                    longest = max(len(str(value)) for value in [name, *frame.value[name]])
                    assert config[name].get("width", 0) >= widgets.TABLE_CHAR_PX * longest, (name, config[name])
                    checked.append(name)
        # The inspector's three tables have a column per scale or merge, every cell text, each sized.
        assert sorted(checked) == sorted(
            ["scale", "1", "0.75", "0.5", "merge", "attention (this prediction)", "average", "max"]
            + ["scale", "1", "0.75", "0.5"]
        )


def test_inspector_writes_every_size_width_x_height(shapes_dir):
    at = open_page(INSPECTOR)
    prediction = last_prediction(at)
    (height, width), (rows, cols) = prediction.labels.shape, prediction.grid
    assert rows != cols  # a square grid would not tell the two orders apart
    line = at.markdown[0].value
    assert f"of the {width}x{height} px image" in line and f"of the {cols}x{rows}-cell stride-8 grid" in line, line
    assert "Sizes are width x height, positions (row, col)" in line
    assert f"the {cols}x{rows}-cell stride-8 grid" in texts(at.caption)


def test_inspector_writes_out_average_and_max_pooling(shapes_dir):
    at = open_page(INSPECTOR)
    at.radio(key="inspect_eq1_merge").set_value("average").run()
    assert_clean(at)
    assert r"\tfrac{1}{3}" in at.latex[1].value
    at.radio(key="inspect_eq1_merge").set_value("max").run()
    assert r"\max_{s} f^{(s)}_c" in at.latex[1].value
    at.slider(key="inspect_top_k").set_value(5).run()
    assert at.latex[1].value.count(r"g_{\text{") == 5


def test_inspector_grid_colourings(shapes_dir):
    at = open_page(INSPECTOR)
    for colouring in ("labels", "dominant", "input"):
        at.radio(key="inspect_grid_colour").set_value(colouring).run()
        assert_clean(at)


def test_inspector_on_an_upload_scales_it_and_keeps_the_pixel_inside(shapes_dir):
    at = open_page(INSPECTOR)
    upload_image(at, "big photo.png", png(noise(700, 900)))
    assert_clean(at)
    assert "640" in texts(at.info)  # scaled down, with a notice
    assert at.number_input(key="inspect_col").max == 639
    assert last_prediction(at).labels.shape == (498, 640)


def test_inspector_without_an_attention_head_shows_average_and_max(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("average.pt", scaleshapes=True, merge="average")
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page(INSPECTOR)
    assert_clean(at)
    assert len(at.latex) == 1 and "No attention here" in texts(at.caption)
    assert at.radio(key="inspect_eq1_merge").options == ["average pooling (wˢ = 1/S)", "max pooling"]


def test_choices_and_the_upload_follow_the_person_to_the_inspector(shapes_dir):
    at = open_page()
    at.selectbox(key="gallery_index").set_value(3).run()
    at.radio(key="scale_preset").set_value((1.0, 0.5)).run()
    at.switch_page(INSPECTOR).run()
    assert_clean(at)
    assert at.selectbox(key="gallery_index").value == 3
    assert last_prediction(at).scales == (1.0, 0.5)
    assert list(at.dataframe[0].value.columns) == ["scale", "1", "0.5"]  # one column per scale

    at.switch_page("app.py").run()
    upload_image(at, "mine.png", png(noise(80, 96)))
    at.switch_page(INSPECTOR).run()
    assert_clean(at)
    assert "mine.png, uploaded earlier in this session" in texts(at.caption)
    np.testing.assert_array_equal(last_prediction(at).image, noise(80, 96))


# ----------------------------------------------------------------------------- 2. merge comparison


def test_comparison_shows_every_merge_its_errors_and_scores(shapes_dir):
    at = open_page(COMPARISON)
    assert_clean(at)
    shown = captions(at)
    for merge in ("attention", "average", "max"):
        assert any(c.startswith(f"Fused labels: {merge}, mIoU") for c in shown), shown
        assert any(c.startswith(f"Errors: {merge}, ") for c in shown), shown
    assert any(c.startswith("Merges disagree: ") for c in shown)
    assert "Max pooling's deciding scale" in shown
    assert any("Max pooling: deciding scale" in m.value and "per class" in m.value for m in at.markdown)
    assert "Ground truth (ScaleShapes)" in shown
    # One column per merge and a row per measure: seven classes' IoU in columns ran off the page's right edge.
    scores = at.dataframe[0].value
    assert list(scores.columns) == ["measure", "attention", "average", "max"]
    shapes = ("background", "circle", "triangle", "square", "star", "cross", "ring")
    assert list(scores["measure"])[:2] == ["mIoU", "pixel accuracy"]
    assert [f"IoU {name}" for name in shapes] == [m for m in scores["measure"] if m.startswith("IoU ")]
    assert len(at.dataframe[1].value) == 3  # three pairs of merges
    assert at.get("download_button")


def test_comparison_follows_the_scale_set(shapes_dir):
    at = open_page(COMPARISON)
    before = last_prediction(at)
    table = at.dataframe[0].value
    at.radio(key="scale_preset").set_value((1.0, 0.5)).run()
    assert_clean(at)
    after = last_prediction(at)
    assert after.scales == (1.0, 0.5) and before.scales == (1.0, 0.75, 0.5)
    # With this tiny model and the first gallery sample, dropping scale 0.75 relabels about a
    # tenth of the pixels, so the scores against the ground truth must change with them.
    assert not np.array_equal(after.labels, before.labels)
    assert not at.dataframe[0].value.equals(table)


def test_comparison_of_an_upload_has_no_scores(shapes_dir):
    at = open_page(COMPARISON)
    upload_image(at, "photo.png", png(noise(64, 96)))
    assert_clean(at)
    assert "No ground truth for this image" in texts(at.markdown)
    assert not any(c.startswith("Errors: ") for c in captions(at))
    assert len(at.dataframe) == 1  # agreement only


# ----------------------------------------------------------------------------- 3. scale diagnostics


def test_diagnostics_wait_for_the_button_then_plot_tabulate_and_offer_the_csv(shapes_dir, monkeypatch):
    import segscale.diagnostics as diagnostics

    runs = []
    real = diagnostics.scale_diagnostics
    monkeypatch.setattr(diagnostics, "scale_diagnostics", lambda *a, **k: runs.append(1) or real(*a, **k))
    at = open_page(DIAGNOSTICS)
    assert_clean(at)
    assert not at.get("image") and "Press *Run diagnostics*" in texts(at.info)  # nothing heavy on page load
    # No promise of a time per image measured elsewhere ("about 1 s" took 0.26 s on another machine).
    assert " s per ScaleShapes image" not in texts(at.caption) and "depends on the machine" in texts(at.caption)
    at.number_input(key="diagnose_count").set_value(2).run()
    at.button(key="diagnose_run").click().run()
    assert_clean(at)
    assert len(runs) == 1
    shown = captions(at)
    for start in (
        "Mean attention weight wˢ of each scale against object extent",
        "Mean attention weight wˢ of each scale per class",
        "Share of all pixels where each scale",
        "mIoU and pixel accuracy of each merge",
    ):
        assert any(c.startswith(start) for c in shown), (start, shown)
    assert "ScaleShapes val images 0 to 1" in texts(at.success)
    assert [b.label for b in at.get("download_button")] == ["Objects table (CSV)"]
    assert list(at.dataframe[2].value["merge"]) == ["attention", "average", "max"]

    at.toggle(key="diagnose_zoom").set_value(True).run()  # another drawing of the same run
    at.run()  # coming back: the cached result, no second pass over the images
    assert_clean(at)
    assert len(runs) == 1 and len(at.get("image")) == 5  # four figures of weights and scores, one of decisions
    assert any(c.startswith("Share of object pixels each scale decides") for c in captions(at))
    decides = at.dataframe[-1].value  # a column per scale, a row per measure
    assert list(decides.columns)[-3:] == ["scale 1", "scale 0.75", "scale 0.5"]
    assert list(decides["measure"])[:2] == ["mIoU without it (attention)", "decides (all pixels)"]

    at.number_input(key="diagnose_count").set_value(3).run()
    assert "settings changed" in texts(at.info) and not at.get("image")


def test_diagnostics_over_uploaded_images(shapes_dir):
    at = open_page(DIAGNOSTICS)
    at.radio(key="diagnose_source").set_value("Uploaded images").run()
    uploader = at.file_uploader(key="diagnose_uploads")
    uploader.upload(
        "a $\\frac{1}{$.png", png(noise(64, 80, 1)), "image/png"
    )  # maths matplotlib cannot draw, if not escaped
    uploader.upload("b.png", png(noise(72, 60, 2)), "image/png")
    uploader.upload("broken.png", b"not a picture", "image/png")
    at.run()
    assert not at.exception and "broken.png is left out" in errors(at)[0]
    at.button(key="diagnose_run_uploads").click().run()
    assert not at.exception
    shown = captions(at)
    assert any(c.startswith("Mean attention weight wˢ of each scale, per uploaded image") for c in shown)
    assert any(c.startswith("Share of all pixels") for c in shown)
    assert list(at.dataframe[0].value["image"]) == ["a $\\frac{1}{$.png", "b.png"]


def test_diagnostics_need_scaleshapes_classes(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("tiny.pt")  # three classes of its own
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page(DIAGNOSTICS)
    assert "not ScaleShapes' classes" in errors(at)[0]


# ----------------------------------------------------------------------------- 4. how it works


def test_how_it_works_explains_with_the_checkpoints_own_numbers(shapes_dir):
    at = open_page(HOW)
    assert_clean(at)
    equations = [latex.value for latex in at.latex]
    assert len(equations) == 4 and "(2)" in equations[0] and "(1)" in equations[1]
    assert r"\max_{s}" in equations[2] and r"\mathcal{L}" in equations[3]
    assert any(c.startswith("The model at its trained scales {1, 0.75, 0.5}") for c in captions(at))
    layers = at.dataframe[0].value
    assert {"conv1_1", "fc6", "fc7", "fc8"} <= set(layers["layer"]) and layers["receptive field"].iloc[-1] > 100
    # A pooling layer has no channels of its own: "-" as `segscale describe` writes it, never "None".
    pools = layers[layers["kind"].str.contains("pool", case=False)]
    assert len(pools) and set(pools["in"]) == {"-"} and set(pools["out"]) == {"-"}
    assert not layers.isna().any().any() and "None" not in set(layers.astype(str).values.ravel())
    assert "| output stride | 8" in texts(at.markdown).replace("\\", "")
    at.toggle(key="describe_all_layers").set_value(True).run()
    assert len(at.dataframe[0].value) > len(layers) and "ReLU" in set(at.dataframe[0].value["kind"])


def test_how_it_works_names_the_paper_head(make_checkpoint, monkeypatch, tmp_path):
    make_checkpoint("paper.pt", head="paper", scales=(1.0, 0.5))
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page(HOW)
    assert_clean(at)
    assert "head is the paper's" in texts(at.markdown)


# ----------------------------------------------------------------------------- 5. checkpoints


def test_checkpoints_page_has_a_card_per_file_and_says_why_one_is_unusable(shapes_dir):
    (shapes_dir / "broken.pt").write_bytes(b"not a checkpoint")
    at = open_page(CHECKPOINTS)
    assert not at.exception
    assert "broken.pt: not a readable PyTorch file" in errors(at)[0] and "Cannot be used" in errors(at)[0]
    cards = texts(at.markdown)
    assert "tiny test model" in cards and "| trained scales | {1, 0.75, 0.5} |" in cards and "| steps |" in cards
    # The card's short table holds the rows `segscale checkpoints` prints, in its order (the name is the title here);
    # the first table of the page, since the full training card follows it folded.
    from segscale.checkpoint_cards import read_checkpoint_card

    short_table = next(unescaped(m.value) for m in at.markdown if m.value.startswith("| field | value |"))
    rows = [f"| {name} | {value} |" for name, value in read_checkpoint_card(shapes_dir / "shapes.pt").summary[1:]]
    assert short_table.splitlines()[2:] == rows


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("broken.pt", b"this is not a checkpoint", "not a readable PyTorch file"),
        ("empty.pt", b"", "the file is empty"),
    ],
)
def test_a_broken_checkpoint_upload_is_a_message(shapes_dir, name, data, message):
    at = open_page(CHECKPOINTS)
    at.file_uploader(key="checkpoint_upload").upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception
    assert message in errors(at)[0] and name in errors(at)[0] and "cannot be used as a checkpoint" in errors(at)[0]


def test_an_upload_that_would_run_code_is_refused_unread(shapes_dir, tmp_path):
    unsafe = tmp_path / "unsafe.bin"
    torch.save({"format": "segscale-checkpoint", "hook": os.system}, unsafe)  # a pickle naming a function
    at = open_page(CHECKPOINTS)
    at.file_uploader(key="checkpoint_upload").upload("unsafe.pt", unsafe.read_bytes(), "application/octet-stream")
    at.run()
    assert not at.exception
    assert "refused" in errors(at)[0] and "could run code" in errors(at)[0]


def test_an_uploaded_checkpoint_can_be_used_on_every_page(shapes_dir, make_checkpoint, tmp_path):
    own = make_checkpoint("own/mine.pt", seed=3)  # three classes, outside the listed folder
    at = open_page()
    at.switch_page(CHECKPOINTS).run()
    at.file_uploader(key="checkpoint_upload").upload("mine.pt", Path(own).read_bytes(), "application/octet-stream")
    at.run()
    assert not at.exception and not at.error
    assert "| classes | 3: background, disc, bar |" in texts(at.markdown)
    at.button(key="checkpoint_use").click().run()
    assert "uploaded: mine.pt" in at.session_state[UPLOADED_CHECKPOINTS_KEY]
    assert "In use for this session" in texts(at.success)
    at.switch_page(INSPECTOR).run()
    assert_clean(at)
    assert at.selectbox(key="checkpoint").value == "uploaded: mine.pt"
    assert at.selectbox(key="checkpoint").options == ["shapes.pt", "uploaded: mine.pt"]
    assert last_prediction(at).score_maps.shape[1] == 3
