"""A few real photos to try a photo network on: people, an animal and a vehicle, each at several sizes.

The photos are scikit-image's sample images (``skimage.data``), an optional extra
(``pip install "segscale[photos]"`` or ``pip install scikit-image``): none is copied into this
repository. Only images that ship inside the scikit-image wheel are used (the others are
downloaded by ``pooch`` on first use), so the gallery works offline; each carries the credit and
licence its ``skimage.data`` docstring states (public domain or CC0). Stereo "motorcycle" is left
out: its docstring names no licence.

Sizes: a photo network sees objects in pixels, so the same photo at 1/2 and 1/4 of its size
shows the same people, cat or rocket as if they stood twice and four times as far away; the
attention over scales should move towards the finer scales as they shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INSTALL_HINT = 'pip install "segscale[photos]" (or pip install scikit-image)'
SIZES = (1.0, 0.5, 0.25)  # the fractions of its own size each photo is offered at


@dataclass(frozen=True)
class Photo:
    """One sample photo: ``function`` in ``skimage.data`` returns it as an array; ``credit`` is shown under it."""

    name: str
    function: str
    subject: str  # what is in it, in the PASCAL VOC class names a photo network knows
    credit: str


PHOTOS: tuple[Photo, ...] = (
    Photo(
        "Astronaut",
        "astronaut",
        "a person, close up",
        "Eileen Collins, NASA (NASA Great Images database); public domain. Via scikit-image (skimage.data.astronaut).",
    ),
    Photo(
        "Cameraman",
        "camera",
        "a person with a camera, buildings behind (greyscale)",
        "Lav Varshney; CC0. Via scikit-image (skimage.data.camera).",
    ),
    Photo(
        "Chelsea the cat",
        "chelsea",
        "a cat",
        "Stefan van der Walt; CC0. Via scikit-image (skimage.data.chelsea).",
    ),
    Photo(
        "Rocket launch",
        "rocket",
        "a rocket on its launch pad (no VOC class: a vehicle the network has not seen)",
        "SpaceX (DSCOVR on Falcon 9), released into the public domain. Via scikit-image (skimage.data.rocket).",
    ),
    Photo(
        "Coffee cup",
        "coffee",
        "a cup on a table (VOC has no cup: dining table at most)",
        "Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0. Via scikit-image (skimage.data.coffee).",
    ),
)


class PhotosUnavailable(ImportError):
    """scikit-image is not installed; the message says how to install it."""


def photos_available() -> bool:
    """Whether scikit-image (and so the sample photos) can be imported here."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def photo_by_name(name: str) -> Photo:
    for photo in PHOTOS:
        if photo.name == name:
            return photo
    raise ValueError(f"unknown photo {name!r}; valid: {', '.join(p.name for p in PHOTOS)}")


def load_photo(name: str, size: float = 1.0) -> np.ndarray:
    """The photo ``name`` as (H, W, 3) uint8 RGB, resized to ``size`` of its own size (area averaging).

    Raises :class:`PhotosUnavailable` (with the command to install it) without scikit-image.
    """
    photo = photo_by_name(name)
    if size not in SIZES:
        raise ValueError(f"size {size:g} not offered; valid: {', '.join(f'{s:g}' for s in SIZES)}")
    try:
        from skimage import data
    except ImportError:
        raise PhotosUnavailable(
            f"the sample photos come with scikit-image, which is not installed: {INSTALL_HINT}"
        ) from None
    rgb = np.asarray(getattr(data, photo.function)())
    if rgb.ndim == 2:  # the cameraman is greyscale
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb[..., :3].astype(np.uint8))
    if size != 1.0:
        from PIL import Image

        height, width = rgb.shape[:2]
        smaller = (max(1, round(width * size)), max(1, round(height * size)))
        rgb = np.asarray(Image.fromarray(rgb).resize(smaller, Image.Resampling.BOX))
    return rgb


def photo_label(name: str, size: float) -> str:
    """ "Astronaut, 1/2 size" as the gallery lists it."""
    return name if size == 1.0 else f"{name}, 1/{round(1 / size)} size"


def shapes_model_on_photo_note(classes) -> str | None:
    """The one line said wherever a ScaleShapes model meets an image of one's own (the app, ``predict``); None for
    any other model. The app follows it with how to get a photo network."""
    from .data.scaleshapes import CLASSES

    if tuple(classes) != CLASSES:
        return None
    return (
        f"This model knows only ScaleShapes: six flat shapes ({', '.join(CLASSES[1:])}) on synthetic textures, never a "
        "photo, so on a photo its labels mean nothing about what is in the picture; only how it weighs the scales does."
    )
