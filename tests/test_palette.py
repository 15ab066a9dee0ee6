"""segscale.palette and segscale.formatting: one colour per class and per scale, one way to write a number."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segscale import palette
from segscale.formatting import format_number, format_percent, format_scale_set, scale_label
from segscale.metrics import attention_entropy

PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))


def test_colorize_labels_maps_each_index_to_its_palette_colour():
    labels = np.array([[0, 1], [2, 1]])
    rgb = palette.colorize_labels(labels, PALETTE)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == PALETTE[1] and tuple(rgb[1, 0]) == PALETTE[2] and tuple(rgb[0, 0]) == PALETTE[0]


def test_labels_without_a_class_are_void_white_never_a_class_colour():
    """Negative values, VOC's 255 and indices past the palette all draw in VOID_COLOUR, not class 0's black."""
    rgb = palette.colorize_labels(np.array([[3, 255, -1, -300, 1]]), PALETTE)
    assert palette.VOID_COLOUR == (255, 255, 255)
    assert [tuple(c) for c in rgb[0, :4]] == [palette.VOID_COLOUR] * 4
    assert tuple(rgb[0, 4]) == PALETTE[1]
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        palette.colorize_labels(np.zeros((2, 2, 1), int), PALETTE)


def test_scale_k_has_the_tab10_colour_k_on_every_page_and_figure():
    from matplotlib import colormaps

    tab10 = colormaps["tab10"].colors
    # Arrays, not nested lists: pytest 9.2's approx refuses nested sequences.
    np.testing.assert_allclose(
        np.array([palette.unit_rgb(c) for c in palette.SCALE_COLOURS]), np.array(tab10), atol=0.5 / 255
    )
    assert palette.scale_colour(12) == palette.SCALE_COLOURS[2]  # cycles after ten
    assert palette.hex_colour(palette.scale_colour(0)) == "#1f77b4"


def test_plots_draw_each_scale_in_its_page_colour():
    """The diagnostics' bars use the colours of the page's dominant-scale map."""
    from segscale import plots

    figure = plots.dominant_share_figure((1.0, 0.75, 0.5), (0.5, 0.3, 0.2))
    faces = [tuple(bar.get_facecolor()[:3]) for bar in figure.axes[0].patches]
    np.testing.assert_allclose(np.array(faces), np.array([palette.unit_rgb(c) for c in palette.SCALE_COLOURS[:3]]))


def test_voc_color_map_is_the_devkit_one():
    colours = palette.voc_color_map()
    assert colours[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert colours[255] == (224, 224, 192) and len(colours) == 256


def test_scale_sets_and_numbers_are_written_one_way():
    assert scale_label(1.0) == "1" and scale_label(0.75) == "0.75"
    assert format_scale_set((1.0, 0.75, 0.5)) == "{1, 0.75, 0.5}"
    assert format_scale_set([2]) == "{2}"
    assert format_percent(0.1234) == "12.3%" and format_percent(1.0, 0) == "100%"
    assert format_number(1.23456, 4) == "1.2346" and format_number(0.0, 4) == "0.0000"
    assert format_number(-0.00001234, 4) == "-1.23e-05"  # too small for 4 decimals: 3 significant digits


@pytest.mark.parametrize("count", [2, 3, 5])
def test_entropy_of_uniform_weights_is_log_s(count):
    uniform = np.full((count, 4, 4), 1.0 / count)
    np.testing.assert_allclose(attention_entropy(uniform, unit="nats"), math.log(count), rtol=1e-12)
    np.testing.assert_allclose(attention_entropy(uniform, unit="bits"), math.log2(count), rtol=1e-12)
    np.testing.assert_allclose(attention_entropy(uniform, normalized=True), 1.0, rtol=1e-12)


def test_entropy_of_one_hot_weights_is_zero_and_matches_a_direct_sum():
    one_hot = np.zeros((3, 2, 2))
    one_hot[1] = 1.0
    np.testing.assert_array_equal(attention_entropy(one_hot), 0.0)
    weights = np.array([[0.5, 1.0, 1 / 3], [0.5, 0.0, 1 / 3], [0.0, 0.0, 1 / 3]])  # (S, pixels)
    np.testing.assert_allclose(attention_entropy(weights), [1.0, 0.0, math.log2(3)])
    mixed = np.array([0.7, 0.2, 0.1]).reshape(3, 1, 1)
    expected = -sum(w * math.log(w) for w in (0.7, 0.2, 0.1))
    np.testing.assert_allclose(attention_entropy(mixed, unit="nats")[0, 0], expected, rtol=1e-12)
    assert attention_entropy(np.ones((1, 2, 2)), normalized=True).tolist() == [[0.0, 0.0]] * 2  # one scale: no spread
    with pytest.raises(ValueError, match="bits"):
        attention_entropy(mixed, unit="dits")
