"""Photos and photo networks in the app: the photo gallery, and what a ScaleShapes model makes of a photo.

Widget keys: ``photo``, ``photo_size`` (with the page's ``key_prefix``). The photos come from
:mod:`segscale.photos` (scikit-image's sample images, an optional extra); without scikit-image
the gallery says how to install it and the rest of the app works as before.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from segscale import photos
from segscale.checkpoint import CheckpointMetadata
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.images import DEFAULT_MAX_SIDE, cap_longest_side
from segscale.torchvision_import import fetch_command, import_command, is_imported
from ui.chosen_image import ImageInput, image_key
from ui.messages import plain

EXAMPLE_KIND = "deeplabv3_mobilenet_v3_large"  # the kind the app's hints name: the smallest DeepLabV3


def is_photo_model(metadata: CheckpointMetadata) -> bool:
    """A network for photos: an imported torchvision model (or one whose card says it predicts photos)."""
    return is_imported(metadata) or bool((metadata.training or {}).get("photo_model"))


def is_scaleshapes_model(metadata: CheckpointMetadata) -> bool:
    return tuple(metadata.classes) == SCALESHAPES_CLASSES


@st.cache_data(max_entries=16, show_spinner=False)
def _photo(name: str, size: float, max_side: int) -> np.ndarray:
    rgb, _ = cap_longest_side(photos.load_photo(name, size), max_side, Image.Resampling.BOX)  # as for uploads
    return rgb


def photo_gallery_input(key_prefix: str = "", max_side: int = DEFAULT_MAX_SIDE) -> ImageInput | None:
    """A photo and its size from :data:`segscale.photos.PHOTOS`, its
    credit below; None (and how to install) without scikit-image."""
    if not photos.photos_available():
        st.info(
            "The photo gallery uses scikit-image's sample photos, and scikit-image is not installed. Run "
            f"`{photos.INSTALL_HINT}` and reload, or upload a photo of your own.",
            icon=":material/photo_library:",
        )
        return None
    left, right = st.columns([3, 2])
    with left:
        name = st.selectbox(
            "Photo",
            [p.name for p in photos.PHOTOS],
            key=f"{key_prefix}photo",
            format_func=lambda n: f"{n}: {photos.photo_by_name(n).subject}",
            help="scikit-image's sample photos (public domain or CC0), shipped with scikit-image, not with segscale.",
        )
    with right:
        size = st.radio(
            "Size",
            photos.SIZES,
            key=f"{key_prefix}photo_size",
            horizontal=True,
            format_func=lambda s: "full" if s == 1.0 else f"1/{round(1 / s)}",
            help=(
                "The same photo smaller: its objects are fewer pixels across, "
                "as if farther away. Watch the weights move between scales."
            ),
        )
    rgb = _photo(name, float(size), max_side)
    st.caption(f"{plain(photos.photo_by_name(name).credit)} Shown at {rgb.shape[1]}x{rgb.shape[0]} px.")
    return ImageInput(rgb, photos.photo_label(name, float(size)), "gallery", key=image_key(rgb))


def photo_on_shapes_model_notice(metadata: CheckpointMetadata, image: ImageInput) -> None:
    """For an uploaded image and a ScaleShapes model: what the model
    knows, what its maps mean, and how to get a photo network."""
    if image.source != "upload" or not is_scaleshapes_model(metadata):
        return
    st.info(
        f"**{photos.shapes_model_on_photo_note(metadata.classes)}** Its labels come from wherever an edge or a "
        "texture looks a little like a shape; *how* it weighs the scales still shows where the attention trusts the "
        "fine or the coarse copy.  \n"
        "To inspect a network trained on photos (21 PASCAL VOC classes: person, cat, car, ...), import one of "
        f"torchvision's: `{fetch_command(EXAMPLE_KIND)}` on a machine with the internet, then "
        f"`{import_command(EXAMPLE_KIND)}`, and choose it in the Checkpoint box. The *Checkpoints* page has the steps.",
        icon=":material/info:",
    )
