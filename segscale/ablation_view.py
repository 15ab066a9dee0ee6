"""Pictures of what each scale decides, for the main view: arrays in, RGB out, at the page's display size.

The numbers come from :mod:`segscale.diagnostics.ablation` (leave one scale out, max pooling's
deciding scale, per-scale confidence); the colours from :mod:`segscale.palette` (a scale keeps its
colour) and the picture helpers from :mod:`segscale.visualize` and :mod:`segscale.plots`, so the
page and ``python -m segscale predict --outputs ablation`` show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .diagnostics.ablation import deciding_scale_at, index_shares, max_deciding_scale
from .modeling.geometry import _aligned_indices
from .palette import SCALE_COLOURS, SCORE_CMAP, colorize_labels
from .visualize import DISPLAY_WIDTH, decision_map_image, display_size, heat_map, resize_rgb, upsample_maps

FADE = 0.7  # how far towards white the pixels a scale does not decide are drawn, so the ones it decides stand out


@dataclass(frozen=True)
class AblationView:
    """Every picture of what each scale decides, at the display size (H_d, W_d); images are (H_d, W_d, 3) uint8.

    without: per scale, the labels of the merge without it, in the palette, faded where they do
        not change; None for a single scale (nothing to leave out).
    shares, sole_shares, any_share, several_share: as :class:`~segscale.diagnostics.ScaleAblation`'s.
    decision: the pixels one scale alone decides in its colour, several scales black, the rest the image faded.
    confidence: per scale, its top-class probability as a heat map on 0-1.
    most_confident: where the scales' own labels disagree, the most confident scale in its colour.
    disagree_share, most_confident_shares: of the grid.
    max_deciding: per scale, 1 (yellow) where max pooling took it for the predicted class, 0 elsewhere.
    max_deciding_map: that scale per pixel, in the scales' colours. max_shares: (S,) its shares.
    """

    size: tuple[int, int]
    merge: str
    without: tuple[np.ndarray, ...] | None
    shares: tuple[float, ...] | None
    sole_shares: tuple[float, ...] | None
    any_share: float | None
    several_share: float | None
    decision: np.ndarray | None
    confidence: tuple[np.ndarray, ...]
    most_confident: np.ndarray
    disagree_share: float
    most_confident_shares: tuple[float, ...]
    max_deciding: tuple[np.ndarray, ...]
    max_deciding_map: np.ndarray
    max_shares: tuple[float, ...]


# Each channel value washed towards white, looked up instead of computed at every pixel (the same float32 sums).
_WASHED = (np.arange(256, dtype=np.float32) * (1 - FADE) + 255 * FADE).round().astype(np.uint8)


def faded_labels(labels: np.ndarray, changed: np.ndarray, palette) -> np.ndarray:
    """(H, W) labels and changed mask -> RGB: palette colours, washed towards white where nothing changed."""
    colours = colorize_labels(labels, palette)
    return np.where(np.asarray(changed)[..., None], colours, np.take(_WASHED, colours))


def _two_colour_maps(deciding: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """Per scale, the weight row's colours of 1 where ``deciding`` is that scale and 0 elsewhere: the
    two ends of :func:`~segscale.visualize.heat_map` on 0-1, without mapping every pixel through it."""
    ends = heat_map(np.array([[0.0, 1.0]]), 0.0, 1.0)[0]  # (2, 3): the colours of 0 and 1
    return tuple(np.take(ends, (deciding == k).astype(np.intp), axis=0) for k in range(count))


def _nearest(maps: np.ndarray, size) -> np.ndarray:
    """(..., H, W) index maps -> (..., *size), nearest on the aligned-corner grid as
    :func:`segscale.modeling.geometry.resize_labels`, indexed in numpy (cheaper than a torch gather here)."""
    rows = _aligned_indices(maps.shape[-2], size[0], "cpu").numpy()
    cols = _aligned_indices(maps.shape[-1], size[1], "cpu").numpy()
    return maps[..., rows[:, None], cols[None, :]]


def build_ablation_view(prediction, palette, width: int = DISPLAY_WIDTH) -> AblationView:
    """All the pictures of what each scale of ``prediction`` decides, ``width`` pixels wide."""
    size = display_size(prediction.labels.shape, width)
    scales = tuple(prediction.scales)
    image = resize_rgb(prediction.image, size)
    without = shares = sole = any_share = several = decision = None
    if len(scales) > 1:
        ablation = prediction.scale_ablation()
        # Index maps go to the display size first (nearest: no label is blended), then get their colours.
        shown_without, shown_changed = _nearest(ablation.without, size), _nearest(ablation.changed, size)
        without = tuple(faded_labels(shown_without[k], shown_changed[k], palette) for k in range(len(scales)))
        shares, sole, any_share, several = (
            ablation.shares,
            ablation.sole_shares,
            ablation.any_share,
            ablation.several_share,
        )
        decision = decision_map_image(_nearest(ablation.decision_map, size), image)
    confidence = prediction.scale_confidence()
    probability = upsample_maps(confidence.top_probability, size)
    confident = deciding_scale_at(confidence.most_confident, size)
    deciding_grid = max_deciding_scale(prediction.score_maps)
    deciding = deciding_scale_at(deciding_grid, size)
    return AblationView(
        size=size,
        merge=prediction.merge,
        without=without,
        shares=shares,
        sole_shares=sole,
        any_share=any_share,
        several_share=several,
        decision=decision,
        confidence=tuple(heat_map(p, 0.0, 1.0, SCORE_CMAP) for p in probability),
        most_confident=decision_map_image(confident, image),
        disagree_share=confidence.disagree_share,
        most_confident_shares=confidence.most_confident_shares,
        max_deciding=_two_colour_maps(deciding, len(scales)),
        max_deciding_map=colorize_labels(deciding, SCALE_COLOURS),
        max_shares=index_shares(deciding_grid, len(scales)),
    )
