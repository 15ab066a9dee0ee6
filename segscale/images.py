"""Turning whatever a caller holds into the HxWx3 uint8 RGB array the model reads.

:func:`as_rgb_array` accepts PIL images and numpy arrays; the size limits live here too so
that the Predictor, the app and the command line agree on them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_MAX_SIDE = 2048  # longer sides are scaled down before prediction
MIN_SIDE = 16  # below this the coarsest scales have no output cell left to look at


class ImageError(ValueError):
    """An image that cannot be used, with a message a person can act on."""


def as_rgb_array(image) -> np.ndarray:
    """PIL image or (H, W, 3) / (H, W) uint8 array -> (H, W, 3) uint8 RGB, C-contiguous.

    Transparent pixels are composited on white; greyscale is repeated to three channels.
    """
    if isinstance(image, Image.Image):
        return np.array(pil_to_rgb(image), dtype=np.uint8)  # a writable copy, which torch can wrap
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8 RGB (H, W, 3); got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(f"image arrays must be (H, W, 3) RGB; got shape {array.shape}")
    if array.shape[2] == 4:
        array = pil_to_rgb(Image.fromarray(array, mode="RGBA"))
    if not array.flags.writeable:
        array = array.copy()
    return np.ascontiguousarray(array, dtype=np.uint8)


def pil_to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB, compositing transparency (RGBA, LA, palette with transparency) on white."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float greyscale: stretch the used range to 8 bits instead of clipping to white.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def check_min_size(rgb: np.ndarray) -> None:
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(
            f"the image is {width}x{height} pixels; segscale needs at least {MIN_SIDE} pixels on each side"
        )


def cap_longest_side(rgb: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE) -> tuple[np.ndarray, bool]:
    """Scale down so the longest side is at most ``max_side``. Returns (image, was_scaled).

    Pillow's bilinear filter widens with the reduction, so this averages rather than aliases.
    """
    height, width = rgb.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return rgb, False
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.array(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)), True
