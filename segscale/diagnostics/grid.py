"""The score-map grid under an image: which cell a pixel belongs to, where a cell sits, what it looks like.

The model fuses on the grid of the largest scale (stride 8 for DeepLab-LargeFOV, the
network's own stride for a torchvision or library network) and upsamples only the fused map
g to the image, bilinearly in the trunk's convention (:mod:`segscale.trunks`, carried by a
prediction as ``align_corners``). Every function here maps positions as that upsample does:

* corners aligned (``align_corners=True``): cell k of an h-cell axis sits on image coordinate
  k (H - 1) / (h - 1);
* ``align_corners=False``: cell k covers pixels [k H / h, (k + 1) H / h) and sits on its
  centre, image coordinate (k + 0.5) H / h - 0.5; image coordinates before the first cell's
  centre read the first cell (PyTorch clamps them so).

The pixel inspector's clickable grid and the pixel breakdown (:mod:`.pixel`) both stand on
these functions.
"""

from __future__ import annotations

import math

import numpy as np


def _aligned_position(index: float, source: int, target: int, align_corners: bool = True) -> float:
    """Where sample ``index`` of a ``source``-long axis lands on a ``target``-long one, as bilinear resizing maps it.

    The same map both ways (cell to pixel, pixel to cell); see the module docstring. Not clamped.
    """
    if not align_corners:
        return (index + 0.5) * target / source - 0.5
    if source == 1:
        return 0.0
    return index * (target - 1) / (source - 1)


def nearest_cell(
    row: int, col: int, image_size: tuple[int, int], grid: tuple[int, int], align_corners: bool = True
) -> tuple[int, int]:
    """The grid cell nearest to image pixel (row, col).

    Corners aligned, cell k of an h-cell axis sits on image coordinate k (H - 1) / (h - 1)
    (:mod:`segscale.modeling.geometry`), so pixel r is nearest to cell round(r (h - 1) / (H - 1));
    with ``align_corners=False`` pixel r is in cell floor((r + 0.5) h / H), the one whose
    centre is nearest. Halves round up.
    """
    return tuple(  # type: ignore[return-value]
        min(cells - 1, max(0, int(math.floor(_aligned_position(p, pixels, cells, align_corners) + 0.5))))
        for p, pixels, cells in zip((row, col), image_size, grid)
    )


def cell_center(
    cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int], align_corners: bool = True
) -> tuple[float, float]:
    """(y, x) image coordinates of a grid cell's centre (the inverse map of :func:`nearest_cell`)."""
    return tuple(  # type: ignore[return-value]
        _aligned_position(k, cells, pixels, align_corners) for k, pixels, cells in zip(cell, image_size, grid)
    )


def nearest_cells(pixels: int, cells: int, align_corners: bool = True) -> np.ndarray:
    """(pixels,) the nearest cell of every pixel along one axis (the vector form of :func:`nearest_cell`)."""
    if align_corners and (cells == 1 or pixels == 1):
        return np.zeros(pixels, np.int64)
    index = np.arange(pixels, dtype=np.float64)
    if align_corners:
        positions = index * (cells - 1) / (pixels - 1)
    else:
        positions = (index + 0.5) * cells / pixels - 0.5
    return np.clip(np.floor(positions + 0.5), 0, cells - 1).astype(np.int64)


def cell_footprint(
    cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int], align_corners: bool = True
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), inclusive: the image pixels whose nearest grid cell is ``cell``.

    About ``stride`` pixels a side (8 for DeepLab-LargeFOV); corners aligned, half that at the
    image border, where the first and last cells sit on the first and last pixels.
    """
    bounds = []
    for k, pixels, cells in zip(cell, image_size, grid):
        if not 0 <= k < cells:
            raise ValueError(f"cell {tuple(cell)} is outside the {grid[0]} x {grid[1]} grid")
        members = np.flatnonzero(nearest_cells(pixels, cells, align_corners) == k)
        if members.size:
            bounds.append((int(members[0]), int(members[-1])))
        else:  # a grid finer than the image (not DeepLab's): the pixel the cell sits on
            position = _aligned_position(k, cells, pixels, align_corners)
            centre = min(pixels - 1, max(0, int(math.floor(position + 0.5))))
            bounds.append((centre, centre))
    (top, bottom), (left, right) = bounds
    return top, left, bottom, right


def pixel_at_cell(
    cell: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int], align_corners: bool = True
) -> tuple[int, int]:
    """The image pixel a grid cell sits on (its centre, rounded; half up): what clicking a cell picks."""
    y, x = cell_center(cell, image_size, grid, align_corners)
    return tuple(  # type: ignore[return-value]
        min(pixels - 1, max(0, int(math.floor(position + 0.5)))) for position, pixels in zip((y, x), image_size)
    )


def cell_mean_colours(image: np.ndarray, grid: tuple[int, int], align_corners: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8: each grid cell coloured by the mean of the pixels nearest to it.

    The image as the score-map grid sees it, one colour per cell: the picture behind the
    pixel inspector's clickable grid.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    rows = nearest_cells(height, grid[0], align_corners)
    cols = nearest_cells(width, grid[1], align_corners)
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
    align_corners = getattr(prediction, "align_corners", True)
    return pixel_at_cell(
        (int(cell[0]), int(cell[1])), tuple(prediction.labels.shape), tuple(fused.shape[-2:]), align_corners
    )


def bilinear_at(
    maps: np.ndarray, row: int, col: int, image_size: tuple[int, int], align_corners: bool = True
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """maps (C, h, w) sampled at image pixel (row, col) as the upsampling
    does -> (C,), and the cells used (top, left, bottom, right)."""
    height, width = maps.shape[-2:]
    # PyTorch clamps a position before the first cell's centre (align_corners=False) to that centre.
    y = max(0.0, _aligned_position(row, image_size[0], height, align_corners))
    x = max(0.0, _aligned_position(col, image_size[1], width, align_corners))
    top, left = min(int(math.floor(y)), height - 1), min(int(math.floor(x)), width - 1)
    bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
    dy, dx = y - top, x - left
    values = maps.astype(np.float64)
    upper = values[:, top, left] * (1 - dx) + values[:, top, right] * dx
    lower = values[:, bottom, left] * (1 - dx) + values[:, bottom, right] * dx
    return upper * (1 - dy) + lower * dy, (top, left, bottom, right)
