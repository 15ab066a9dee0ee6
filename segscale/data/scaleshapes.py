"""ScaleShapes: a procedural segmentation benchmark in which object scale truly matters.

Attention to Scale (Chen et al., CVPR 2016) learns, per pixel, which input scale to trust.
That only pays off when the same class appears both tiny and huge, so that no single scale
sees every object well. ScaleShapes makes this the whole point: six filled shapes (circle,
triangle, square, star, cross, ring) on cluttered backgrounds, each one's extent drawn
log-uniformly from 12 px to 90% of the image's short side.

Only shape tells the class. Fills and backgrounds come from the same class-blind samplers
(:mod:`segscale.data.textures`: solid colours, plain white, gradients, ten textures), and
backgrounds carry thin strokes that are no class. Every object is checked to stand out
from what it covers, and its fill is redrawn until it does.

Geometry conventions:

* Pixel (row i, column j) is the point (x=j, y=i); a pixel belongs to a shape when its
  centre lies inside (no anti-aliasing, so labels are hard and exact).
* An object's *extent* is the diameter of its circumscribed circle, whose centre is the
  object's *centre*: for a triangle (all angles 40-80 degrees, so acute) the circumcentre,
  for the others their centre of symmetry. Hence every polygon vertex that touches the
  circle lies exactly extent / 2 from the centre (:func:`polygon_vertices`).
* ``rotation_deg`` turns the shape clockwise on screen from its upright pose (a triangle
  or star with a tip straight up, a square and cross axis-aligned). Circles and rings have 0.

Determinism: sample ``(split, index)`` is a pure function of those two numbers, the config
and :data:`GENERATOR_VERSION`; its random stream is seeded from
``SeedSequence([split_id, index, GENERATOR_VERSION])``, so splits never share a stream and
nothing depends on the process, the platform's hash seed or the order of generation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from ..palette import voc_color_map
from .textures import draw_clutter, sample_background, sample_fill

CLASSES: tuple[str, ...] = ("background", "circle", "triangle", "square", "star", "cross", "ring")
# Readable on black and on each other (Trubetskoy's "distinct colours"); background black as in VOC.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # background
    (230, 25, 75),  # circle: red
    (60, 180, 75),  # triangle: green
    (255, 225, 25),  # square: yellow
    (0, 130, 200),  # star: blue
    (245, 130, 48),  # cross: orange
    (145, 30, 180),  # ring: purple
)
SPLITS = ("train", "val", "test")
# Bump whenever a change alters any generated pixel, so stale caches are recognisable.
GENERATOR_VERSION = 1

# Shape parameter ranges (the specification of the benchmark).
TRIANGLE_ANGLE_RANGE = (40.0, 80.0)  # every angle, degrees
STAR_INNER_RATIO_RANGE = (0.35, 0.55)  # inner radius / outer radius
CROSS_BAR_RATIO_RANGE = (0.25, 0.40)  # bar width / bar length
RING_INNER_RATIO_RANGE = (0.45, 0.70)  # inner radius / outer radius

# Contrast: the 10% quantile of the per-pixel colour distance between an object's fill and
# what it covers. A quantile rather than a mean so that an object may not quietly merge with
# part of what lies under it (a red square half over a red circle has a fine mean contrast
# against a white background and no visible edge on the circle).
CONTRAST_QUANTILE = 0.1
_FILL_ATTEMPTS = 12
# Fallback fills when no random fill stands out: the corners of the RGB cube and mid grey.
_FALLBACK_COLOURS = np.array(
    [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)] + [[128, 128, 128]], dtype=np.uint8
)


# ----------------------------------------------------------------------------- config and records


@dataclass(frozen=True)
class ScaleShapesConfig:
    """How ScaleShapes images are drawn.

    min_side, max_side: width and height are drawn independently and uniformly from this range (px).
    min_objects, max_objects: objects per image, uniform (at most 255: instance ids are uint8).
    min_extent: smallest circumscribed diameter (px).
    max_extent_fraction: largest extent as a fraction of the image's short side.
    min_contrast: least colour distance (RGB, 0-441) between a fill and what it covers, at the
        10% quantile over the object's pixels (see :func:`covered_contrast`).
    max_clutter: background strokes per image, uniform in 0..max_clutter.
    blur_sigma: Gaussian blur of the final image, sigma uniform in this range (px); (0, 0) for none.
    noise_std: additive Gaussian noise, standard deviation uniform in this range (grey levels).
    """

    min_side: int = 256
    max_side: int = 640
    min_objects: int = 1
    max_objects: int = 8
    min_extent: float = 12.0
    max_extent_fraction: float = 0.9
    min_contrast: float = 60.0
    max_clutter: int = 8
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    noise_std: tuple[float, float] = (0.0, 3.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blur_sigma", tuple(float(v) for v in self.blur_sigma))
        object.__setattr__(self, "noise_std", tuple(float(v) for v in self.noise_std))
        if not 16 <= self.min_side <= self.max_side:
            raise ValueError(f"need 16 <= min_side <= max_side; got min_side={self.min_side}, max_side={self.max_side}")
        if not 1 <= self.min_objects <= self.max_objects <= 255:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects <= 255; got {self.min_objects} and {self.max_objects}"
            )
        if not 0 < self.max_extent_fraction <= 1:
            raise ValueError(f"max_extent_fraction must be in (0, 1], got {self.max_extent_fraction}")
        if not 2 <= self.min_extent < self.max_extent_fraction * self.min_side:
            raise ValueError(
                f"min_extent must be at least 2 px and below max_extent_fraction * min_side "
                f"= {self.max_extent_fraction * self.min_side:g}; got {self.min_extent}"
            )
        if not 0 <= self.min_contrast <= 200:
            raise ValueError(f"min_contrast must be in [0, 200] (RGB distance), got {self.min_contrast}")
        if self.max_clutter < 0:
            raise ValueError(f"max_clutter must be >= 0, got {self.max_clutter}")
        for name in ("blur_sigma", "noise_std"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or not 0 <= low_high[0] <= low_high[1]:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high, got {low_high}")

    def max_extent(self, height: int, width: int) -> float:
        """Largest extent allowed in an image of this size (px)."""
        return self.max_extent_fraction * min(height, width)

    def to_dict(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object, for diagnostics (IoU by size, attention weight against extent).

    class_index, class_name: its class (index into :data:`CLASSES`).
    instance_id: k for the k-th object drawn (1-based); its pixels carry k in the instance map.
    extent: diameter of the circumscribed circle (px), before any clipping at the border.
    center: (x, y) of that circle, in pixels; always inside the image.
    rotation_deg: clockwise turn from the upright pose (0 for circles and rings).
    angles_deg: triangles only: the interior angles at the three vertices, in the order of
        :func:`polygon_vertices`; each in [40, 80].
    inner_ratio: stars and rings only: inner radius / outer radius.
    bar_ratio: crosses only: bar width / bar length.
    fill: the paint kind of its fill (from :mod:`segscale.data.textures`).
    contrast: :func:`covered_contrast` of its fill against what it covered when drawn.
    drawn_pixels: pixels of its shape inside the image, occlusion ignored.
    visible_pixels: pixels still showing it in the final image (0 if fully covered).
    """

    class_index: int
    class_name: str
    instance_id: int
    extent: float
    center: tuple[float, float]
    rotation_deg: float
    angles_deg: tuple[float, float, float] | None = None
    inner_ratio: float | None = None
    bar_ratio: float | None = None
    fill: str = ""
    contrast: float = 0.0
    drawn_pixels: int = 0
    visible_pixels: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["center"] = list(self.center)
        if self.angles_deg is not None:
            data["angles_deg"] = list(self.angles_deg)
        return data


@dataclass(frozen=True, eq=False)
class ScaleShapesSample:
    """One generated image with its labels and per-object metadata.

    image: (H, W, 3) uint8 RGB.
    label: (H, W) uint8 class indices into :data:`CLASSES`.
    instances: (H, W) uint8; 0 where no object shows, k where the k-th drawn object shows.
    objects: one :class:`ShapeObject` per drawn object, in drawing order (instance_id 1, 2, ...).
    split, index: the pair that determines the sample.
    background: the paint kind of the background.
    """

    image: np.ndarray
    label: np.ndarray
    instances: np.ndarray
    objects: tuple[ShapeObject, ...]
    split: str
    index: int
    background: str = ""

    @property
    def image_id(self) -> str:
        """The file stem used in the VOC layout, e.g. ``val_000042``."""
        return image_id(self.split, self.index)

    def visible_mask(self, instance_id: int) -> np.ndarray:
        """(H, W) bool: where object ``instance_id`` (1-based, drawing order) shows."""
        if not 1 <= instance_id <= len(self.objects):
            raise ValueError(f"instance_id must be in 1..{len(self.objects)} for this sample, got {instance_id}")
        return self.instances == instance_id

    def metadata(self) -> dict:
        """Everything but the arrays, as JSON-ready plain data."""
        height, width = self.label.shape
        return {
            "id": self.image_id,
            "split": self.split,
            "index": self.index,
            "width": width,
            "height": height,
            "generator_version": GENERATOR_VERSION,
            "background": self.background,
            "objects": [obj.to_dict() for obj in self.objects],
        }


def image_id(split: str, index: int) -> str:
    """``<split>_<index, 6 digits>``: unique across splits, so all splits share one VOC folder."""
    _check_split(split)
    return f"{split}_{index:06d}"


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _check_index(index) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(
            f"index must be a non-negative integer (a sample is a split in {', '.join(SPLITS)} "
            f"and an index 0, 1, 2, ...); got {index!r}"
        )
    return int(index)


# ----------------------------------------------------------------------------- geometry


def polygon_vertices(obj: ShapeObject) -> np.ndarray:
    """The outline of a triangle, square, star or cross as (N, 2) float64 (x, y) image points.

    Vertices go clockwise on screen. Those on the circumscribed circle are exactly
    ``obj.extent / 2`` from ``obj.center``: all three of a triangle, the four corners of a
    square, the five tips of a star, the eight outer corners of a cross.
    Raises ValueError for circles and rings, which are not polygons.
    """
    radius = obj.extent / 2.0
    name = obj.class_name
    if name == "triangle":
        # Inscribed angle theorem: the arc between two vertices is twice the angle at the third.
        alpha, beta, gamma = np.radians(obj.angles_deg)
        polar = np.array([0.0, 2.0 * gamma, 2.0 * gamma + 2.0 * alpha])
        local = radius * np.stack([np.cos(polar), np.sin(polar)], axis=1)
        local = _rotate(local, -90.0)  # first vertex straight up
    elif name == "square":
        polar = np.radians(45.0 + 90.0 * np.arange(4))
        local = radius * np.stack([np.cos(polar), np.sin(polar)], axis=1)
    elif name == "star":
        polar = np.radians(-90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * obj.inner_ratio)
        local = radii[:, None] * np.stack([np.cos(polar), np.sin(polar)], axis=1)
    elif name == "cross":
        half_length = radius / math.sqrt(1.0 + obj.bar_ratio**2)  # corner (L/2, W/2) on the circle
        half_width = half_length * obj.bar_ratio
        a, b = half_length, half_width
        # Twelve corners, clockwise on screen from the right bar's lower corner.
        local = np.array(
            [(a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a), (b, -a), (b, -b), (a, -b)]
        )
    else:
        raise ValueError(f"{name!r} is not a polygon; polygons: triangle, square, star, cross")
    return _rotate(local, obj.rotation_deg) + np.asarray(obj.center)


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    """Turn (N, 2) points clockwise on screen (y points down) by ``degrees`` about the origin."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _convex_pieces(obj: ShapeObject) -> list[np.ndarray]:
    """The shape as a union of convex polygons, each (N, 2) (x, y), for the rasteriser."""
    vertices = polygon_vertices(obj)
    if obj.class_name in ("triangle", "square"):
        return [vertices]
    centre = np.asarray(obj.center)[None, :]
    if obj.class_name == "star":
        # Five kites: centre, inner vertex, tip, next inner vertex. Each is convex because
        # the segment to the centre halves the star's reflex angle at the inner vertex.
        return [np.vstack([centre, vertices[(2 * k - 1) % 10], vertices[2 * k], vertices[2 * k + 1]]) for k in range(5)]
    # cross: the two bars, from the outline's corners (see polygon_vertices).
    return [vertices[[0, 5, 6, 11]], vertices[[2, 3, 8, 9]]]


def _rasterise_convex(piece: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Pixels of ``box`` = (y0, x0, y1, x1) whose centres lie in a convex polygon: (h, w) bool.

    Each row's inside is one interval [lo, hi] of x, found from the polygon's half-planes:
    an exact, vectorised scanline fill with no per-pixel Python.
    """
    y0, x0, y1, x1 = box
    ys = np.arange(y0, y1, dtype=np.float64)  # (h,)
    # Half-plane of edge p -> q, inside to its right on screen for a clockwise polygon:
    # (q - p) x (point - p) >= 0, i.e. a x + b y + c >= 0.
    p, q = piece, np.roll(piece, -1, axis=0)
    a = -(q[:, 1] - p[:, 1])
    b = q[:, 0] - p[:, 0]
    c = -(a * p[:, 0] + b * p[:, 1])
    if np.sum(p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]) < 0:  # counter-clockwise on screen: flip
        a, b, c = -a, -b, -c
    rhs = -(b[None, :] * ys[:, None] + c[None, :])  # (h, E): need a x >= rhs
    eps = 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = rhs / a[None, :]
    lo = np.max(np.where(a[None, :] > eps, bound, -np.inf), axis=1)  # (h,)
    hi = np.min(np.where(a[None, :] < -eps, bound, np.inf), axis=1)
    flat = np.abs(a) <= eps  # horizontal edges: the row is inside iff 0 >= rhs
    blocked = np.any(flat[None, :] & (rhs > eps), axis=1)
    lo = np.where(blocked, np.inf, lo)
    xs = np.arange(x0, x1, dtype=np.float64)[None, :]
    return (xs >= lo[:, None] - eps) & (xs <= hi[:, None] + eps)


def _shape_mask(obj: ShapeObject, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The object's pixels: (box (y0, x0, y1, x1) clipped to the image, (h, w) bool mask in it)."""
    cx, cy = obj.center
    radius = obj.extent / 2.0
    if obj.class_name in ("circle", "ring"):
        xmin, xmax, ymin, ymax = cx - radius, cx + radius, cy - radius, cy + radius
    else:
        vertices = polygon_vertices(obj)
        (xmin, ymin), (xmax, ymax) = vertices.min(axis=0), vertices.max(axis=0)
    box = (
        max(0, math.ceil(ymin)),
        max(0, math.ceil(xmin)),
        min(height, math.floor(ymax) + 1),
        min(width, math.floor(xmax) + 1),
    )
    y0, x0, y1, x1 = box
    if obj.class_name in ("circle", "ring"):
        dy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
        dx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
        squared = dy * dy + dx * dx  # (h, w)
        mask = squared <= radius * radius
        if obj.class_name == "ring":
            mask &= squared >= (radius * obj.inner_ratio) ** 2  # the hole stays unpainted
        return box, mask
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for piece in _convex_pieces(obj):
        mask |= _rasterise_convex(piece, box)
    return box, mask


# ----------------------------------------------------------------------------- sampling


def _sample_shape(rng: np.random.Generator, config: ScaleShapesConfig, height: int, width: int) -> dict:
    """Class and geometry of one object (no appearance), as ShapeObject keyword arguments."""
    class_index = int(rng.integers(1, len(CLASSES)))
    name = CLASSES[class_index]
    extent = math.exp(rng.uniform(math.log(config.min_extent), math.log(config.max_extent(height, width))))
    shape = {
        "class_index": class_index,
        "class_name": name,
        "extent": extent,
        "center": (float(rng.uniform(0, width - 1)), float(rng.uniform(0, height - 1))),
        "rotation_deg": 0.0 if name in ("circle", "ring") else float(rng.uniform(0.0, 360.0)),
    }
    if name == "triangle":
        low, high = TRIANGLE_ANGLE_RANGE
        while True:  # rejection: 3/4 of the (alpha, beta) square leaves gamma in range
            alpha, beta = rng.uniform(low, high, size=2)
            gamma = 180.0 - alpha - beta
            if low <= gamma <= high:
                break
        shape["angles_deg"] = (float(alpha), float(beta), float(gamma))
    elif name == "star":
        shape["inner_ratio"] = float(rng.uniform(*STAR_INNER_RATIO_RANGE))
    elif name == "ring":
        shape["inner_ratio"] = float(rng.uniform(*RING_INNER_RATIO_RANGE))
    elif name == "cross":
        shape["bar_ratio"] = float(rng.uniform(*CROSS_BAR_RATIO_RANGE))
    return shape


def covered_contrast(fill: np.ndarray, under: np.ndarray, quantile: float = CONTRAST_QUANTILE) -> float:
    """How clearly a fill stands out from what it covers: a quantile of per-pixel RGB distance.

    fill, under: (N, 3) colours of the same N pixels, as painted and as they were before.
    Returns the ``quantile`` (default 10%) of the N Euclidean distances (0 to 441): at least
    90% of the object's pixels differ from what was there by this much or more.
    """
    if fill.shape != under.shape or fill.ndim != 2 or fill.shape[1] != 3:
        raise ValueError(f"fill and under must both be (N, 3); got {fill.shape} and {under.shape}")
    if len(fill) == 0:
        return 0.0
    difference = fill.astype(np.float32) - under.astype(np.float32)
    distance = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    return float(np.quantile(distance, quantile))


def _pick_fill(
    rng: np.random.Generator,
    config: ScaleShapesConfig,
    box: tuple[int, int, int, int],
    under: np.ndarray,
    mask: np.ndarray,
) -> tuple[str, np.ndarray, float]:
    """Draw fills until one stands out from ``under`` (the covered pixels, (N, 3)).

    Returns (kind, (N, 3) uint8 colours for the mask's pixels, contrast). After
    ``_FILL_ATTEMPTS`` misses, falls back to the solid colour (a cube corner or mid grey)
    with the highest contrast; that one always passes unless what lies under spans nearly
    every corner of the colour cube at once.
    """
    for _ in range(_FILL_ATTEMPTS):
        kind, paint = sample_fill(rng, box)
        pixels = paint[mask]
        contrast = covered_contrast(pixels, under)
        if contrast >= config.min_contrast:
            return kind, pixels, contrast
    candidates = [np.broadcast_to(colour, under.shape) for colour in _FALLBACK_COLOURS]
    contrasts = [covered_contrast(pixels, under) for pixels in candidates]
    best = int(np.argmax(contrasts))
    return "solid", np.ascontiguousarray(candidates[best]), contrasts[best]


def generate_sample(split: str, index: int, config: ScaleShapesConfig = ScaleShapesConfig()) -> ScaleShapesSample:
    """Draw sample ``index`` of ``split``; the same pair always gives the same bytes.

    Raises ValueError for a split outside ("train", "val", "test") or a negative index.
    """
    split_id = _check_split(split)
    index = _check_index(index)
    seed = np.random.SeedSequence([split_id, index, GENERATOR_VERSION])
    # Separate streams for layout, paint and camera: changing the noise range (say) leaves
    # every shape and fill of a sample where it was.
    layout_rng, paint_rng, camera_rng = (np.random.default_rng(s) for s in seed.spawn(3))

    height = int(layout_rng.integers(config.min_side, config.max_side + 1))
    width = int(layout_rng.integers(config.min_side, config.max_side + 1))
    count = int(layout_rng.integers(config.min_objects, config.max_objects + 1))
    shapes = [_sample_shape(layout_rng, config, height, width) for _ in range(count)]
    # Largest first, so small objects land on top of large ones and stay visible: a tiny
    # star drawn under a huge square would leave nothing to learn from.
    shapes.sort(key=lambda shape: -shape["extent"])

    background, canvas = sample_background(paint_rng, height, width)  # (H, W, 3) uint8
    clutter = int(paint_rng.integers(0, config.max_clutter + 1))
    if clutter:
        picture = Image.fromarray(canvas)
        draw_clutter(paint_rng, picture, clutter)
        canvas = np.array(picture)
    label = np.zeros((height, width), dtype=np.uint8)
    instances = np.zeros((height, width), dtype=np.uint8)

    drawn = []
    for instance_id, shape in enumerate(shapes, start=1):
        obj = ShapeObject(instance_id=instance_id, **shape)
        box, mask = _shape_mask(obj, height, width)
        y0, x0, y1, x1 = box
        window = canvas[y0:y1, x0:x1]  # views: writing them paints the image
        kind, pixels, contrast = _pick_fill(paint_rng, config, box, window[mask], mask)
        window[mask] = pixels
        label[y0:y1, x0:x1][mask] = obj.class_index
        instances[y0:y1, x0:x1][mask] = instance_id
        drawn.append((obj, kind, contrast, int(mask.sum())))

    visible = np.bincount(instances.ravel(), minlength=count + 1)
    objects = tuple(
        replace(
            obj,
            fill=kind,
            contrast=round(contrast, 3),
            drawn_pixels=pixels_in_image,
            visible_pixels=int(visible[obj.instance_id]),
        )
        for obj, kind, contrast, pixels_in_image in drawn
    )
    return ScaleShapesSample(
        image=_camera(camera_rng, config, canvas),
        label=label,
        instances=instances,
        objects=objects,
        split=split,
        index=index,
        background=background,
    )


def _camera(rng: np.random.Generator, config: ScaleShapesConfig, canvas: np.ndarray) -> np.ndarray:
    """Mild blur and sensor noise, so edges are not perfect steps and flat colours not flat."""
    sigma = rng.uniform(*config.blur_sigma)
    noise_std = rng.uniform(*config.noise_std)
    image = canvas
    if sigma > 0:
        image = np.asarray(Image.fromarray(canvas).filter(ImageFilter.GaussianBlur(radius=sigma)))
    if noise_std > 0:
        noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise_std)
        image = np.clip(image + noise + np.float32(0.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


# ----------------------------------------------------------------------------- dataset


class ScaleShapes(torch.utils.data.Dataset):
    """Samples 0 .. length-1 of a split, generated on demand (nothing is stored).

    ``dataset[i]`` is (image (H, W, 3) uint8 RGB, label (H, W) uint8), both numpy; sizes vary
    from image to image, so batch with a collate that crops or pads. ``dataset.sample(i)``
    gives the full :class:`ScaleShapesSample` with the per-object metadata.
    """

    def __init__(self, split: str, length: int, config: ScaleShapesConfig = ScaleShapesConfig()) -> None:
        _check_split(split)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        self.split = split
        self.length = int(length)
        self.config = config

    def __len__(self) -> int:
        return self.length

    def sample(self, i: int) -> ScaleShapesSample:
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool) and -self.length <= i < 0:
            i += self.length
        if not isinstance(i, (int, np.integer)) or not 0 <= i < self.length:
            raise IndexError(f"index {i!r} out of range for ScaleShapes({self.split!r}) of length {self.length}")
        return generate_sample(self.split, int(i), self.config)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.sample(i)
        return sample.image, sample.label

    def __repr__(self) -> str:
        return f"ScaleShapes(split={self.split!r}, length={self.length}, config={self.config})"


# ----------------------------------------------------------------------------- PASCAL VOC layout


def _palette_png(array: np.ndarray, palette: list[int], path: Path) -> None:
    picture = Image.fromarray(array, mode="P")
    picture.putpalette(palette + [0] * (768 - len(palette)))
    picture.save(path, optimize=False)


def class_palette() -> list[int]:
    """:data:`PALETTE` as a flat 768-entry PIL palette (index 255, VOC's "void", in cream)."""
    flat = [c for colour in PALETTE for c in colour] + [0] * (3 * (256 - len(PALETTE)))
    flat[3 * 255 : 3 * 256] = [224, 224, 192]
    return flat


def write_voc_layout(
    root,
    split: str,
    count: int,
    config: ScaleShapesConfig = ScaleShapesConfig(),
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write samples start .. start+count-1 of ``split`` under ``root`` in the PASCAL VOC layout.

    Files, with ``<id>`` = ``<split>_<index:06d>``::

        JPEGImages/<id>.jpg                 the image (quality 95, no chroma subsampling)
        SegmentationClass/<id>.png          palette PNG, values = class indices, colours = PALETTE
        SegmentationObject/<id>.png         palette PNG, values = instance ids (VOC colour map)
        Objects/<id>.json                   ScaleShapesSample.metadata()
        ImageSets/Segmentation/<split>.txt  one id a line; ids already listed are kept
        scaleshapes.json                    classes, palette, config, generator version

    Several calls (other splits, more indices) may share a root, but only with one config
    and generator version: mixing would make the folder lie about its contents.
    ``progress(done, count)`` is called after every image. Returns ``root`` as a Path.
    """
    _check_split(split)
    start = _check_index(start)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    root = Path(root)
    folders = {name: root / name for name in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Objects")}
    lists = root / "ImageSets" / "Segmentation"
    try:
        for folder in (*folders.values(), lists):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create the dataset folders under {root}: {error.strerror or error}") from error

    description = {
        "dataset": "ScaleShapes",
        "generator_version": GENERATOR_VERSION,
        "classes": list(CLASSES),
        "palette": [list(colour) for colour in PALETTE],
        "config": config.to_dict(),
    }
    card = root / "scaleshapes.json"
    if card.exists():
        existing = json.loads(card.read_text())
        if {k: existing.get(k) for k in description} != description:
            raise ValueError(
                f"{root} already holds ScaleShapes written with another config or generator version "
                f"(see {card}); write to an empty folder instead"
            )
    try:
        card.write_text(json.dumps(description, indent=2) + "\n")
    except OSError as error:
        raise ValueError(f"cannot write into {root}: {error.strerror or error}") from error

    class_colours = class_palette()
    instance_colours = [channel for colour in voc_color_map() for channel in colour]
    ids = []
    for done, index in enumerate(range(start, start + count), start=1):
        sample = generate_sample(split, index, config)
        stem = sample.image_id
        Image.fromarray(sample.image).save(folders["JPEGImages"] / f"{stem}.jpg", quality=95, subsampling=0)
        _palette_png(sample.label, class_colours, folders["SegmentationClass"] / f"{stem}.png")
        _palette_png(sample.instances, instance_colours, folders["SegmentationObject"] / f"{stem}.png")
        (folders["Objects"] / f"{stem}.json").write_text(json.dumps(sample.metadata()) + "\n")
        ids.append(stem)
        if progress is not None:
            progress(done, count)

    split_file = lists / f"{split}.txt"
    listed = split_file.read_text().split() if split_file.exists() else []
    split_file.write_text("".join(f"{stem}\n" for stem in sorted(set(listed) | set(ids))))
    return root
