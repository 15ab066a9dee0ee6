"""The stride-8 grid under an image: which cell a pixel belongs to, where a cell sits, what it looks like.

The model fuses on the grid of the largest scale and upsamples only the fused map g to the
image (bilinear, corners aligned; :mod:`segscale.modeling.geometry`). Cell k of an h-cell
axis sits on image coordinate k (H - 1) / (h - 1). The pixel inspector's clickable grid and
the pixel breakdown (:mod:`.pixel`) both stand on these functions.
"""

from __future__ import annotations

import math

import numpy as np


def _aligned_position(index: float, source: int, target: int) -> float:
    """Where sample ``index`` of a ``source``-long axis lands on a ``target``-long one, corners aligned."""
    if source == 1:
        return 0.0
    return index * (target - 1) / (source - 1)


def nearest_cell(row: int, col: int, image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The grid cell nearest to image pixel (row, col).

    Cell k of an h-cell axis sits on image coordinate k (H - 1) / (h - 1) (corners aligned,
    :mod:`segscale.modeling.geometry`), so pixel r is nearest to cell round(r (h - 1) / (H - 1));
    halves round up.
    """
    return tuple(  # type: ignore[return-value]
        min(cells - 1, int(math.floor(_aligned_position(p, pixels, cells) + 0.5)))
        for p, pixels, cells in zip((row, col), image_size, grid)
    )


def cell_center(cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[float, float]:
    """(y, x) image coordinates of a grid cell's centre (the inverse map of :func:`nearest_cell`)."""
    return tuple(_aligned_position(k, cells, pixels) for k, pixels, cells in zip(cell, image_size, grid))  # type: ignore[return-value]


def nearest_cells(pixels: int, cells: int) -> np.ndarray:
    """(pixels,) the nearest cell of every pixel along one axis (the vector form of :func:`nearest_cell`)."""
    if cells == 1 or pixels == 1:
        return np.zeros(pixels, np.int64)
    positions = np.arange(pixels, dtype=np.float64) * (cells - 1) / (pixels - 1)
    return np.minimum(cells - 1, np.floor(positions + 0.5)).astype(np.int64)


def cell_footprint(
    cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), inclusive: the image pixels whose nearest grid cell is ``cell``.

    About ``stride`` pixels a side (8 for DeepLab-LargeFOV); half that at the image border,
    where the first and last cells sit on the first and last pixels (corners aligned).
    """
    bounds = []
    for k, pixels, cells in zip(cell, image_size, grid):
        if not 0 <= k < cells:
            raise ValueError(f"cell {tuple(cell)} is outside the {grid[0]} x {grid[1]} grid")
        members = np.flatnonzero(nearest_cells(pixels, cells) == k)
        if members.size:
            bounds.append((int(members[0]), int(members[-1])))
        else:  # a grid finer than the image (not DeepLab's): the pixel the cell sits on
            centre = min(pixels - 1, int(math.floor(_aligned_position(k, cells, pixels) + 0.5)))
            bounds.append((centre, centre))
    (top, bottom), (left, right) = bounds
    return top, left, bottom, right


def pixel_at_cell(cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The image pixel a grid cell sits on (its centre, rounded): what clicking a cell picks."""
    y, x = cell_center(cell, image_size, grid)
    return min(image_size[0] - 1, int(math.floor(y + 0.5))), min(image_size[1] - 1, int(math.floor(x + 0.5)))


def cell_mean_colours(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8: each grid cell coloured by the mean of the pixels nearest to it.

    The image as the stride-8 grid sees it, one colour per cell: the picture behind the
    pixel inspector's clickable grid.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    rows, cols = nearest_cells(height, grid[0]), nearest_cells(width, grid[1])
    index = (rows[:, None] * grid[1] + cols[None, :]).ravel()
    counts = np.bincount(index, minlength=grid[0] * grid[1]).astype(np.float64)
    channels = [
        np.bincount(index, weights=image[..., k].ravel().astype(np.float64), minlength=grid[0] * grid[1])
        for k in range(3)
    ]
    means = np.stack(channels, axis=-1) / np.maximum(counts, 1)[:, None]
    return np.clip(means + 0.5, 0, 255).astype(np.uint8).reshape(grid[0], grid[1], 3)


def salient_pixel(prediction) -> tuple[int, int]:
    """A pixel worth inspecting first: the cell where the most frequent predicted object class scores highest.

    "Object class" is any class but index 0 (the background of every segscale dataset);
    when only the background is predicted, the cell where class 1 comes closest to winning.
    Returns the pixel that cell sits on, as (row, col) of the predicted image.
    """
    fused = np.asarray(prediction.fused, dtype=np.float64)  # (C, h, w)
    num_classes = fused.shape[0]
    if num_classes < 2:
        chosen_map = fused[0]
    else:
        counts = np.bincount(np.asarray(prediction.labels).ravel().astype(np.int64), minlength=num_classes)[
            :num_classes
        ]
        chosen = int(counts[1:].argmax()) + 1
        others = np.delete(fused, chosen, axis=0).max(axis=0)
        chosen_map = fused[chosen] - others  # the margin by which it wins (or loses)
    cell = np.unravel_index(int(chosen_map.argmax()), chosen_map.shape)
    return pixel_at_cell((int(cell[0]), int(cell[1])), tuple(prediction.labels.shape), tuple(fused.shape[-2:]))


def bilinear_at(
    maps: np.ndarray, row: int, col: int, image_size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """maps (C, h, w) sampled at image pixel (row, col) as the upsampling
    does -> (C,), and the cells used (top, left, bottom, right)."""
    height, width = maps.shape[-2:]
    y = _aligned_position(row, image_size[0], height)
    x = _aligned_position(col, image_size[1], width)
    top, left = min(int(math.floor(y)), height - 1), min(int(math.floor(x)), width - 1)
    bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
    dy, dx = y - top, x - left
    values = maps.astype(np.float64)
    upper = values[:, top, left] * (1 - dx) + values[:, top, right] * dx
    lower = values[:, bottom, left] * (1 - dx) + values[:, bottom, right] * dx
    return upper * (1 - dy) + lower * dy, (top, left, bottom, right)
