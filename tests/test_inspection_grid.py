"""The inspector grid's colours, tips and click parsing, on a hand-built prediction (no model, no Streamlit).

A 17 x 25 image on a 3 x 4 grid puts every cell centre on a whole pixel (cell k sits on pixel 8k),
so each expected tip and colour can be written down by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from segscale.inspection_grid import COLOURINGS, cell_colours, cell_tips, grid_cells, offered_colourings, picked_cell
from segscale.predictor import Prediction, StageTimings

SIZE, GRID = (17, 25), (3, 4)
CLASSES = ("background", "disc", "bar")
PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))
LEFT, RIGHT = (10, 20, 30), (200, 100, 50)


def prediction(merge: str = "attention") -> Prediction:
    """Fused winner: class (row + col) % 3; the weights favour scale (col % 3); image LEFT of column 12, RIGHT after."""
    rows, cols = np.meshgrid(np.arange(GRID[0]), np.arange(GRID[1]), indexing="ij")
    fused = np.zeros((3, *GRID), np.float32)
    for c in range(3):
        fused[c] = np.where((rows + cols) % 3 == c, 2.0, 0.0)
    attention = None
    if merge != "max":
        attention = np.full((3, *GRID), 0.1, np.float32)
        for s in range(3):
            attention[s][cols % 3 == s] = 0.8
    image = np.zeros((*SIZE, 3), np.uint8)
    image[:, :12], image[:, 12:] = LEFT, RIGHT
    return Prediction(
        scales=(1.0, 0.75, 0.5),
        merge=merge,
        image=image,
        score_maps=np.stack([fused] * 3),
        attention_logits=None,
        attention=attention,
        fused=fused,
        labels=np.zeros(SIZE, np.int64),
        original_size=SIZE,
        device="CPU",
        timings=StageTimings(0, 0, 0),
    )


def test_labels_colour_each_cell_by_the_winner_of_the_fusion():
    colours = cell_colours(prediction(), "labels", PALETTE)
    assert colours.shape == (*GRID, 3) and colours.dtype == np.uint8
    for i in range(GRID[0]):
        for j in range(GRID[1]):
            assert tuple(colours[i, j]) == PALETTE[(i + j) % 3], (i, j)


def test_dominant_colours_each_cell_by_its_heaviest_scale_and_colours_repeat_past_their_count():
    two_colours = ((1, 1, 1), (2, 2, 2))  # three scales, two colours: scale 3 takes the first again
    colours = cell_colours(prediction(), "dominant", PALETTE, scale_colours=two_colours)
    for j in range(GRID[1]):
        assert tuple(colours[0, j]) == two_colours[(j % 3) % 2], j


def test_input_colours_each_cell_by_the_mean_of_its_pixels():
    colours = cell_colours(prediction(), "input", PALETTE)
    # Column cells sit on pixels 0, 8, 16, 24: the first two are nearest to pixels left of 12.
    assert [tuple(c) for c in colours[1]] == [LEFT, LEFT, RIGHT, RIGHT]


def test_without_weights_dominant_falls_back_to_the_input_and_is_not_offered():
    maxed = prediction("max")
    np.testing.assert_array_equal(cell_colours(maxed, "dominant", PALETTE), cell_colours(maxed, "input", PALETTE))
    assert offered_colourings(maxed) == ("input", "labels")
    assert offered_colourings(prediction()) == COLOURINGS


def test_an_unknown_colouring_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown grid colouring 'rainbow'; valid: input, labels, dominant"):
        cell_colours(prediction(), "rainbow", PALETTE)


def test_tips_name_the_cell_its_pixel_its_class_and_its_weights():
    tips = cell_tips(prediction(), CLASSES)
    assert len(tips) == GRID[0] * GRID[1]
    assert tips[0] == "cell (0, 0) on pixel (0, 0) · background · w 0.80 / 0.10 / 0.10"
    assert tips[1 * GRID[1] + 2] == "cell (1, 2) on pixel (8, 16) · background · w 0.10 / 0.10 / 0.80"  # row-major
    assert tips[-1] == "cell (2, 3) on pixel (16, 24) · bar · w 0.80 / 0.10 / 0.10"
    assert cell_tips(prediction("max"), CLASSES)[-1] == "cell (2, 3) on pixel (16, 24) · bar"


def test_grid_cells_are_row_major_with_hex_colours():
    cells = grid_cells(prediction(), "labels", CLASSES, PALETTE)
    assert cells.rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert cells.cols.tolist() == [0, 1, 2, 3] * 3
    assert cells.hex_colours[:3] == ["#000000", "#c82828", "#28c828"]
    assert len(cells.tips) == len(cells.hex_colours) == 12


@pytest.mark.parametrize(
    "selection, cell",
    [
        ({"selection": {"cell": [{"cell_row": 2, "cell_col": 3}]}}, (2, 3)),
        ({"selection": {"cell": [{"cell_row": "1", "cell_col": 0.0}]}}, (1, 0)),  # as the front end may send them
        ({"selection": {"cell": [{"cell_row": 3, "cell_col": 0}]}}, None),  # off the 3-row grid
        ({"selection": {"cell": [{"cell_row": -1, "cell_col": 0}]}}, None),
        ({"selection": {"cell": [{"cell_row": 1}]}}, None),  # a point without its column
        ({"selection": {"cell": [{"cell_row": "x", "cell_col": 0}]}}, None),
        ({"selection": {"cell": []}}, None),  # a cleared selection
        ({"selection": {}}, None),
        (None, None),  # no click yet
    ],
)
def test_picked_cell_reads_a_click_and_ignores_anything_else(selection, cell):
    assert picked_cell(selection, GRID) == cell


def test_the_grid_stride_is_the_networks_unless_the_grid_is_the_input_itself():
    from dataclasses import replace

    from segscale.inspection_grid import grid_stride, stride_words

    assert grid_stride(prediction(), 8) == 8 and stride_words(8) == "stride-8 "
    assert grid_stride(prediction(), None) is None and stride_words(None) == ""
    # A library network whose input had to be padded gives its maps at the input's size: one cell a pixel.
    full = np.zeros((3, 3, *SIZE), np.float32)
    at_input = replace(prediction("max"), score_maps=full, fused=full[0], attention=None)
    assert grid_stride(at_input, 4) == 1


def test_the_stride_of_a_model_is_the_registrys_or_its_library_networks_record():
    import json
    from dataclasses import replace

    from segscale.config import ModelConfig, TrunkConfig
    from segscale.trunks import TRUNKS, score_map_stride_of

    assert score_map_stride_of(ModelConfig(num_classes=3)) == 8
    for name in ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "fcn_resnet50"):
        torchvision = ModelConfig(num_classes=3, trunk=TrunkConfig(name=name, width=1.0))
        assert score_map_stride_of(torchvision) == TRUNKS[name].score_map_stride
    record = {"library": "transformers", "config": {"model_type": "segformer"}, "output_stride": 4}
    library = ModelConfig(num_classes=3, trunk=TrunkConfig(name="transformers", width=1.0, network=json.dumps(record)))
    assert score_map_stride_of(library) == 4
    del record["output_stride"]  # imported before strides were recorded
    older = replace(library, trunk=replace(library.trunk, network=json.dumps(record)))
    assert score_map_stride_of(older) is None
