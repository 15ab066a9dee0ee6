"""Objects of a ground-truth mask: the connected regions of each class (segscale.data.regions).

The masks are drawn from rectangles, so that every region, its class and its extent are known.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from segscale.data.regions import mask_regions
from tests.conftest import TINY_CLASSES

SIZE = (48, 64)  # (H, W) of every generated image


def rectangle_extent(height: int, width: int) -> float:
    """A rectangle's extent as the regions measure it: the corner pixels' centres lie on the disc's edge."""
    return 2 * math.hypot((height - 1) / 2, (width - 1) / 2) + 1


def blocks_mask(first: int, second: int, fill: int = 0) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """A mask of ``fill`` with two blocks of class ``first`` (apart), one of ``second``, a speck of ``second``
    (under 12 px across, so no object) and an ignored border; and its objects, (class, extent) in raster order."""
    mask = np.full(SIZE, fill)
    mask[2:14, 2:22] = first  # 12 x 20
    mask[2:18, 40:56] = second  # 16 x 16
    mask[24:44, 4:14] = first  # 20 x 10, apart from the first block
    mask[30:32, 30:32] = second  # a 2 x 2 speck
    mask[:, -1] = 255
    return mask, [
        (first, rectangle_extent(12, 20)),
        (second, rectangle_extent(16, 16)),
        (first, rectangle_extent(20, 10)),
    ]


def test_regions_are_the_connected_pieces_of_each_class():
    mask, expected = blocks_mask(1, 2)
    mask[14, 22] = 1  # touches the first block at a corner only: 8-connected, so still one region
    regions, instances = mask_regions(mask, TINY_CLASSES)
    assert [r.class_index for r in regions] == [c for c, _ in expected]
    assert [r.instance_id for r in regions] == [1, 2, 3]
    assert regions[0].visible_pixels == 12 * 20 + 1
    assert regions[1].extent == pytest.approx(expected[1][1]) and regions[1].center == (47.5, 9.5)
    assert regions[2].extent == pytest.approx(expected[2][1])
    assert (instances[mask == 0] == 0).all() and (instances[mask == 255] == 0).all()  # background, ignored
    assert (instances[30:32, 30:32] == 0).all()  # the speck
    assert np.array_equal(instances[regions[1].window] == 2, mask[regions[1].window] == 2)
    with pytest.raises(ValueError, match="holds class 7, but there are 3 classes"):
        mask_regions(np.full((4, 4), 7), TINY_CLASSES)


def test_regions_agree_with_scipy_on_random_masks():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(5)
    names = ("background", "a", "b", "c")
    for _ in range(20):
        label = rng.integers(0, 4, rng.integers(1, 40, 2))
        label[rng.random(label.shape) < 0.1] = 255
        regions, instances = mask_regions(label, names, min_extent=0)
        expected = 0
        for c in (1, 2, 3):
            pieces, count = ndimage.label(label == c, structure=np.ones((3, 3)))
            expected += count
            for piece in range(1, count + 1):
                ids = np.unique(instances[pieces == piece])
                assert len(ids) == 1 and regions[ids[0] - 1].class_index == c
                assert regions[ids[0] - 1].visible_pixels == (pieces == piece).sum()
        assert len(regions) == expected
