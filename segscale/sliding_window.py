"""Sliding-window inference: a large image predicted tile by tile, in bounded memory.

Whole-image inference holds every scale's activations for the full image at once (at scale 1
a 2048x1024 image gives 256x128 cells of the trunk's widest layers, and the first layers work
at full resolution). Tiled inference runs the same multi-scale model on overlapping tiles of
``tile`` x ``tile`` pixels, so the peak memory follows the tile, not the image; see
docs/PERFORMANCE.md for the measured peak at 2048x1024 and 5 scales.

How the tiles are fused: each tile gives its maps on the stride-8 grid of the largest scale,
per scale (f^s and h^s) and fused (g). The maps are stitched on the whole image's grid, each
cell taken from the tile in which it lies farthest from a border (the overlap is split in
its middle), every scale stitched separately; the labels are then formed exactly as for a
whole image: one bilinear upsample of the stitched g and the argmax.

Tile origins are multiples of :data:`ALIGN` pixels, so each tile's grid cells fall on the
whole image's cells (k at pixel 8k / s_max) for scales that are multiples of 1/8. The last
tile in each direction is shifted back to end at the image's border (so it is at most
``ALIGN`` pixels smaller than the others).

Where tiled labels differ from whole-image ones: within roughly the receptive field of the
coarsest scale of a tile border (zero padding at a tile edge replaces real context). Away
from tile borders they match (tests/test_sliding_window.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .inference import labels_from_fused
from .modeling.geometry import grid_size, scaled_size
from .modeling.multiscale import MultiScaleOutput

ALIGN = 64  # pixels; 64 x s / 8 is a whole number of grid cells for every s in multiples of 1/8
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 128


@dataclass(frozen=True)
class Span:
    """One tile along one axis: pixels [start, start + size), owning grid cells [cell_lo, cell_hi) of the image."""

    start: int
    size: int
    cell_lo: int
    cell_hi: int


def tile_spans(length: int, tile: int, overlap: int, largest_scale: float) -> list[Span]:
    """The tiles along one side of ``length`` pixels, and the grid cells each one fills.

    Args:
        length: the image side in pixels.
        tile: tile side in pixels (a multiple of :data:`ALIGN`, at least 2 x ALIGN).
        overlap: pixels shared by neighbouring tiles (a multiple of ALIGN, below ``tile``).
        largest_scale: the largest scale of the set, which fixes the grid (cell k at 8k / s pixels).
    """
    if tile % ALIGN or tile < 2 * ALIGN:
        raise ValueError(f"--tile must be a multiple of {ALIGN} and at least {2 * ALIGN}, got {tile}")
    if overlap % ALIGN or not 0 <= overlap < tile:
        raise ValueError(f"--tile-overlap must be a multiple of {ALIGN} below the tile size {tile}, got {overlap}")
    cells = grid_size(scaled_size((length, length), largest_scale))[0]
    if length <= tile:
        return [Span(0, length, 0, cells)]
    last = math.ceil((length - tile) / ALIGN) * ALIGN  # the last tile ends at the border
    step = tile - overlap
    starts = [start for start in range(0, last, step)] + [last]
    sizes = [min(tile, length - start) for start in starts]
    # Each neighbouring pair splits its overlap in the middle; a cell belongs to the tile whose
    # pixel range owns the cell's pixel 8k / s.
    bounds = [0] + [(starts[i + 1] + starts[i] + sizes[i]) // 2 for i in range(len(starts) - 1)] + [length]

    def first_cell(pixel: int) -> int:
        return min(cells, math.ceil(pixel * largest_scale / 8))

    return [
        Span(start, size, first_cell(lo), first_cell(hi))
        for start, size, lo, hi in zip(starts, sizes, bounds, bounds[1:])
    ]


def predict_tiled(
    predictor, rgb: np.ndarray, scales, merge: str, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP
):
    """One (H, W, 3) uint8 image -> (MultiScaleOutput with B = 1, labels (1, H, W)), tile by tile.

    ``predictor`` is a :class:`~segscale.predictor.Predictor`; ``scales`` and ``merge`` must have
    passed its ``check_request``. Tiles run one at a time through ``Predictor.run_pixels``, so
    the model's working memory is that of one tile. ``native_score_maps`` is empty (each
    scale's own grid is a per-tile notion).
    """
    from .config import LIBRARY_TRUNKS

    trunk = predictor.metadata.model.trunk.name
    if trunk in LIBRARY_TRUNKS:  # tiles are cut and stitched on a stride-8 grid; theirs is the network's own
        raise ValueError(
            f"tiling cuts a stride-8 score grid; this {trunk} network's score maps are on its own grid "
            "(at the input's size where it pads the input): "
            "predict without --tile (give a smaller --max-side if memory is short)"
        )
    height, width = rgb.shape[:2]
    largest = max(scales)
    grid = grid_size(scaled_size((height, width), largest))
    rows = tile_spans(height, tile, overlap, largest)
    columns = tile_spans(width, tile, overlap, largest)
    stitched: dict[str, torch.Tensor | None] = {}
    pixels = torch.from_numpy(np.ascontiguousarray(rgb))
    for row in rows:
        for column in columns:
            piece = pixels[row.start : row.start + row.size, column.start : column.start + column.size].unsqueeze(0)
            output, _ = predictor.run_pixels(piece.contiguous(), scales, merge)
            row_offset = round(row.start * largest / 8)
            column_offset = round(column.start * largest / 8)
            for name in ("score_maps", "attention_logits", "attention", "fused"):
                value = getattr(output, name)
                if value is None:
                    stitched[name] = None
                    continue
                if name not in stitched:
                    stitched[name] = value.new_zeros((*value.shape[:-2], *grid), dtype=torch.float32)
                target = stitched[name]
                source = value[
                    ...,
                    row.cell_lo - row_offset : row.cell_hi - row_offset,
                    column.cell_lo - column_offset : column.cell_hi - column_offset,
                ]
                target[..., row.cell_lo : row.cell_hi, column.cell_lo : column.cell_hi] = source.float()
    fused = stitched["fused"]
    assert fused is not None
    output = MultiScaleOutput(
        scales=tuple(scales),
        merge=merge,
        native_score_maps=(),
        score_maps=stitched["score_maps"],  # type: ignore[arg-type]
        attention_logits=stitched["attention_logits"],
        attention=stitched["attention"],
        fused=fused,
    )
    return output, labels_from_fused(fused, (height, width), predictor.align_corners)
