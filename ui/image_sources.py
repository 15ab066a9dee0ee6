"""The image a page works on, chosen from the gallery, an upload or a random ScaleShapes sample.

Widget keys (for ``AppTest`` and for pages sharing state): ``image_source``, ``upload``,
``gallery_index``, ``new_sample`` (and ``photo``, ``photo_size`` of :mod:`ui.photos`). Pass
``key_prefix`` to use the chooser twice on one page. The latest usable upload is remembered for
the session, so another page shows it without a new upload. :func:`page_image_input` is the
chooser of a page that predicts on one image, with what that page says beside it.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from segscale.data.scaleshapes import generate_sample
from segscale.images import DEFAULT_MAX_SIDE, MIN_SIDE, READABLE_DESCRIPTION, ImageError, load_image
from ui.chosen_image import ImageInput, image_key
from ui.limits import CACHE_TTL_S, DECODED_UPLOAD_CACHE_ENTRIES, upload_limit_text
from ui.messages import plain, show_error, show_notices
from ui.model_loading import LoadedModel
from ui.photos import is_photo_model, photo_gallery_input, photo_on_shapes_model_notice
from ui.session import LAST_UPLOAD_KEY

GALLERY_SPLIT, GALLERY_SIZE = "val", 12
RANDOM_SPLIT = "test"  # "new random sample" draws from the test split, never seen in training
IMAGE_SOURCES = ("Gallery", "Upload", "Random sample")
PHOTO_IMAGE_SOURCES = ("Gallery", "Upload")  # a photo network's gallery is photos; random samples are ScaleShapes'


@st.cache_data(max_entries=64, show_spinner=False)
def scaleshapes_sample(split: str, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(image, label, object count) of a ScaleShapes sample; generated once per process."""
    sample = generate_sample(split, index)
    return sample.image, sample.label, len(sample.objects)


@st.cache_data(max_entries=DECODED_UPLOAD_CACHE_ENTRIES, ttl=CACHE_TTL_S, show_spinner=False)
def decode_upload(data: bytes, name: str, max_side: int) -> tuple[np.ndarray, tuple[str, ...], float]:
    """:func:`load_image` on uploaded bytes, cached on them: (rgb, notices, seconds). Raises ImageError."""
    started = time.perf_counter()
    loaded = load_image(data, name, max_side=max_side)
    return loaded.rgb, loaded.notices, time.perf_counter() - started


def _sample_input(split: str, index: int, source: str) -> ImageInput:
    image, label, _ = scaleshapes_sample(split, index)
    return ImageInput(image, f"ScaleShapes {split} #{index}", source, ground_truth=label, key=image_key(image))


def image_input(key_prefix: str = "", max_side: int = DEFAULT_MAX_SIDE, photos: bool = False) -> ImageInput | None:
    """Image source chooser (gallery, upload, random sample) and its widget.

    ``photos``: the model is a photo network, so the gallery offers photos (:mod:`ui.photos`)
    instead of ScaleShapes samples.

    Returns the chosen image, or None with a message on the page (nothing uploaded yet, or an
    unusable file); the page keeps working either way, and another source can be picked.
    """
    # A photo network is not offered ScaleShapes' random samples: their truth is in ScaleShapes' classes, which
    # such a network does not have, so neither its labels nor its palette could be compared with it.
    sources = PHOTO_IMAGE_SOURCES if photos else IMAGE_SOURCES
    if st.session_state.get(f"{key_prefix}image_source") not in (None, *sources):
        st.session_state[f"{key_prefix}image_source"] = sources[0]
    source = st.radio("Image", sources, key=f"{key_prefix}image_source", horizontal=True, label_visibility="collapsed")
    if source == "Upload":
        upload_key = f"{key_prefix}upload"
        uploaded = st.file_uploader(
            "Upload an image",
            key=upload_key,
            on_change=_forget_removed_upload,
            args=(upload_key,),
            help=f"{READABLE_DESCRIPTION} (a GIF's first frame), at least {MIN_SIDE}x{MIN_SIDE} pixels. "
            f"Larger than {max_side} px on a side is scaled down. {upload_limit_text()}",
        )
        if uploaded is not None:
            name, data = uploaded.name, uploaded.getvalue()
        elif LAST_UPLOAD_KEY in st.session_state:  # uploaded on another page of this session
            name, data = st.session_state[LAST_UPLOAD_KEY]
            st.caption(f"{plain(name)}, uploaded earlier in this session. Upload another file above to replace it.")
        else:
            st.info(f"Upload an image ({READABLE_DESCRIPTION}), or choose the gallery.", icon=":material/upload:")
            return None
        try:
            rgb, notices, decode_s = decode_upload(data, name, max_side)
        except ImageError as error:
            show_error(str(error), "This file cannot be used.")
            st.caption("Replace the file above (or remove it with ×), or pick the gallery.")
            return None
        st.session_state[LAST_UPLOAD_KEY] = (name, data)
        return ImageInput(rgb, name, "upload", notices, None, image_key(rgb), decode_s)

    if source == "Gallery" and photos:
        return photo_gallery_input(key_prefix, max_side)
    if source == "Gallery":
        index = st.selectbox(
            "ScaleShapes sample",
            list(range(GALLERY_SIZE)),
            key=f"{key_prefix}gallery_index",
            format_func=lambda i: _gallery_label(GALLERY_SPLIT, i),
            help=f"Built-in images from the ScaleShapes {GALLERY_SPLIT} split; their ground truth is shown too.",
        )
        return _sample_input(GALLERY_SPLIT, int(index), "gallery")

    state_key = f"{key_prefix}random_index"
    if (
        st.button("New random sample", key=f"{key_prefix}new_sample", icon=":material/casino:")
        or state_key not in st.session_state
    ):
        st.session_state[state_key] = int(np.random.default_rng().integers(0, 100_000))
    return _sample_input(RANDOM_SPLIT, st.session_state[state_key], "random")


def _forget_removed_upload(upload_key: str) -> None:
    """The person removed the file (×): do not bring it back from the session's memory."""
    if st.session_state.get(upload_key) is None:
        st.session_state.pop(LAST_UPLOAD_KEY, None)


def _gallery_label(split: str, index: int) -> str:
    image, _, objects = scaleshapes_sample(split, index)
    return f"{split} #{index}: {image.shape[1]}x{image.shape[0]} px, {objects} object{'s' if objects != 1 else ''}"


def page_image_input(
    model: LoadedModel | None, max_side: int = DEFAULT_MAX_SIDE, notices_here: bool = True
) -> ImageInput | None:
    """The image chooser of a page that predicts on one image, with what the page says about the image under it.

    The gallery offers photos when the model is a photo network; an upload to a ScaleShapes model gets a note on
    what such a model makes of a photo. ``notices_here``: list what loading changed about the file right under the
    chooser; the main view lists it under its summary of the image instead. Returns None as :func:`image_input`.
    """
    image = image_input(max_side=max_side, photos=model is not None and is_photo_model(model.metadata))
    if image is None:
        return None
    if notices_here:
        show_notices(image.notices)
    if model is not None:
        photo_on_shapes_model_notice(model.metadata, image)
    return image
