"""segscale.visualize: pure functions, checked on small arrays
(shapes, ranges, views, files); its figure in segscale.plots."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from segscale import Predictor, outputs, plots
from segscale import visualize as viz
from segscale.metrics import attention_entropy
from segscale.modeling.geometry import scaled_size
from segscale.palette import ENTROPY_CMAP, colorize_labels

PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))
CLASSES = ("background", "disc", "bar")


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """One tiny model's predictions of a 61x83 image with each merge mode, and ("single") at the scale set {1}."""
    import torch

    from segscale.checkpoint import save_checkpoint
    from segscale.modeling import build_model
    from tests.conftest import tiny_config, tiny_metadata

    torch.manual_seed(0)
    config = tiny_config()
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", build_model(config), tiny_metadata(config))
    predictor = Predictor.from_checkpoint(path, device="cpu")
    rgb = np.random.default_rng(0).integers(0, 256, size=(61, 83, 3), dtype=np.uint8)
    results = {
        merge: predictor.predict(rgb, scales=(1.0, 0.75, 0.5), merge=merge) for merge in ("attention", "average", "max")
    }
    return {**results, "single": predictor.predict(rgb, scales=(1.0,), merge="attention")}


def test_heat_map_uses_the_fixed_range_and_clips():
    values = np.array([[0.0, 0.5, 1.0, 2.0, -1.0]])
    rgb = viz.heat_map(values, 0.0, 1.0, "viridis")
    table = viz._colormap_table("viridis")
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == tuple(table[0]) and tuple(rgb[0, 2]) == tuple(table[255])
    assert tuple(rgb[0, 3]) == tuple(table[255]) and tuple(rgb[0, 4]) == tuple(table[0])
    # The same value gets the same colour whatever else the map holds: no per-map stretch.
    assert tuple(viz.heat_map(np.array([[0.5, 0.6]]), 0.0, 1.0)[0, 0]) == tuple(rgb[0, 1])


def test_heat_map_refuses_an_empty_range_and_greys_nan():
    with pytest.raises(ValueError, match="vmax > vmin"):
        viz.heat_map(np.zeros((2, 2)), 1.0, 1.0)
    assert tuple(viz.heat_map(np.array([[np.nan]]), 0.0, 1.0)[0, 0]) == (128, 128, 128)


def test_colorbar_and_swatch_images_are_rgb_of_the_asked_width():
    bar = viz.colorbar_image(0.0, 1.0, "viridis", width=240, label="weight")
    assert bar.ndim == 3 and bar.shape[1] == 240 and bar.shape[2] == 3 and bar.dtype == np.uint8
    legend = viz.swatch_legend_image(["a", "b", "c"], PALETTE, width=200, columns=1)
    assert legend.shape[1] == 200 and legend.shape[0] > 3 * 13
    with pytest.raises(ValueError):
        viz.swatch_legend_image(["a"], PALETTE)


def test_overlay_blends_by_alpha():
    image = np.zeros((2, 2, 3), np.uint8)
    colours = np.full((2, 2, 3), 200, np.uint8)
    assert (viz.overlay(image, colours, 0.0) == 0).all()
    assert (viz.overlay(image, colours, 1.0) == 200).all()
    assert (viz.overlay(image, colours, 0.5) == 100).all()
    with pytest.raises(ValueError):
        viz.overlay(image, colours, 1.5)


def test_overlay_leaves_clear_pixels_unpainted():
    image = np.full((2, 3, 3), 50, np.uint8)
    colours = np.full((2, 3, 3), 250, np.uint8)
    clear = np.array([[True, False, False], [False, False, True]])
    blended = viz.overlay(image, colours, 0.5, clear=clear)
    assert (blended[clear] == 50).all() and (blended[~clear] == 150).all()
    with pytest.raises(ValueError, match="differ in size"):
        viz.overlay(image, colours, 0.5, clear=clear[:, :2])


@pytest.mark.parametrize("scale", [1.0, 0.75, 0.5, 1.5])
def test_input_at_scale_has_the_models_size(scale):
    image = np.random.default_rng(0).integers(0, 256, size=(61, 83, 3), dtype=np.uint8)
    resized = viz.input_at_scale(image, scale)
    assert resized.shape == (*scaled_size((61, 83), scale), 3) and resized.dtype == np.uint8
    if scale == 1.0:
        np.testing.assert_array_equal(resized, image)
    # Aligned corners: the corner pixels are the image's corner pixels.
    np.testing.assert_array_equal(resized[0, 0], image[0, 0])
    np.testing.assert_array_equal(resized[-1, -1], image[-1, -1])


def test_upsample_maps_keeps_leading_axes_and_corners():
    maps = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    up = viz.upsample_maps(maps, (9, 13))
    assert up.shape == (2, 9, 13) and up.dtype == np.float32
    np.testing.assert_allclose(up[:, 0, 0], maps[:, 0, 0])
    np.testing.assert_allclose(up[:, -1, -1], maps[:, -1, -1])


def test_dominant_scale_is_the_argmax_over_scales():
    weights = np.zeros((3, 2, 2), np.float32)
    weights[0, 0, 0] = weights[1, 0, 1] = weights[2, 1, 0] = weights[2, 1, 1] = 1.0
    np.testing.assert_array_equal(viz.dominant_scale(weights), [[0, 1], [2, 2]])


def test_class_shares_sum_to_one_and_list_every_class():
    labels = np.array([[0, 0, 1, 1], [1, 1, 1, 0]])
    shares = viz.class_shares(labels, CLASSES, PALETTE)
    assert [s.name for s in shares] == list(CLASSES)
    assert [s.share for s in shares] == [3 / 8, 5 / 8, 0.0]
    assert shares[1].hex_colour == "#c82828"


def test_default_class_prefers_an_object_class():
    assert viz.default_class(np.array([[0, 0, 0, 2]]), 3) == 2
    assert viz.default_class(np.zeros((2, 2), int), 3) == 1
    assert viz.default_class(np.zeros((2, 2), int), 1) == 0


def test_safe_stems():
    assert outputs.safe_file_stem("../My photo (1).JPG") == "My_photo_1"
    assert outputs.safe_file_stem("<script>.png") == "script"
    assert outputs.safe_file_stem(None) == outputs.safe_file_stem("...") == "image"


def test_output_stems_name_the_image_the_merge_and_the_scale_set():
    assert outputs.output_stem("../My photo.JPG", "attention", (1.0, 0.75, 0.5)) == "My_photo_attention_1-0.75-0.5"
    stems = {
        outputs.output_stem("a.png", merge, scales)
        for merge in ("attention", "max")
        for scales in ((1.0,), (1.0, 0.5), (2.0, 1.0))
    }
    assert len(stems) == 6  # no two settings write the same files


@pytest.mark.parametrize("merge", ["attention", "average", "max"])
def test_build_view_gives_every_map_at_one_display_size(predictions, merge):
    prediction = predictions[merge]
    view = viz.build_view(prediction, CLASSES, PALETTE, class_index=1, width=120)
    size = view.size
    assert size == (round(61 * 120 / 83), 120)
    assert len(view.scales) == 3
    for column in view.scales:
        arrays = [column.input, column.labels, column.class_map] + ([column.attention] if merge != "max" else [])
        assert all(a.shape == (*size, 3) and a.dtype == np.uint8 for a in arrays)
        assert (column.attention is None) == (merge == "max")
    assert view.fused_labels.shape == (*size, 3) and view.score_range == (0.0, 1.0)
    np.testing.assert_array_equal(view.fused_labels, colorize_labels(view.fused_label_indices, PALETTE))
    assert (view.dominant is None) == (merge == "average")
    assert (view.entropy is None) == (merge == "max")
    assert math.isclose(sum(s.share for s in view.shares), 1.0)
    raw = viz.build_view(prediction, CLASSES, PALETTE, class_index=2, score_kind="score", width=120)
    low, high = raw.score_range
    assert (
        low < high
        and low <= prediction.score_maps[:, 2].min() + 1e-4
        and high >= prediction.score_maps[:, 2].max() - 1e-4
    )


def test_average_pooling_entropy_is_maximal(predictions):
    view = viz.build_view(predictions["average"], CLASSES, PALETTE, width=60)
    top = tuple(viz._colormap_table(ENTROPY_CMAP)[255])
    assert (view.entropy.reshape(-1, 3) == top).all()


def test_palette_png_holds_class_indices_and_the_palette(predictions):
    labels = predictions["attention"].labels
    image = Image.open(io.BytesIO(outputs.palette_png(labels, PALETTE)))
    assert image.mode == "P" and image.size == (83, 61)
    np.testing.assert_array_equal(np.asarray(image), labels)
    assert image.getpalette()[:9] == [v for colour in PALETTE for v in colour]


def test_attention_png_tiles_the_scales(predictions):
    image = Image.open(io.BytesIO(outputs.attention_png(predictions["attention"].attention, (61, 83), gap=8)))
    assert image.size == (3 * 83 + 2 * 8, 61) and image.mode == "RGB"


@pytest.mark.parametrize("merge", ["attention", "max"])
def test_npz_holds_every_map_without_pickles(predictions, merge):
    prediction = predictions[merge]
    data = np.load(io.BytesIO(outputs.prediction_npz(prediction, CLASSES, PALETTE)), allow_pickle=False)
    np.testing.assert_array_equal(data["labels"], prediction.labels)
    np.testing.assert_array_equal(data["score_maps"], prediction.score_maps)
    np.testing.assert_array_equal(data["scales"], prediction.scales)
    assert list(data["classes"]) == list(CLASSES) and str(data["merge"]) == merge
    assert data["dominant_scale"].shape == prediction.fused.shape[1:]
    assert ("attention" in data) == (merge == "attention")
    if merge == "attention":
        np.testing.assert_allclose(data["attention_entropy_bits"], attention_entropy(prediction.attention), rtol=1e-6)
        assert data["attention_entropy_bits"].dtype == np.float32


def test_side_by_side_figure_renders(predictions):
    view = viz.build_view(predictions["attention"], CLASSES, PALETTE, width=80)
    figure = plots.side_by_side_figure(view, predictions["attention"], CLASSES, title="test")
    data = plots.figure_png(figure, dpi=40, tight=False)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size[0] > 100
    assert len(figure.axes) >= 3 * 4 + 3  # four rows of three scales, the fused row, colour bars


def figure_texts(figure) -> list[str]:
    from matplotlib.text import Text

    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


def literal_carets(figure) -> list[str]:
    """Texts with a ``^`` outside mathtext ($...$): shown to the reader as a literal caret."""
    return [text for text in figure_texts(figure) if "^" in "".join(text.split("$")[::2])]


def test_figures_write_superscripts_as_mathtext(predictions):
    view = viz.build_view(predictions["attention"], CLASSES, PALETTE, width=80)
    figures = [
        plots.side_by_side_figure(view, predictions["attention"], CLASSES),
        plots.dominant_share_figure((1.0, 0.5), (0.6, 0.4)),
        plots.model_diagram_figure((1.0, 0.5), "shared"),
    ]
    assert any("$w^s$" in text for text in figure_texts(figures[1]))
    assert [literal_carets(figure) for figure in figures] == [[], [], []]


def test_a_single_scale_figure_explains_why_it_has_no_weight_map(predictions):
    single = predictions["single"]
    view = viz.build_view(single, CLASSES, PALETTE, width=80)
    texts = [" ".join(text.split()) for text in figure_texts(plots.side_by_side_figure(view, single, CLASSES))]
    assert viz.SINGLE_SCALE_NOTE in texts  # where the weight, dominant-scale and entropy maps would be
    others = [text for text in texts if text != viz.SINGLE_SCALE_NOTE]
    assert not [text for text in others if "weight" in text or "entropy" in text or "dominant" in text], others
