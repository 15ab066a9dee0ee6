"""Paints for ScaleShapes: colours, gradients and textures, and the clutter on backgrounds.

Everything here is blind to object classes on purpose. The benchmark is meant to be solved
by *shape* alone, so the samplers below take a random generator and a region, never a class:
a circle is as likely to be striped, white or cloudy as a star is. The same samplers paint
backgrounds and objects, so no texture announces "this is an object" either.

A paint is a scalar field t(y, x) in [0, 1] mixed between two colours a and b,
``rgb = a + t (b - a)``; a solid colour is t = 0, a gradient a ramp, a texture a pattern.
Fields are evaluated on absolute pixel coordinates (row ``ys`` (h, 1), column ``xs`` (1, w))
and broadcast, so painting a crop of an image costs only the crop's pixels.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

# Patterns, each a function (rng, ys, xs) -> field in [0, 1]. Order is the sampling order.
TEXTURE_KINDS = (
    "stripes",
    "waves",
    "checkers",
    "dots",
    "grid",
    "rings",
    "zigzag",
    "clouds",
    "camouflage",
    "grain",
)
GRADIENT_KINDS = ("linear_gradient", "radial_gradient")
FILL_KINDS = ("solid", *GRADIENT_KINDS, *TEXTURE_KINDS)
BACKGROUND_KINDS = ("white", *FILL_KINDS)
CLUTTER_KINDS = ("line", "arc", "curve", "scribble")

# How often each family is drawn. Backgrounds are plain white a fifth of the time, as in a
# drawing made in a paint program; objects are solid a third of the time.
_OBJECT_FAMILY_P = {"solid": 0.34, "gradient": 0.16, "texture": 0.50}
_BACKGROUND_FAMILY_P = {"white": 0.20, "solid": 0.12, "gradient": 0.16, "texture": 0.52}


# ----------------------------------------------------------------------------- colours


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """One RGB colour as float32 (3,) in [0, 255]: a grey an eighth of the time, else any hue.

    Saturation and value start at 0.15 so that blacks, whites, pastels and strong colours
    all occur; the contrast check of the generator, not this sampler, keeps objects visible.
    """
    if rng.random() < 0.125:
        return np.full(3, 255.0 * rng.random(), dtype=np.float32)
    hue, saturation, value = rng.random(), rng.uniform(0.15, 1.0), rng.uniform(0.15, 1.0)
    return np.asarray(colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float32) * 255.0


def colour_pair(rng: np.random.Generator, tonal: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two colours for a gradient or texture: unrelated, or (``tonal``) one a shade of the other.

    Tonal pairs give the quiet textures of real surfaces; unrelated pairs give the loud ones.
    """
    first = random_colour(rng)
    if tonal is None:
        tonal = rng.random() < 0.4
    if not tonal:
        return first, random_colour(rng)
    shift = rng.uniform(35.0, 90.0) * rng.choice((-1.0, 1.0))
    second = np.clip(first + shift, 0.0, 255.0).astype(np.float32)
    if np.abs(second - first).max() < 20.0:  # clipped at black or white: shade the other way
        second = np.clip(first - shift, 0.0, 255.0).astype(np.float32)
    return first, second


# ----------------------------------------------------------------------------- fields


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _rotated(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in a frame turned by a random angle: (u, v), each (h, w) float32."""
    angle = rng.uniform(0.0, math.pi)
    cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return xs * cos + ys * sin, ys * cos - xs * sin


def _stripes(rng, ys, xs):
    u, _ = _rotated(rng, ys, xs)
    period, duty = _log_uniform(rng, 4.0, 48.0), rng.uniform(0.25, 0.75)
    return ((u / np.float32(period) + np.float32(rng.random())) % 1.0) < duty


def _waves(rng, ys, xs):
    u, v = _rotated(rng, ys, xs)
    period, wobble = _log_uniform(rng, 6.0, 60.0), rng.uniform(0.0, 0.4)
    phase = u / np.float32(period) + np.float32(wobble) * np.sin(v / np.float32(period * 2.0))
    return 0.5 + 0.5 * np.sin(np.float32(2.0 * math.pi) * phase)


def _checkers(rng, ys, xs):
    u, v = _rotated(rng, ys, xs)
    cell = np.float32(_log_uniform(rng, 4.0, 32.0))
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2.0).astype(np.float32)


def _dots(rng, ys, xs):
    u, v = _rotated(rng, ys, xs)
    # Dots stay at most 7 px across, well below the smallest object (12 px), so that a lattice of
    # dots on a background is never a crowd of unlabelled circles.
    spacing = _log_uniform(rng, 5.0, 32.0)
    radius = min(spacing * rng.uniform(0.15, 0.4), 3.5)
    du = (u / np.float32(spacing)) % 1.0 - 0.5
    dv = (v / np.float32(spacing)) % 1.0 - 0.5
    return (du * du + dv * dv) * np.float32(spacing * spacing) < np.float32(radius * radius)


def _grid(rng, ys, xs):
    u, v = _rotated(rng, ys, xs)
    spacing = _log_uniform(rng, 6.0, 48.0)
    width = np.float32(rng.uniform(1.0, max(1.5, spacing * 0.25)))
    spacing = np.float32(spacing)
    return ((u % spacing) < width) | ((v % spacing) < width)


def _rings(rng, ys, xs):
    # Concentric bands around a point outside the painted region, so only arcs show: a
    # visible centre would be a bullseye, i.e. unlabelled rings on a background.
    height, width = ys.shape[0], xs.shape[1]
    angle = rng.uniform(0.0, 2.0 * math.pi)
    reach = max(height, width) * rng.uniform(0.8, 2.0)
    cy = np.float32(ys[0, 0] + height / 2 + reach * math.sin(angle))
    cx = np.float32(xs[0, 0] + width / 2 + reach * math.cos(angle))
    period, duty = _log_uniform(rng, 6.0, 48.0), rng.uniform(0.3, 0.7)
    distance = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
    return (distance / np.float32(period)) % 1.0 < duty


def _zigzag(rng, ys, xs):
    u, v = _rotated(rng, ys, xs)
    period, amplitude = _log_uniform(rng, 6.0, 40.0), rng.uniform(0.3, 1.0)
    tooth = np.abs((v / np.float32(period)) % 1.0 - 0.5) * np.float32(amplitude)
    return ((u / np.float32(period) + tooth) % 1.0) < 0.5


def _value_noise(rng, ys, xs, cell: float) -> np.ndarray:
    """Smooth random field: a coarse grid of random values, upsampled bilinearly by PIL."""
    height, width = ys.shape[0], xs.shape[1]
    coarse_h, coarse_w = int(height / cell) + 2, int(width / cell) + 2
    coarse = rng.random((coarse_h, coarse_w), dtype=np.float32)
    size = (max(1, round((coarse_w - 1) * cell)), max(1, round((coarse_h - 1) * cell)))
    fine = np.asarray(Image.fromarray(coarse, mode="F").resize(size, Image.Resampling.BILINEAR))
    return fine[:height, :width]


def _clouds(rng, ys, xs):
    field = _value_noise(rng, ys, xs, _log_uniform(rng, 8.0, 80.0))
    return np.clip((field - 0.5) * 2.0 + 0.5, 0.0, 1.0)  # stretch: bilinear noise hugs 0.5


def _camouflage(rng, ys, xs):
    return _value_noise(rng, ys, xs, _log_uniform(rng, 8.0, 60.0)) < rng.uniform(0.35, 0.65)


def _grain(rng, ys, xs):
    # Per-pixel noise between a tonal pair (see sample_fill): a rough surface, not static.
    return rng.random((ys.shape[0], xs.shape[1]), dtype=np.float32)


def _linear_gradient(rng, ys, xs):
    u, _ = _rotated(rng, ys, xs)
    start, length = float(u.min()), max(float(u.max() - u.min()), 1.0)
    # A random sub-range so the ramp may saturate before the far edge.
    low = start + length * rng.uniform(-0.3, 0.3)
    span = np.float32(length * rng.uniform(0.5, 1.3))
    return np.clip((u - np.float32(low)) / span, 0.0, 1.0)


def _radial_gradient(rng, ys, xs):
    height, width = ys.shape[0], xs.shape[1]
    cy = ys[0, 0] + rng.uniform(-0.2, 1.2) * height
    cx = xs[0, 0] + rng.uniform(-0.2, 1.2) * width
    radius = np.float32(max(height, width) * rng.uniform(0.4, 1.5))
    return np.clip(np.sqrt((ys - np.float32(cy)) ** 2 + (xs - np.float32(cx)) ** 2) / radius, 0.0, 1.0)


_FIELDS = {
    "linear_gradient": _linear_gradient,
    "radial_gradient": _radial_gradient,
    "stripes": _stripes,
    "waves": _waves,
    "checkers": _checkers,
    "dots": _dots,
    "grid": _grid,
    "rings": _rings,
    "zigzag": _zigzag,
    "clouds": _clouds,
    "camouflage": _camouflage,
    "grain": _grain,
}


def render_paint(kind: str, rng: np.random.Generator, region: tuple[int, int, int, int]) -> np.ndarray:
    """Paint ``kind`` over ``region`` = (y0, x0, y1, x1) of the image: (y1-y0, x1-x0, 3) uint8.

    Raises ValueError for an unknown kind (valid: :data:`BACKGROUND_KINDS`).
    """
    y0, x0, y1, x1 = region
    height, width = y1 - y0, x1 - x0
    if kind == "white":
        return np.full((height, width, 3), 255, dtype=np.uint8)
    if kind == "solid":
        colour = np.round(random_colour(rng)).astype(np.uint8)
        return np.broadcast_to(colour, (height, width, 3)).copy()
    if kind not in _FIELDS:
        raise ValueError(f"unknown paint {kind!r}; valid: {', '.join(BACKGROUND_KINDS)}")
    first, second = colour_pair(rng, tonal=True if kind == "grain" else None)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]  # (h, 1)
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]  # (1, w)
    field = np.broadcast_to(np.asarray(_FIELDS[kind](rng, ys, xs), dtype=np.float32), (height, width))
    rgb = first + field[..., None] * (second - first)  # (h, w, 3) float32
    return (rgb + 0.5).astype(np.uint8)  # already within [0, 255]: a convex mix of two colours


def _sample_family(rng: np.random.Generator, probabilities: dict[str, float]) -> str:
    names = tuple(probabilities)
    family = names[rng.choice(len(names), p=np.asarray([probabilities[n] for n in names]))]
    if family == "gradient":
        return GRADIENT_KINDS[rng.integers(len(GRADIENT_KINDS))]
    if family == "texture":
        return TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))]
    return family


def sample_fill(rng: np.random.Generator, region: tuple[int, int, int, int]) -> tuple[str, np.ndarray]:
    """A random object fill over ``region`` (y0, x0, y1, x1): (kind, (h, w, 3) uint8).

    Takes no class on purpose (see the module docstring).
    """
    kind = _sample_family(rng, _OBJECT_FAMILY_P)
    return kind, render_paint(kind, rng, region)


def sample_background(rng: np.random.Generator, height: int, width: int) -> tuple[str, np.ndarray]:
    """A random background of (height, width): (kind, (H, W, 3) uint8), clutter not yet drawn."""
    kind = _sample_family(rng, _BACKGROUND_FAMILY_P)
    return kind, render_paint(kind, rng, (0, 0, height, width))


# ----------------------------------------------------------------------------- clutter


def draw_clutter(rng: np.random.Generator, image: Image.Image, count: int) -> tuple[str, ...]:
    """Draw ``count`` thin strokes on ``image`` (PIL RGB, in place); returns their kinds.

    Strokes are 1-4 px wide lines, arcs, smooth curves and short scribbles. They are kept
    from imitating a class: arcs have radii of 24 px or more and never close into a ring,
    and no stroke is filled, so the filled shapes stay the only solid regions with a
    closed outline.
    """
    draw = ImageDraw.Draw(image)
    width, height = image.size
    kinds = []
    for _ in range(count):
        kind = CLUTTER_KINDS[rng.integers(len(CLUTTER_KINDS))]
        colour = tuple(int(c) for c in np.round(random_colour(rng)))
        stroke = int(rng.integers(1, 4 if kind != "curve" else 5))
        if kind == "line":
            # Through a random point at a random angle, long enough to cross the image.
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            angle = rng.uniform(0, math.pi)
            reach = width + height
            dx, dy = math.cos(angle) * reach, math.sin(angle) * reach
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=colour, width=stroke)
        elif kind == "arc":
            radius = _log_uniform(rng, 24.0, 1.2 * max(width, height))
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            start = rng.uniform(0, 360)
            sweep = rng.uniform(20, 240)
            draw.arc([x - radius, y - radius, x + radius, y + radius], start, start + sweep, fill=colour, width=stroke)
        elif kind == "curve":
            path = _smooth_path(rng, width, height, span=0.6 * max(width, height))
            draw.line(path, fill=colour, width=stroke, joint="curve")
        else:  # scribble: a short, wobbly hand stroke
            path = _smooth_path(rng, width, height, span=rng.uniform(20, 90))
            draw.line(path, fill=colour, width=min(stroke, 2), joint="curve")
        kinds.append(kind)
    return tuple(kinds)


def _smooth_path(rng: np.random.Generator, width: int, height: int, span: float) -> list[tuple[float, float]]:
    """A quadratic Bezier-like curve through 4 random points near a random start, 32 samples."""
    start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    steps = rng.normal(0.0, span / 3.0, size=(3, 2))
    points = np.vstack([start, start + np.cumsum(steps, axis=0)])  # (4, 2)
    t = np.linspace(0.0, 1.0, 32)[:, None]
    # Cubic Bezier with the four points as control polygon: smooth, no loops for small spans.
    curve = (
        (1 - t) ** 3 * points[0] + 3 * (1 - t) ** 2 * t * points[1] + 3 * (1 - t) * t**2 * points[2] + t**3 * points[3]
    )
    return [(float(x), float(y)) for x, y in curve]
