"""Pictures of a :class:`~segscale.predictor.Prediction` and of its diagnostics: pure functions, arrays out.

Everything the app's main view and ``python -m segscale predict`` show is made here, so the
page and its command-line twin cannot drift apart. Every function returns arrays ((H, W, 3)
uint8 RGB pictures, or maps) or plain data holding them; none returns a figure or a file:

* building blocks: :func:`heat_map`, :func:`colorbar_image`, :func:`overlay`,
  :func:`input_at_scale`, :func:`dominant_scale`, :func:`class_shares` (colours and
  ``colorize_labels`` come from :mod:`segscale.palette`, the entropy from :mod:`segscale.metrics`);
* :func:`build_view`, every map of one prediction at one display size (a :class:`PredictionView`);
* diagnostics as pictures: :func:`disagreement_image`, :func:`error_image`, :func:`pixel_zoom`,
  :func:`decided_image`, :func:`decision_map_image`.

Matplotlib figures (the side-by-side figure of a view among them) are :mod:`segscale.plots`'; the
files saved from a prediction (PNG, ``.npz``) and their names are :mod:`segscale.outputs`'.

Conventions. Images are (H, W, 3) uint8 RGB. Maps on the model's grid are resized with aligned
corners (:mod:`segscale.modeling.geometry`), the convention of the model itself, so every scale's
map lands on the same image points. Heat maps use fixed value ranges (attention weights always
0-1), never a per-image stretch, so that colours compare across scales and images.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .merges import AVERAGE, LEARNED_MERGES, MAX
from .metrics import attention_entropy
from .modeling.geometry import resize_bilinear, resize_labels, scaled_size
from .palette import (
    ATTENTION_CMAP,
    ENTROPY_CMAP,
    SCALE_COLOURS,
    SCORE_CMAP,
    colorize_labels,
    hex_colour,
    scale_colour,
)

DISPLAY_WIDTH = 400  # px; every map of the page is resampled to this width (height by aspect ratio)
SCORE_KINDS = ("probability", "score")
# Shown where a single scale's weight, dominant-scale and entropy maps would be (all 1, one colour, all 0).
SINGLE_SCALE_NOTE = (
    "One scale has nothing to fuse: its weight wˢ is 1 at every pixel, so there is no weight map, "
    "no dominant scale and no entropy to show. Pick two or more scales to see the attention at work."
)


# ----------------------------------------------------------------------------- building blocks


@lru_cache(maxsize=16)
def _colormap_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colour map (no figure is made)."""
    import matplotlib

    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"unknown colour map {cmap!r}; try 'viridis', 'inferno' or 'cividis'") from None
    table = (colormap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).round().astype(np.uint8)
    table.setflags(write=False)
    return table


def heat_map(values: np.ndarray, vmin: float, vmax: float, cmap: str = ATTENTION_CMAP) -> np.ndarray:
    """(H, W) floats -> (H, W, 3) uint8 through ``cmap`` on the fixed range [vmin, vmax].

    Values outside the range take the end colours; NaN is mid grey.
    """
    values = np.asarray(values, dtype=np.float64)
    rgb = heat_map_colours(heat_map_levels(values, vmin, vmax), cmap)
    if np.isnan(values).any():
        rgb[np.isnan(values)] = 128
    return rgb


def heat_map_levels(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) floats -> (H, W) uint8: the colour map's level (0-255) of each value on [vmin, vmax], NaN as 0.

    One byte per pixel: what a cached picture keeps, instead of its three colour bytes."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"heat maps are drawn from (H, W) arrays, got shape {values.shape}")
    if not vmax > vmin:
        raise ValueError(f"need vmax > vmin, got vmin={vmin}, vmax={vmax}")
    unit = (values - vmin) / (vmax - vmin)
    return np.clip(np.nan_to_num(unit, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def heat_map_colours(levels: np.ndarray, cmap: str = ATTENTION_CMAP) -> np.ndarray:
    """(H, W) uint8 levels of :func:`heat_map_levels` -> (H, W, 3) uint8 colours of ``cmap``."""
    return np.take(_colormap_table(cmap), levels, axis=0)  # several times faster than table[levels]


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans, which matplotlib ships, so the text looks the same on every machine."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # no FreeType: Pillow's built-in font
        return ImageFont.load_default()


def _format_tick(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"


def colorbar_image(
    vmin: float,
    vmax: float,
    cmap: str,
    *,
    width: int = 400,
    bar_height: int = 14,
    ticks=None,
    label: str = "",
    font_size: int = 13,
) -> np.ndarray:
    """A horizontal colour bar with tick labels (and an optional label) as an RGB image.

    Drawn with Pillow in milliseconds, so a page can show one under every row of heat maps.
    ``ticks`` default to five evenly spaced values from vmin to vmax.
    """
    if not vmax > vmin:
        raise ValueError(f"need vmax > vmin, got vmin={vmin}, vmax={vmax}")
    font = _font(font_size)
    margin = max(12, font_size * 2)  # room for the end tick labels to stay inside the image
    bar_width = width - 2 * margin
    ticks = np.linspace(vmin, vmax, 5) if ticks is None else np.asarray(ticks, dtype=np.float64)
    text_height = font_size + 4
    height = bar_height + 5 + text_height + (text_height if label else 0) + 2
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    gradient = heat_map(np.linspace(vmin, vmax, bar_width)[None, :].repeat(bar_height, 0), vmin, vmax, cmap)
    canvas.paste(Image.fromarray(gradient), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([margin - 1, 0, margin + bar_width, bar_height - 1], outline=(80, 80, 80))
    for tick in ticks:
        x = margin + (tick - vmin) / (vmax - vmin) * (bar_width - 1)
        draw.line([(x, bar_height), (x, bar_height + 3)], fill=(60, 60, 60))
        draw.text((x, bar_height + 4), _format_tick(float(tick)), fill=(30, 30, 30), font=font, anchor="ma")
    if label:
        draw.text((width / 2, bar_height + 4 + text_height), label, fill=(30, 30, 30), font=font, anchor="ma")
    return np.asarray(canvas)


def swatch_legend_image(
    names, colours, *, width: int = 400, font_size: int = 13, columns: int | None = None
) -> np.ndarray:
    """Coloured squares with names, in rows of ``columns``, as an RGB image (for categorical maps)."""
    names = [str(n) for n in names]
    if len(names) != len(colours):
        raise ValueError(f"{len(names)} names for {len(colours)} colours")
    font = _font(font_size)
    columns = columns or max(1, min(len(names), 4))
    rows = math.ceil(len(names) / columns)
    row_height = font_size + 8
    canvas = Image.new("RGB", (width, rows * row_height + 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    cell = width // columns
    for k, (name, colour) in enumerate(zip(names, colours)):
        x, y = (k % columns) * cell + 4, (k // columns) * row_height + 3
        draw.rectangle([x, y, x + font_size, y + font_size], fill=tuple(int(c) for c in colour), outline=(80, 80, 80))
        draw.text((x + font_size + 5, y + font_size // 2), name, fill=(30, 30, 30), font=font, anchor="lm")
    return np.asarray(canvas)


def overlay(image: np.ndarray, colours: np.ndarray, alpha: float, clear: np.ndarray | None = None) -> np.ndarray:
    """Blend ``colours`` over ``image`` with opacity ``alpha`` in [0, 1]: (H, W, 3) uint8 both.

    ``clear``: an optional (H, W) bool mask of pixels left as the image, unpainted (the
    background class, whose colour would only dim the photo).
    """
    if image.shape != colours.shape:
        raise ValueError(f"image {image.shape} and colours {colours.shape} differ in shape")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    opacity = np.full(image.shape[:2], alpha, dtype=np.float32)
    if clear is not None:
        if clear.shape != image.shape[:2]:
            raise ValueError(f"the clear mask {clear.shape} and the image {image.shape[:2]} differ in size")
        opacity[clear] = 0.0
    opacity = opacity[..., None]
    blended = (1.0 - opacity) * image.astype(np.float32) + opacity * colours.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def display_size(size: tuple[int, int], width: int = DISPLAY_WIDTH) -> tuple[int, int]:
    """(H, W) of an image of ``size`` (H, W) shown ``width`` pixels wide."""
    height, image_width = size
    return max(1, round(height * width / image_width)), width


def resize_rgb(rgb: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> (*size, 3); nearest neighbour keeps hard label edges and visible pixels."""
    if tuple(rgb.shape[:2]) == tuple(size):
        return rgb
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), method))


def input_at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """The image as the network sees it at ``scale``: the model's own bilinear resize (aligned corners).

    (H, W, 3) uint8 -> (H_s, W_s, 3) uint8 with (H_s, W_s) = :func:`~segscale.modeling.geometry.scaled_size`.
    No antialiasing, exactly like the model, so aliasing the network sees shows here too.
    """
    size = scaled_size(image.shape[:2], scale)
    if tuple(size) == tuple(image.shape[:2]):
        return image
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
    resized = resize_bilinear(pixels, size)[0]  # (3, H_s, W_s), values already within 0-255
    return resized.add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) float maps on the model's grid -> (..., *size) float32, bilinear with aligned corners."""
    maps = np.asarray(maps, dtype=np.float32)
    leading = maps.shape[:-2]
    flat = torch.from_numpy(np.ascontiguousarray(maps.reshape(1, -1, *maps.shape[-2:])))
    return resize_bilinear(flat, tuple(size))[0].numpy().reshape(*leading, *size)


def softmax_over_classes(scores: np.ndarray, axis: int = -3) -> np.ndarray:
    """Class probabilities from score maps (C on ``axis``, the third from last by default)."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def dominant_scale(weights: np.ndarray) -> np.ndarray:
    """(S, h, w) attention weights -> (h, w) int64: the index of the scale with the largest weight."""
    weights = np.asarray(weights)
    if weights.ndim != 3:
        raise ValueError(f"weights must be (S, h, w), got shape {weights.shape}")
    return weights.argmax(axis=0)


def winning_scale_for_max(score_maps: np.ndarray, fused_labels: np.ndarray) -> np.ndarray:
    """Max pooling's dominant scale: which scale's score of the fused class is the maximum.

    score_maps (S, C, h, w) and fused_labels (h, w) on the same grid -> (h, w) int64. Max
    pooling picks a scale per pixel *and class*, so this is the pick for the class that won.
    """
    picked = np.take_along_axis(score_maps, fused_labels[None, None].astype(np.int64).repeat(score_maps.shape[0], 0), 1)
    return picked[:, 0].argmax(axis=0)


@dataclass(frozen=True)
class ClassShare:
    """One row of a label legend: class index, name, palette colour and share of pixels (0-1)."""

    index: int
    name: str
    colour: tuple[int, int, int]
    share: float

    @property
    def hex_colour(self) -> str:
        return hex_colour(self.colour)


def class_shares(labels: np.ndarray, classes, palette) -> list[ClassShare]:
    """Every class with its share of the pixels of ``labels`` (H, W), in class order; shares sum to 1."""
    counts = np.bincount(np.asarray(labels).reshape(-1).astype(np.int64), minlength=len(classes))[: len(classes)]
    total = max(1, int(np.asarray(labels).size))
    return [
        ClassShare(k, str(name), tuple(int(v) for v in colour), float(counts[k] / total))  # type: ignore[arg-type]
        for k, (name, colour) in enumerate(zip(classes, palette))
    ]


def legend_shares(shares, limit: int = 24) -> list[ClassShare]:
    """The rows a legend shows: classes present in the labels first (in class order), then absent ones.

    At most ``limit`` rows, absent classes dropped first: a 150-class network's legend lists
    what the image holds, not 150 swatches.
    """
    present = [s for s in shares if s.share > 0]
    absent = [s for s in shares if s.share == 0]
    return (present + absent)[: max(limit, len(present))]


def default_class(labels: np.ndarray, num_classes: int) -> int:
    """The class to show first: the most frequent in ``labels`` besides class 0 (the background).

    An object class, even when absent, rather than the background that fills most images.
    """
    if num_classes < 2:
        return 0
    counts = np.bincount(np.asarray(labels).reshape(-1).astype(np.int64), minlength=num_classes)[:num_classes]
    return int(counts[1:].argmax()) + 1


# ----------------------------------------------------------------------------- one prediction, every map


@dataclass(frozen=True)
class ScaleView:
    """One column of the side-by-side view: scale ``scale``, every image at the display size.

    input: the image as the network saw it at this scale (nearest-upsampled, so its pixels show).
    input_size: (H_s, W_s) the network saw.
    labels: argmax over classes of f^s (bilinearly upsampled), in the palette.
    class_map: the chosen class's probability (0-1) or raw score f^s_c, as a heat map.
    attention: w^s as a heat map on 0-1; None for max pooling, which has no weight map.
    """

    scale: float
    input: np.ndarray
    input_size: tuple[int, int]
    labels: np.ndarray
    class_map: np.ndarray
    attention: np.ndarray | None


@dataclass(frozen=True)
class PredictionView:
    """Every picture of one prediction at one display size (H_d, W_d); arrays are (H_d, W_d, 3) uint8.

    class_index, score_kind, score_range: what the ``class_map`` of every scale shows, and on
        which fixed range (0-1 for probabilities; for raw scores the class's range over all scales).
    image: the input at the display size, for overlays.
    fused_labels: the prediction's labels in the palette, at the display size.
    fused_label_indices: (H_d, W_d), the class indices behind ``fused_labels``, in the prediction's labels'
        dtype (for overlays that leave a class clear).
    dominant: which scale has the largest weight (attention's, or hierarchical's effective one), in
        :data:`SCALE_COLOURS`; for max pooling which scale won the fused class; None for average pooling (no scale
        dominates).
    entropy: attention entropy normalised to 0-1 (0 = one scale, 1 = all equal); None for max.
    shares: the legend of ``fused_labels``.
    """

    size: tuple[int, int]
    scales: tuple[ScaleView, ...]
    class_index: int
    score_kind: str
    score_range: tuple[float, float]
    image: np.ndarray
    fused_labels: np.ndarray
    fused_label_indices: np.ndarray
    dominant: np.ndarray | None
    entropy: np.ndarray | None
    shares: tuple[ClassShare, ...]


def build_view(
    prediction, classes, palette, class_index: int = 1, score_kind: str = "probability", width: int = DISPLAY_WIDTH
) -> PredictionView:
    """All maps of ``prediction`` (a :class:`~segscale.predictor.Prediction`) at ``width`` pixels wide."""
    if score_kind not in SCORE_KINDS:
        raise ValueError(f"score_kind must be one of {', '.join(SCORE_KINDS)}, got {score_kind!r}")
    num_classes = prediction.score_maps.shape[1]
    if not 0 <= class_index < num_classes:
        raise ValueError(f"class_index must be in 0..{num_classes - 1}, got {class_index}")
    size = display_size(prediction.labels.shape, width)
    scores = upsample_maps(prediction.score_maps, size)  # (S, C, H_d, W_d)
    if score_kind == "probability":
        # Softmax on the model's grid, then upsampled: a tenth of the work, and the way the
        # model's own probabilities would be resized.
        class_values = upsample_maps(softmax_over_classes(prediction.score_maps)[:, class_index], size)
        score_range = (0.0, 1.0)
    else:
        class_values = scores[:, class_index]
        low, high = float(class_values.min()), float(class_values.max())
        score_range = (low, high) if high > low else (low - 1.0, high + 1.0)
    attention = None if prediction.attention is None else upsample_maps(prediction.attention, size)  # (S, H_d, W_d)

    columns = []
    for k, scale in enumerate(prediction.scales):
        seen = input_at_scale(prediction.image, scale)
        columns.append(
            ScaleView(
                scale=scale,
                input=resize_rgb(seen, size, nearest=True),
                input_size=tuple(seen.shape[:2]),  # type: ignore[arg-type]
                labels=colorize_labels(scores[k].argmax(axis=0), palette),
                class_map=heat_map(class_values[k], *score_range, cmap=SCORE_CMAP),
                attention=None if attention is None else heat_map(attention[k], 0.0, 1.0, ATTENTION_CMAP),
            )
        )

    dominant = entropy = None
    if prediction.merge in LEARNED_MERGES and attention is not None:
        dominant = colorize_labels(dominant_scale(attention), SCALE_COLOURS)
        entropy = heat_map(attention_entropy(attention, normalized=True), 0.0, 1.0, ENTROPY_CMAP)
    elif prediction.merge == AVERAGE and attention is not None:
        entropy = heat_map(attention_entropy(attention, normalized=True), 0.0, 1.0, ENTROPY_CMAP)
    elif prediction.merge == MAX:
        fused = upsample_maps(prediction.fused, size)
        dominant = colorize_labels(winning_scale_for_max(scores, fused.argmax(axis=0)), SCALE_COLOURS)

    label_tensor = torch.from_numpy(np.ascontiguousarray(prediction.labels))[None]
    fused_labels = resize_labels(label_tensor, size)[0].numpy()
    return PredictionView(
        size=size,
        scales=tuple(columns),
        class_index=class_index,
        score_kind=score_kind,
        score_range=score_range,
        image=resize_rgb(prediction.image, size),
        fused_labels=colorize_labels(fused_labels, palette),
        fused_label_indices=fused_labels,
        dominant=dominant,
        entropy=entropy,
        shares=tuple(class_shares(prediction.labels, classes, palette)),
    )


# ----------------------------------------------------------------------------- diagnostics as pictures

# Error and disagreement maps: one meaning per colour, the same in the figure and on the page.
WRONG_COLOUR = (220, 30, 30)  # a wrong label / the merges disagree
RIGHT_COLOUR = (235, 235, 235)  # a right label (light grey: the map's edge still shows on a white page)
IGNORED_COLOUR = (170, 170, 170)  # the ground truth says "ignore" (255)
MARK_COLOUR = (255, 0, 220)  # the inspected pixel and its grid cell


def disagreement_image(disagreement: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(H, W) bool and the (H, W, 3) image -> RGB: red where the merges disagree, the image faded elsewhere."""
    faded = (np.asarray(image, dtype=np.uint8) // 3 + 140).astype(np.uint8)
    return np.where(np.asarray(disagreement)[..., None], np.array(WRONG_COLOUR, np.uint8), faded)


def error_image(errors: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """(H, W) bool errors and labels -> RGB: red where wrong,
    white where right, grey where the truth is "ignore" (255)."""
    errors = np.asarray(errors, dtype=bool)
    picture = np.empty(errors.shape + (3,), np.uint8)
    picture[...] = RIGHT_COLOUR
    picture[errors] = WRONG_COLOUR
    picture[np.asarray(ground_truth) == 255] = IGNORED_COLOUR
    return picture


def pixel_zoom(
    image: np.ndarray, row: int, col: int, footprint: tuple[int, int, int, int], radius: int = 32, factor: int = 4
) -> np.ndarray:
    """A crop of ``image`` around pixel (row, col), enlarged ``factor`` times without smoothing.

    The grid cell's ``footprint`` (top, left, bottom, right, inclusive; see
    :func:`segscale.diagnostics.cell_footprint`) is outlined and the pixel itself framed, so
    one sees which pixels share the cell whose numbers Eq. 1-2 show. The crop is
    ``2 radius + 1`` pixels a side, padded with grey beyond the image border.
    """
    image = np.asarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    side = 2 * radius + 1
    crop = np.full((side, side, 3), 128, np.uint8)
    top, left = row - radius, col - radius
    y0, y1, x0, x1 = max(0, top), min(height, top + side), max(0, left), min(width, left + side)
    crop[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    big = np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)
    colour = np.array(MARK_COLOUR, np.uint8)

    def outline(r0: int, c0: int, r1: int, c1: int, thickness: int) -> None:
        """Frame crop pixels r0..r1, c0..c1 (inclusive), clipped to the crop."""
        a, b = max(0, (r0 - top) * factor), min(big.shape[0], (r1 - top + 1) * factor)
        c, d = max(0, (c0 - left) * factor), min(big.shape[1], (c1 - left + 1) * factor)
        if a >= b or c >= d:
            return
        big[a : a + thickness, c:d] = colour
        big[b - thickness : b, c:d] = colour
        big[a:b, c : c + thickness] = colour
        big[a:b, d - thickness : d] = colour

    f_top, f_left, f_bottom, f_right = footprint
    outline(f_top, f_left, f_bottom, f_right, max(1, factor // 2))
    outline(row, col, row, col, max(1, factor // 3))
    return big


def decided_image(changed: np.ndarray, image: np.ndarray, scale_index: int) -> np.ndarray:
    """(H, W) bool and the (H, W, 3) image -> RGB: the pixels a scale decides in that scale's colour, the image
    faded elsewhere (as :func:`disagreement_image`)."""
    faded = (np.asarray(image, dtype=np.uint8) // 3 + 140).astype(np.uint8)
    return np.where(np.asarray(changed)[..., None], np.array(scale_colour(scale_index), np.uint8), faded)


def decision_map_image(decision: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(H, W) decision map of :class:`~segscale.diagnostics.ScaleAblation` -> RGB: each pixel one scale alone
    decides in that scale's colour, pixels that several scales decide black, the rest the image faded."""
    decision = np.asarray(decision)
    picture = (np.asarray(image, dtype=np.uint8) // 3 + 140).astype(np.uint8)
    for k in range(int(decision.max(initial=-1)) + 1):
        picture[decision == k] = scale_colour(k)
    picture[decision == -2] = (0, 0, 0)
    return picture
