"""Labels at image resolution from a fused map on the score-map grid, without upsampling every class at
every pixel: the argmax over classes of the bilinear upsampling, worked out only between grid cells
whose winners differ.

The views of what each scale decides (:mod:`.ablation`) need S + 1 such label maps per prediction;
each is a few hundred microseconds here where the full upsampling costs milliseconds. Positions
follow the model's ``align_corners`` as :mod:`.grid` describes.
"""

from __future__ import annotations

import numpy as np

from ..label_maps import label_dtype


def _axis(source: int, target: int, align_corners: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``target`` samples, the grid cell before it and its weight towards the next one, as
    :func:`segscale.modeling.geometry.resize_bilinear` (``F.interpolate``) samples with that convention."""
    if source == 1:
        return np.zeros(target, np.int64), np.zeros(target)
    if align_corners:
        if target == 1:
            return np.zeros(target, np.int64), np.zeros(target)
        position = np.arange(target) * ((source - 1) / (target - 1))
        before = np.minimum(np.floor(position).astype(np.int64), source - 2)
        return before, position - before
    # Half-pixel centres, clamped at the first cell as torch does; past the last cell the next one is the
    # same cell, so the weight there does not matter.
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
    before = np.minimum(np.floor(position).astype(np.int64), source - 1)
    return before, position - before


def argmax_over_rows(values: np.ndarray) -> np.ndarray:
    """(C, N) -> (N,) int64, ``values.argmax(axis=0)`` (the first row on a tie): one comparison per row, several
    times faster than numpy's argmax along a short leading axis."""
    best, index = values[0].copy(), np.zeros(values.shape[1], np.int64)
    for k in range(1, values.shape[0]):
        better = values[k] > best
        index[better] = k
        np.maximum(best, values[k], out=best)
    return index


def _enumerate_runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``counts[k]`` items one after another -> for each item, its run k and its place in the run."""
    run = np.repeat(np.arange(counts.size), counts)
    return run, np.arange(run.size) - np.repeat(np.cumsum(counts) - counts, counts)


class GridToImage:
    """How a (h, w) grid is upsampled bilinearly to (H, W) pixels with the model's ``align_corners``, worked out
    once for all the fused maps of one prediction.

    Bilinear upsampling makes each pixel a convex combination of the 4 cells around it. Where those 4
    cells share their winning class, that class wins at every pixel between them (its margin over every
    other class is non-negative at the 4 corners, so in any convex combination; ties go to the lower
    index at the corners and in between). Only pixels between cells that disagree are interpolated,
    in float64. Most of an image lies inside regions of one label, so this is several times cheaper
    than the full upsampling; it can differ from it only at exact float ties.
    """

    def __init__(self, grid, size, align_corners: bool = True) -> None:
        height, width = (int(v) for v in grid)
        self.size = tuple(int(v) for v in size)
        self.width = width
        self.rows, self.dy = _axis(height, self.size[0], align_corners)
        self.cols, self.dx = _axis(width, self.size[1], align_corners)
        self.below = np.minimum(self.rows + 1, height - 1)
        self.right = np.minimum(self.cols + 1, width - 1)
        self.next_row = np.minimum(np.arange(height) + 1, height - 1)
        self.next_col = np.minimum(np.arange(width) + 1, width - 1)
        # The cell before a pixel never decreases along an axis, so the pixels between cell i and the next
        # form one run: they are found from the cells alone, without a pass over the whole image.
        self.row_start, self.row_count = self._runs(self.rows, height)
        self.col_start, self.col_count = self._runs(self.cols, width)

    @staticmethod
    def _runs(before: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
        start = np.searchsorted(before, np.arange(cells), side="left")
        return start, np.searchsorted(before, np.arange(cells), side="right") - start

    def _pixels_between(self, cell_rows: np.ndarray, cell_cols: np.ndarray):
        """Every pixel whose cell before it is one of the given K cells, cell by cell, row by row: which cell
        (N,), its row and its column within that cell's run of pixels (N,), and its index in the flattened
        image (N,)."""
        heights, widths = self.row_count[cell_rows], self.col_count[cell_cols]
        cell, offset = _enumerate_runs(heights * widths)
        across = widths[cell]
        down, along = offset // across, offset % across
        flat = (self.row_start[cell_rows][cell] + down) * self.size[1] + self.col_start[cell_cols][cell] + along
        return cell, down, along, flat

    def winners(self, fused) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1, C, h, w) -> the scores (C, h, w) float32, each cell's winning class (h, w) and whether the 4
        cells from (i, j) to (i + 1, j + 1) share it (h, w) bool: all on the grid, 64 times smaller than the
        image; the winners on one byte per cell where the classes fit in one."""
        # float32 until the interpolation: the conversion to float64 is exact and keeps every order, and numpy
        # promotes the gathered values to float64 when they meet the float64 weights below.
        scores = fused[0].float().numpy()
        winner = argmax_over_rows(scores.reshape(scores.shape[0], -1)).reshape(scores.shape[1:])
        small = winner.astype(label_dtype(scores.shape[0]), copy=False)
        down = small[self.next_row]
        uniform = (small == down) & (small == small[:, self.next_col]) & (small == down[:, self.next_col])
        return scores, small, uniform

    def interpolated(self, scores: np.ndarray, cell_rows: np.ndarray, cell_cols: np.ndarray):
        """Every pixel between the given cells (see :meth:`_pixels_between`): its index in the flattened
        image and its label, the argmax over classes of the bilinear mix of its 4 cells.

        Mixed one axis at a time, as torch does: along the two grid rows once per pixel column, then down
        once per pixel, in float64 (the scores' conversion to float64 is exact and keeps every order)."""
        classes = scores.shape[0]
        flat_scores = scores.reshape(classes, -1)  # (C, h w)
        widths = self.col_count[cell_cols]
        # Along the rows: one mix per cell and pixel column after it.
        column_cell, along = _enumerate_runs(widths)
        column = self.col_start[cell_cols][column_cell] + along
        top, left = cell_rows[column_cell] * self.width, cell_cols[column_cell]
        bottom, right, wx = self.next_row[cell_rows][column_cell] * self.width, self.next_col[left], self.dx[column]
        upper = np.take(flat_scores, top + left, axis=1) * (1 - wx) + np.take(flat_scores, top + right, axis=1) * wx
        lower = np.take(flat_scores, bottom + left, axis=1) * (1 - wx)
        lower += np.take(flat_scores, bottom + right, axis=1) * wx
        # Down: one mix per pixel of the two rows' mixes in its column.
        cell, down, along, flat = self._pixels_between(cell_rows, cell_cols)
        pair = (np.cumsum(widths) - widths)[cell] + along
        wy = self.dy[self.row_start[cell_rows][cell] + down]
        values = np.take(upper, pair, axis=1) * (1 - wy)
        values += np.take(lower, pair, axis=1) * wy  # (C, N)
        return flat, argmax_over_rows(values)

    def labels(self, fused, winners=None) -> np.ndarray:
        """(1, C, h, w) -> (H, W) labels (uint8 where the classes fit in a byte, else int64): the argmax over
        classes of the map upsampled bilinearly, like a prediction's labels, without upsampling every class
        at every pixel. ``winners``: :meth:`winners` of ``fused``, when the caller has them already."""
        scores, winner, uniform = self.winners(fused) if winners is None else winners
        out = np.empty(self.size, winner.dtype)
        # Each cell's winner over the pixels after it: a run per cell along each axis.
        out[...] = winner.repeat(self.row_count, axis=0).repeat(self.col_count, axis=1)
        flat, interpolated = self.interpolated(scores, *np.nonzero(~uniform))
        out.reshape(-1)[flat] = interpolated
        return out

    def labels_beside(self, fused, reference, labels: np.ndarray, out: np.ndarray, changed: np.ndarray) -> None:
        """The labels of ``fused`` into ``out`` and where they differ from ``labels`` into ``changed`` (all zero
        on entry), given ``labels`` = :meth:`labels` of another map whose :meth:`winners` are ``reference``.

        Between 4 cells that are uniform in both maps with the same winner, the two labels are the same, so
        only the pixels between the other cells are worked out: by this map's winner where its 4 cells
        share one, by interpolation elsewhere; the rest of ``out`` is a copy of ``labels``. Leaving one
        scale out changes the fused map little, so the copy is most of the image."""
        _, reference_winner, reference_uniform = reference
        scores, winner, uniform = self.winners(fused)
        out[...] = labels
        flat_out, flat_changed, flat_labels = out.reshape(-1), changed.reshape(-1), labels.reshape(-1)
        new_winner = np.nonzero(uniform & ~(reference_uniform & (winner == reference_winner)))
        cell, _, _, taking_winner = self._pixels_between(*new_winner)
        for flat, new in (
            (taking_winner, winner[new_winner][cell]),
            self.interpolated(scores, *np.nonzero(~uniform)),
        ):
            flat_out[flat] = new
            flat_changed[flat] = new != flat_labels[flat]


def labels_at_image(fused, size, align_corners: bool = True) -> np.ndarray:
    """(1, C, h, w) -> (H, W): one fused map's labels at image resolution (see :class:`GridToImage`)."""
    return GridToImage(fused.shape[-2:], size, align_corners).labels(fused)
