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
from .visualize import (
    DISPLAY_WIDTH,
    decision_map_image,
    display_size,
    heat_map,
    heat_map_colours,
    heat_map_levels,
    resize_rgb,
    upsample_maps,
)

FADE = 0.7  # how far towards white the pixels a scale does not decide are drawn, so the ones it decides stand out


@dataclass(frozen=True)
class AblationView:
    """Every picture of what each scale decides, at the display size (H_d, W_d); images are (H_d, W_d, 3) uint8.

    It keeps index maps, one byte per pixel, and draws each picture when it is read (a few table lookups):
    the app caches one view per prediction, and three colour bytes per pixel for 12 pictures made that
    cache the largest part of the app's memory growth.

    Pictures:
        without: per scale, the labels of the merge without it, in the palette, faded where they do
            not change; None for a single scale (nothing to leave out).
        decision: the pixels one scale alone decides in its colour, several scales black, the rest the
            image faded; None for a single scale.
        confidence: per scale, its top-class probability as a heat map on 0-1.
        most_confident: where the scales' own labels disagree, the most confident scale in its colour.
        max_deciding: per scale, 1 (yellow) where max pooling took it for the predicted class, 0 elsewhere.
        max_deciding_map: that scale per pixel, in the scales' colours.
    Numbers:
        shares, sole_shares, any_share, several_share: as :class:`~segscale.diagnostics.ScaleAblation`'s.
        disagree_share, most_confident_shares: of the grid. max_shares: (S,) max's deciding scale's shares.
    """

    size: tuple[int, int]
    merge: str
    shares: tuple[float, ...] | None
    sole_shares: tuple[float, ...] | None
    any_share: float | None
    several_share: float | None
    disagree_share: float
    most_confident_shares: tuple[float, ...]
    max_shares: tuple[float, ...]
    # What the pictures are drawn from, at the display size.
    image: np.ndarray  # (H_d, W_d, 3) uint8, the input
    palette: np.ndarray  # (K, 3) uint8, the checkpoint's class colours
    labels_without: np.ndarray | None  # (S, H_d, W_d), the labels without each scale
    changed: np.ndarray | None  # (S, H_d, W_d) bool, where they differ from the labels with every scale
    decision_map: np.ndarray | None  # (H_d, W_d) int8, ScaleAblation.decision_map
    confidence_levels: np.ndarray  # (S, H_d, W_d) uint8, heat_map_levels of each top-class probability
    most_confident_scale: np.ndarray  # (H_d, W_d) int8, ScaleConfidence.most_confident
    max_deciding_scale: np.ndarray  # (H_d, W_d) int8, max pooling's deciding scale

    @property
    def without(self) -> tuple[np.ndarray, ...] | None:
        if self.labels_without is None:
            return None
        return tuple(
            faded_labels(labels, changed, self.palette) for labels, changed in zip(self.labels_without, self.changed)
        )

    @property
    def decision(self) -> np.ndarray | None:
        return None if self.decision_map is None else decision_map_image(self.decision_map, self.image)

    @property
    def confidence(self) -> tuple[np.ndarray, ...]:
        return tuple(heat_map_colours(levels, SCORE_CMAP) for levels in self.confidence_levels)

    @property
    def most_confident(self) -> np.ndarray:
        return decision_map_image(self.most_confident_scale, self.image)

    @property
    def max_deciding(self) -> tuple[np.ndarray, ...]:
        return _two_colour_maps(self.max_deciding_scale, len(self.max_shares))

    @property
    def max_deciding_map(self) -> np.ndarray:
        return colorize_labels(self.max_deciding_scale, SCALE_COLOURS)


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
    without = changed = decision = shares = sole = any_share = several = None
    if len(scales) > 1:
        ablation = prediction.scale_ablation()
        # Index maps go to the display size (nearest: no label is blended); the pictures colour them when read.
        without, changed = _nearest(ablation.without, size), _nearest(ablation.changed, size)
        decision = _nearest(ablation.decision_map, size).astype(np.int8)
        shares, sole, any_share, several = (
            ablation.shares,
            ablation.sole_shares,
            ablation.any_share,
            ablation.several_share,
        )
    confidence = prediction.scale_confidence()
    probability = upsample_maps(confidence.top_probability, size)
    deciding_grid = max_deciding_scale(prediction.score_maps)
    return AblationView(
        size=size,
        merge=prediction.merge,
        shares=shares,
        sole_shares=sole,
        any_share=any_share,
        several_share=several,
        disagree_share=confidence.disagree_share,
        most_confident_shares=confidence.most_confident_shares,
        max_shares=index_shares(deciding_grid, len(scales)),
        image=resize_rgb(prediction.image, size),
        palette=np.asarray(palette, np.uint8).reshape(-1, 3),
        labels_without=without,
        changed=changed,
        decision_map=decision,
        confidence_levels=np.stack([heat_map_levels(p, 0.0, 1.0) for p in probability]),
        most_confident_scale=deciding_scale_at(confidence.most_confident, size).astype(np.int8),
        max_deciding_scale=deciding_scale_at(deciding_grid, size).astype(np.int8),
    )
