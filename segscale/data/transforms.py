"""Training augmentation as in DeepLab (which Chen et al. train with) and the numpy-to-tensor step.

:class:`TrainAugmentation` rescales an (image, label) pair by a random factor, pads it to
the crop size, crops a random window and flips it half the time. It draws every random
number from a ``numpy.random.Generator`` handed in by the caller, so a run seeded the same
way sees the same crops, and a resumed run can recreate the generator (the trainer seeds one per
(seed, step, sample)) instead of depending on hidden global state.

Validation runs on whole images, so it needs no transform beyond :func:`to_tensors`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..config import IGNORE_INDEX
from ..modeling.geometry import scaled_size

# The ImageNet mean colour (0.485, 0.456, 0.406) in 0..255: padding with it becomes ~0 after
# normalisation, as DeepLab's padding with its mean pixel did, so padding looks like "no signal".
MEAN_COLOR = (124, 116, 104)


@dataclass(frozen=True)
class TrainAugmentation:
    """Random rescale, pad, random crop and random horizontal flip of an (image, label) pair.

    crop_size: side of the square output (DeepLab and the paper: 321).
    scale_range: (low, high) of the uniform rescale factor; (1, 1) turns rescaling off.
    flip: flip left-right with probability 1/2.
    ignore_index: the label value padding gets, counted in no loss.
    pad_color: RGB the image is padded with where it is smaller than the crop (see ``MEAN_COLOR``).

    The image is resized bilinearly and the label by nearest neighbour, so no label value is
    invented; both use PIL's pixel-centre convention, which keeps them registered on each other.
    Padding goes to the bottom and right, as in DeepLab.
    """

    crop_size: int = 321
    scale_range: tuple[float, float] = (0.5, 1.5)
    flip: bool = True
    ignore_index: int = IGNORE_INDEX
    pad_color: tuple[int, int, int] = MEAN_COLOR

    def __post_init__(self) -> None:
        if int(self.crop_size) != self.crop_size or self.crop_size < 1:
            raise ValueError(f"crop_size must be a positive integer, got {self.crop_size!r}")
        try:
            low, high = (float(v) for v in self.scale_range)
        except (TypeError, ValueError) as error:
            raise ValueError(f"scale_range must be two numbers (low, high), got {self.scale_range!r}") from error
        if not 0 < low <= high < float("inf"):
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range!r}")
        if not 0 <= self.ignore_index <= 255:
            raise ValueError(f"ignore_index must fit in a uint8 label (0..255), got {self.ignore_index}")
        pad_color = tuple(int(v) for v in self.pad_color)
        if len(pad_color) != 3 or not all(0 <= v <= 255 for v in pad_color):
            raise ValueError(f"pad_color must be three values in 0..255, got {self.pad_color!r}")
        object.__setattr__(self, "crop_size", int(self.crop_size))
        object.__setattr__(self, "scale_range", (low, high))
        object.__setattr__(self, "pad_color", pad_color)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 (H, W, 3), label uint8 (H, W)) -> the same at (crop_size, crop_size).

        Four numbers are drawn from ``rng`` on every call, in this order: the scale, the crop's
        top and left offsets, the flip; so one call consumes the same draws whatever the image.
        """
        _check_pair(image, label)
        scale = rng.uniform(*self.scale_range)
        height, width = scaled_size(label.shape, scale)
        if (height, width) != label.shape:
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
            label = np.asarray(Image.fromarray(label).resize((width, height), Image.Resampling.NEAREST))

        crop = self.crop_size
        padded_height, padded_width = max(height, crop), max(width, crop)
        if (padded_height, padded_width) != (height, width):
            padded_image = np.empty((padded_height, padded_width, 3), dtype=np.uint8)
            padded_image[...] = self.pad_color
            padded_image[:height, :width] = image
            padded_label = np.full((padded_height, padded_width), self.ignore_index, dtype=np.uint8)
            padded_label[:height, :width] = label
            image, label = padded_image, padded_label

        top = int(rng.integers(0, padded_height - crop + 1))
        left = int(rng.integers(0, padded_width - crop + 1))
        image = image[top : top + crop, left : left + crop]
        label = label[top : top + crop, left : left + crop]
        heads = rng.random() < 0.5  # drawn even without flipping, to keep the draw count fixed
        if self.flip and heads:
            image, label = image[:, ::-1], label[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(label)


def image_to_tensor(image: np.ndarray, mean, std) -> Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W) as (x / 255 - mean) / std, mean and std per channel in 0..1.

    mean and std are arguments, not defaults, because they belong to the model being trained
    (its checkpoint metadata records them) rather than to the data.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(3, 1, 1)
    pixels = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float()  # (3, H, W)
    return (pixels / 255.0 - mean_t) / std_t


def to_tensors(image: np.ndarray, label: np.ndarray, mean, std) -> tuple[Tensor, Tensor]:
    """(image uint8 (H, W, 3), label uint8 (H, W)) -> (float32 (3, H, W) normalised, int64 (H, W))."""
    _check_pair(image, label)
    return image_to_tensor(image, mean, std), torch.from_numpy(label.astype(np.int64))


def _check_pair(image: np.ndarray, label: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"expected a uint8 (H, W) label, got {label.dtype} {label.shape}")
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape[:2]} and label {label.shape} must have the same height and width")
