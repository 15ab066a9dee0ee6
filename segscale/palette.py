"""Every colour a person sees, defined once: classes, scales, void pixels and the heat-map colour maps.

The app's pages, ``segscale predict``/``compare``/``diagnose`` and the saved figures all take
their colours from here, so a class and a scale look the same everywhere.

* Classes: a checkpoint carries its own palette (one (r, g, b) per class, in its metadata);
  :func:`voc_color_map` is PASCAL VOC's, for VOC-style label and instance PNGs.
* Labels outside a palette -- negative values, VOC's 255 "void"/ignore, or any index past the
  last class -- are drawn in :data:`VOID_COLOUR` (white) by :func:`colorize_labels`: a pixel
  without a class shows as blank paper, never as the colour of some class.
* Scales: scale k of a scale set (the k-th entry, the S axis of every map) is drawn in
  :data:`SCALE_COLOURS`\\ [k] (matplotlib's tab10, cycling after ten), on the dominant-scale map,
  in the inspector and in every plot.

Nothing here imports matplotlib or Streamlit.
"""

from __future__ import annotations

import numpy as np

RGB = tuple[int, int, int]

VOID_COLOUR: RGB = (255, 255, 255)  # label values outside the palette (negative, VOC's 255 "void", ...)

# Scale k of the set gets colour k: matplotlib's tab10, so figures and pages agree.
SCALE_COLOURS: tuple[RGB, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)

# One colour map per quantity, each with its own colour bar; none of them looks like a class palette.
ATTENTION_CMAP = "viridis"  # w^s, always on 0-1
SCORE_CMAP = "inferno"  # a class's probability or raw score f^s_c
ENTROPY_CMAP = "cividis"  # attention entropy, normalised to 0-1


def scale_colour(index: int) -> RGB:
    """The colour of the ``index``-th scale of a scale set (0 = the first listed)."""
    return SCALE_COLOURS[int(index) % len(SCALE_COLOURS)]


def unit_rgb(colour: RGB) -> tuple[float, float, float]:
    """(r, g, b) in 0-255 -> 0-1 floats, the form matplotlib takes."""
    return tuple(int(v) / 255.0 for v in colour)  # type: ignore[return-value]


def hex_colour(colour: RGB) -> str:
    """``#rrggbb`` of an (r, g, b) colour."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in colour))


def colorize_labels(labels: np.ndarray, palette) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 palette colours.

    Every value that is not a palette index (negative, 255 "void", or past the last class)
    is drawn in :data:`VOID_COLOUR`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    lookup = np.vstack([palette, np.asarray([VOID_COLOUR], dtype=np.uint8)])  # the last row for outsiders
    indices = labels.astype(np.int64)
    indices = np.where((indices >= 0) & (indices < len(palette)), indices, len(palette))
    return np.take(lookup, indices, axis=0)  # several times faster than lookup[indices] on an image


def voc_color_map(n: int = 256) -> tuple[RGB, ...]:
    """PASCAL VOC's devkit colour map: the bits of index i are dealt out to R, G, B, from the top bit down.

    Entry 255 is VOC's void colour (224, 224, 192). ``voc_color_map()`` flattened is the
    palette to save an index PNG with, so it opens in colour in any viewer.
    """
    colors = []
    for index in range(n):
        red = green = blue = 0
        bits = index
        for shift in range(7, -1, -1):
            red |= (bits & 1) << shift
            green |= ((bits >> 1) & 1) << shift
            blue |= ((bits >> 2) & 1) << shift
            bits >>= 3
        colors.append((red, green, blue))
    return tuple(colors)
