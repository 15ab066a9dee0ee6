"""How label maps are stored: one byte per pixel where the classes fit in one.

A label map at image resolution is the largest array a prediction carries (8 MB at 1024x1024 as
int64), and the app caches many. Every network here has at most 256 classes (ADE20K's 150 among
them), so their labels are uint8; a network with more keeps int64.
"""

from __future__ import annotations

import numpy as np

BYTE_CLASSES = 256  # class indices 0..255 fit in a uint8


def label_dtype(num_classes: int) -> type[np.integer]:
    """The dtype of a label map over ``num_classes`` classes: uint8 up to 256 classes, else int64."""
    return np.uint8 if int(num_classes) <= BYTE_CLASSES else np.int64


def compact_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``labels`` (class indices 0..num_classes-1) in :func:`label_dtype`; the same array if already so."""
    return np.asarray(labels).astype(label_dtype(num_classes), copy=False)
