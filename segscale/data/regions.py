"""Objects of a ground-truth mask: the connected regions of each class, for diagnostics by object size.

ScaleShapes' generator says where each object is and how large it was drawn; a data set read from
disk (VOC, ADE20K, Cityscapes, a folder of index PNGs) has only its label mask. There an object is
a connected region (8-connected) of one class, and its *extent* is the diameter of the disc around
its centroid that holds its pixels: twice the largest distance from the centroid to a pixel centre,
plus one pixel (so a bar n pixels long is n across, as ScaleShapes measures a shape by its
circumscribed circle).

Left out of the objects: ignored pixels (255), classes named "background" (what lies around the
objects, not an object), and regions under ``min_extent`` pixels across (annotation specks; ScaleShapes
draws nothing under 12 px, where its size bins start). Their pixels still count in every score over
whole images (mIoU, the share each scale dominates or decides).

No scipy: the regions are found from the mask's row runs, joined where runs of the same class touch
in neighbouring rows (diagonals too), so a 2048 x 1024 Cityscapes mask takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..config import IGNORE_INDEX

# Classes that are the surroundings of the objects rather than objects (VOC's and PASCAL-Person-Part's 0).
NOT_OBJECTS = ("background",)
MIN_REGION_EXTENT = 12.0


@dataclass(frozen=True)
class MaskRegion:
    """One connected region of one class in a label mask.

    instance_id: k for the k-th region kept, in raster order of its first pixel (1-based); its pixels
        carry k in the instance map.
    extent: diameter (px) of the disc around ``center`` that holds every pixel of the region.
    center: (x, y) of its centroid, in pixels.
    visible_pixels: its pixel count.
    window: (rows, columns) of its bounding box, so that a caller looks for its pixels there only
        (an ADE20K or Cityscapes mask holds hundreds of regions).
    """

    class_index: int
    class_name: str
    instance_id: int
    extent: float
    center: tuple[float, float]
    visible_pixels: int
    window: tuple[slice, slice] = field(default=(slice(None), slice(None)), compare=False, repr=False)


def mask_regions(
    label: np.ndarray,
    class_names: Sequence[str],
    *,
    ignore_index: int = IGNORE_INDEX,
    min_extent: float = MIN_REGION_EXTENT,
) -> tuple[tuple[MaskRegion, ...], np.ndarray]:
    """(regions, instances): the object regions of a (H, W) label mask and an (H, W) int32 map, 0 where no
    region kept shows and k where region k does. A label value outside the classes (but the ignore index)
    is a ValueError."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a label mask is (H, W), got shape {label.shape}")
    height, width = label.shape
    values = label.astype(np.int64)
    scored = values != ignore_index
    if scored.any() and values[scored].max() >= len(class_names):
        raise ValueError(
            f"the mask holds class {int(values[scored].max())}, but there are {len(class_names)} classes "
            f"(0..{len(class_names) - 1}; {ignore_index} ignored)"
        )
    is_object = np.array([name.lower() not in NOT_OBJECTS for name in class_names] + [False])
    codes = np.where(scored, values, len(class_names))  # the extra code marks "not an object"
    codes = np.where(is_object[codes], codes, -1).ravel()

    # Runs of equal codes along each row: every row starts a run, so no run crosses a row's end.
    starts = np.ones(codes.size, bool)
    starts[1:] = codes[1:] != codes[:-1]
    starts[::width] = True
    run_start = np.flatnonzero(starts)
    run_length = np.diff(np.append(run_start, codes.size))
    run_code = codes[run_start]
    run_row, run_first = np.divmod(run_start, width)
    run_last = run_first + run_length - 1

    component = _join_touching_runs(run_start, run_row, run_first, run_last, run_code, width, height)
    objects = np.flatnonzero(run_code >= 0)
    roots, member = np.unique(component[objects], return_inverse=True)  # roots in raster order
    count = len(roots)
    lengths = run_length[objects].astype(np.float64)
    pixels = np.bincount(member, lengths, minlength=count)
    # Sum of the columns of a run is its length times its middle column.
    sum_x = np.bincount(member, lengths * (run_first[objects] + run_last[objects]) / 2, minlength=count)
    sum_y = np.bincount(member, lengths * run_row[objects], minlength=count)
    center_x, center_y = sum_x / np.maximum(pixels, 1), sum_y / np.maximum(pixels, 1)
    # The farthest pixel of a run from any point is one of its two ends.
    dy2 = (run_row[objects] - center_y[member]) ** 2
    dx2 = np.maximum((run_first[objects] - center_x[member]) ** 2, (run_last[objects] - center_x[member]) ** 2)
    farthest = np.zeros(count)
    np.maximum.at(farthest, member, dx2 + dy2)
    extents = 2 * np.sqrt(farthest) + 1
    top, left = np.full(count, height), np.full(count, width)
    bottom, right = np.zeros(count, np.int64), np.zeros(count, np.int64)
    np.minimum.at(top, member, run_row[objects])
    np.maximum.at(bottom, member, run_row[objects])
    np.minimum.at(left, member, run_first[objects])
    np.maximum.at(right, member, run_last[objects])
    kept = extents >= min_extent
    instance_of_root = np.zeros(count, np.int32)
    instance_of_root[kept] = np.arange(1, int(kept.sum()) + 1, dtype=np.int32)
    run_instance = np.zeros(len(run_start), np.int32)
    run_instance[objects] = instance_of_root[member]
    instances = np.repeat(run_instance, run_length).reshape(height, width)
    root_code = run_code[roots]
    regions = tuple(
        MaskRegion(
            class_index=int(root_code[k]),
            class_name=str(class_names[int(root_code[k])]),
            instance_id=int(instance_of_root[k]),
            extent=float(extents[k]),
            center=(float(center_x[k]), float(center_y[k])),
            visible_pixels=int(pixels[k]),
            window=(slice(int(top[k]), int(bottom[k]) + 1), slice(int(left[k]), int(right[k]) + 1)),
        )
        for k in np.flatnonzero(kept)
    )
    return regions, instances


def _join_touching_runs(run_start, run_row, run_first, run_last, run_code, width: int, height: int) -> np.ndarray:
    """For each run, the index of the first run of its region: runs of one code in neighbouring rows whose
    columns overlap or touch at a corner belong together."""
    below = np.flatnonzero((run_row < height - 1) & (run_code >= 0))
    next_row = (run_row[below] + 1) * width
    # The runs of the next row under columns first-1 .. last+1 are one stretch of consecutive runs.
    low = np.searchsorted(run_start, next_row + np.maximum(run_first[below] - 1, 0), side="right") - 1
    high = np.searchsorted(run_start, next_row + np.minimum(run_last[below] + 1, width - 1), side="right") - 1
    spans = high - low + 1
    upper = np.repeat(below, spans)
    lower = np.repeat(low, spans) + (np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans))
    same = run_code[upper] == run_code[lower]
    upper, lower = upper[same], lower[same]

    parent = np.arange(len(run_start))
    while True:  # hook each edge's roots onto the smaller one, then jump pointers until every run points at a root
        smaller = np.minimum(parent[upper], parent[lower])
        np.minimum.at(parent, parent[upper], smaller)
        np.minimum.at(parent, parent[lower], smaller)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if np.array_equal(parent[upper], parent[lower]):
            return parent


def object_pixels(obj, instances: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """(window, visible): where to look for an object (its bounding box where known, else the whole image) and
    where it shows within that window. A mask's regions carry their box: an ADE20K or Cityscapes image holds
    hundreds of them, and comparing the whole image for each would cost far more than the network."""
    window = getattr(obj, "window", None) or (slice(None), slice(None))
    return window, instances[window] == obj.instance_id
