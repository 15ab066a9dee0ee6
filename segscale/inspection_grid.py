"""The pixel inspector's clickable grid as plain data: a colour and a tip for every grid cell.

The inspector shows the score-map grid of the largest scale, the cells Eq. 1 and 2 hold on, as
a heat map a person clicks. What each cell shows and says is decided here, in numpy, so that a
plain test reaches it; the app only turns :class:`GridCells` into a chart and a click back into
a cell (:func:`picked_cell`).

    cells = grid_cells(prediction, "labels", classes, palette)
    cells.colours  # (h * w, 3) uint8, row-major
    cells.tips[0]  # "cell (0, 0) on pixel (0, 0) · background · w 0.41 / 0.33 / 0.26"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import diagnostics as diag
from .modeling.geometry import scaled_size
from .palette import SCALE_COLOURS
from .predictor import Prediction

# What a cell can be coloured by: the image under it, the fused label, the scale with the largest weight.
COLOURINGS = ("input", "labels", "dominant")


@dataclass(frozen=True)
class GridCells:
    """Every cell of an (h, w) grid, in row-major order (N = h * w).

    rows, cols: (N,) int64, the cell's row and column on the grid.
    colours: (N, 3) uint8 RGB.
    tips: N hover texts: the cell, the pixel it sits on, its fused class, its weights wˢ.
    """

    rows: np.ndarray
    cols: np.ndarray
    colours: np.ndarray
    tips: tuple[str, ...]

    @property
    def hex_colours(self) -> list[str]:
        """The colours as "#rrggbb" strings (what a chart's colour channel takes)."""
        return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in self.colours.tolist()]


def grid_stride(prediction: Prediction, network_stride: int | None) -> int | None:
    """Input pixels per cell of the prediction's grid, at its largest scale; None when not known.

    ``network_stride`` is the model's (:func:`segscale.trunks.score_map_stride_of`). A library
    network whose input had to be padded gives its score maps at the input's own size
    (:mod:`segscale.modeling.library_networks`): there the grid is the largest scale's input, stride 1.
    """
    largest_input = scaled_size(tuple(prediction.labels.shape), max(prediction.scales))
    if tuple(prediction.grid) == tuple(largest_input):
        return 1
    return network_stride


def stride_words(stride: int | None) -> str:
    """How the pages name a grid's stride before the word "grid": "stride-8 ", or nothing when not known."""
    return f"stride-{stride} " if stride else ""


def offered_colourings(prediction: Prediction) -> tuple[str, ...]:
    """The colourings a prediction can show: "dominant" only with weights wˢ (max pooling has none)."""
    return tuple(c for c in COLOURINGS if c != "dominant" or prediction.attention is not None)


def cell_colours(
    prediction: Prediction,
    colouring: str,
    palette: Sequence[Sequence[int]],
    scale_colours: Sequence[Sequence[int]] = SCALE_COLOURS,
) -> np.ndarray:
    """(h, w, 3) uint8: each grid cell's colour.

    "labels": the palette colour of the class that wins the prediction's own fusion g at the
    cell; "dominant": the colour of the scale with the largest weight wˢ (scale colours repeat
    past their count), or the input's colours when the prediction has no weights; "input":
    the mean colour of the image pixels nearest to the cell.
    """
    if colouring not in COLOURINGS:
        raise ValueError(f"unknown grid colouring {colouring!r}; valid: {', '.join(COLOURINGS)}")
    if colouring == "labels":
        return np.asarray(palette, dtype=np.uint8)[prediction.fused.argmax(axis=0)]
    if colouring == "dominant" and prediction.attention is not None:
        colours = np.asarray(scale_colours, dtype=np.uint8)
        return colours[prediction.attention.argmax(axis=0) % len(colours)]
    return diag.cell_mean_colours(prediction.image, prediction.grid, getattr(prediction, "align_corners", True))


def cell_tips(prediction: Prediction, classes: Sequence[str]) -> list[str]:
    """One hover text per cell, row-major: "cell (i, j) on pixel (y, x) · class[ · w 0.50 / 0.30 / 0.20]".

    The pixel is the cell's centre in the image (rounded), the class the winner of the
    prediction's fusion g at the cell, the weights wˢ in the order of ``prediction.scales``.
    """
    grid_h, grid_w = prediction.grid
    size = tuple(prediction.labels.shape)
    align_corners = getattr(prediction, "align_corners", True)
    centre_y = [diag.cell_center((i, 0), size, prediction.grid, align_corners)[0] for i in range(grid_h)]
    centre_x = [diag.cell_center((0, j), size, prediction.grid, align_corners)[1] for j in range(grid_w)]
    winners = prediction.fused.argmax(axis=0).ravel()
    tips = [
        f"cell ({k // grid_w}, {k % grid_w}) on pixel ({centre_y[k // grid_w]:.0f}, "
        f"{centre_x[k % grid_w]:.0f}) · {classes[winner]}"
        for k, winner in enumerate(winners.tolist())
    ]
    if prediction.attention is not None:
        weights = prediction.attention.reshape(len(prediction.scales), -1)
        tips = [f"{tip} · w " + " / ".join(f"{w:.2f}" for w in weights[:, k]) for k, tip in enumerate(tips)]
    return tips


def grid_cells(
    prediction: Prediction, colouring: str, classes: Sequence[str], palette: Sequence[Sequence[int]]
) -> GridCells:
    """Every cell of the prediction's grid with its colour (see :func:`cell_colours`) and tip."""
    grid_h, grid_w = prediction.grid
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    colours = cell_colours(prediction, colouring, palette).reshape(-1, 3)
    return GridCells(rows.ravel(), cols.ravel(), colours, tuple(cell_tips(prediction, classes)))


def picked_cell(selection, grid: tuple[int, int]) -> tuple[int, int] | None:
    """The cell a click chose, from a chart's selection state; None when there is no usable click.

    ``selection`` is what Streamlit keeps for a chart with a point selection named "cell" over
    the fields cell_row and cell_col: ``{"selection": {"cell": [{"cell_row": i, "cell_col": j}]}}``.
    Anything else (no click yet, a cleared selection, a cell off the grid) gives None.
    """
    points = (selection or {}).get("selection", {}).get("cell")
    if not points or not isinstance(points, list):
        return None
    try:
        cell = (int(points[0]["cell_row"]), int(points[0]["cell_col"]))
    except (KeyError, TypeError, ValueError):
        return None
    if 0 <= cell[0] < grid[0] and 0 <= cell[1] < grid[1]:
        return cell
    return None
