"""Sliding-window inference against the whole image (segscale/sliding_window.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segscale.data.scaleshapes import generate_sample
from segscale.modeling import build_model
from segscale.predictor import Predictor
from segscale.sliding_window import ALIGN, predict_tiled, tile_spans

from .conftest import tiny_config, tiny_metadata


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    config = tiny_config(scales=(1.0, 0.5))
    return Predictor(build_model(config), tiny_metadata(config))


@pytest.fixture(scope="module")
def wide_image():
    """128 x 1280 pixels of ScaleShapes objects: tiles only along the width."""
    sample = generate_sample("val", 1).image
    return np.ascontiguousarray(np.tile(sample, (1, 4, 1))[:128, :1280])


@pytest.mark.parametrize("length", [100, 256, 700, 1280, 2048])
@pytest.mark.parametrize("tile, overlap", [(256, 128), (512, 0), (1024, 512)])
def test_tiles_cover_the_side_and_their_cells_partition_the_grid(length, tile, overlap):
    spans = tile_spans(length, tile, overlap, largest_scale=1.0)
    assert spans[0].start == 0 and spans[-1].start + spans[-1].size == length
    assert all(s.start % ALIGN == 0 and s.size <= tile for s in spans)
    assert all(b.start <= a.start + a.size for a, b in zip(spans, spans[1:])), (
        "neighbouring tiles must touch or overlap"
    )
    cells = [(s.cell_lo, s.cell_hi) for s in spans]
    assert cells[0][0] == 0 and cells[-1][1] == -(-length // 8)
    assert all(a[1] == b[0] for a, b in zip(cells, cells[1:])), "every grid cell belongs to exactly one tile"


def test_bad_tile_sizes_are_refused_with_the_rule():
    with pytest.raises(ValueError, match="multiple of 64"):
        tile_spans(1000, 500, 128, 1.0)
    with pytest.raises(ValueError, match="below the tile size"):
        tile_spans(1000, 512, 512, 1.0)


def test_one_tile_covering_the_image_is_the_whole_image(predictor, wide_image):
    image = np.ascontiguousarray(wide_image[:, :300])
    whole, whole_labels = predictor.run_pixels(torch.from_numpy(image)[None], (1.0, 0.5), "attention")
    tiled, tiled_labels = predict_tiled(predictor, image, (1.0, 0.5), "attention", tile=512, overlap=128)
    torch.testing.assert_close(tiled.fused, whole.fused)
    torch.testing.assert_close(tiled.attention, whole.attention)
    assert torch.equal(tiled_labels, whole_labels)


def test_at_one_scale_labels_away_from_tile_borders_equal_the_whole_image(predictor, wide_image):
    # Tiles of 1024 with an overlap of 512: every pixel lies at least 256 px from the border of the
    # tile that predicts it, beyond the tiny LargeFOV's receptive field at scale 1, so nothing differs.
    whole, whole_labels = predictor.run_pixels(torch.from_numpy(wide_image)[None], (1.0,), "average")
    tiled, tiled_labels = predict_tiled(predictor, wide_image, (1.0,), "average", tile=1024, overlap=512)
    assert len(tile_spans(wide_image.shape[1], 1024, 512, 1.0)) >= 2, "the test must cross a tile border"
    torch.testing.assert_close(tiled.fused, whole.fused, atol=1e-4, rtol=1e-4)
    assert torch.equal(tiled_labels, whole_labels)


def test_across_scales_labels_agree_and_small_tiles_agree_less(predictor, wide_image):
    # At scale 0.5 a tile is resampled on its own (corners aligned to the tile, not the image),
    # a sub-pixel difference: labels agree almost everywhere rather than exactly.
    _, whole_labels = predictor.run_pixels(torch.from_numpy(wide_image)[None], (1.0, 0.5), "attention")
    _, large_tiles = predict_tiled(predictor, wide_image, (1.0, 0.5), "attention", tile=1024, overlap=768)
    _, small_tiles = predict_tiled(predictor, wide_image, (1.0, 0.5), "attention", tile=256, overlap=128)
    large_agreement = (large_tiles == whole_labels).float().mean().item()
    assert large_agreement >= 0.995
    assert (small_tiles == whole_labels).float().mean().item() < large_agreement  # borders inside the receptive field
