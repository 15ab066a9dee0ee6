"""The image a page works on, wherever it came from, and the digest that keys everything computed from it.

Its own module so that each source of images (:mod:`ui.image_sources`, :mod:`ui.photos`) can make
one without importing the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImageInput:
    """The image a page works on.

    rgb: (H, W, 3) uint8, upright and capped (see :func:`segscale.images.load_image`).
    name: a file name or a sample's name (user-supplied: show it with :func:`plain`).
    source: "upload", "gallery" or "random".
    notices: what loading changed about the file, in sentences.
    ground_truth: (H, W) class indices for ScaleShapes samples; None for uploads.
    key: a digest of the pixels, the cache key of everything computed from them.
    decode_s: seconds spent reading the file (0 for samples).
    """

    rgb: np.ndarray
    name: str
    source: str
    notices: tuple[str, ...] = ()
    ground_truth: np.ndarray | None = None
    key: str = field(default="")
    decode_s: float = 0.0


def image_key(rgb: np.ndarray) -> str:
    """A digest of an image's shape and pixels."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(rgb.shape).encode())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()
