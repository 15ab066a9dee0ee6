"""What every page of segscale's app shares: the cached model, the pickers, ``predict``, session keys, text safety.

The model is loaded once per process (:func:`load_predictor`, ``st.cache_resource``, used
read-only); a prediction is cached on (checkpoint, image, scales, merge) (:func:`predict`), so
moving a display slider never runs the model again. Each page's own sections live in a module
of their own beside this one (``ui.main_view``, ``ui.inspector``, ...); the small drawing
helpers in ``ui.widgets``. Nothing in ``segscale/`` imports Streamlit; what a model offers
(merges, scale sets) is asked of its :class:`~segscale.predictor.Predictor`.

Widget keys (for ``AppTest`` and for pages sharing state): ``checkpoint``, ``merge``,
``scale_preset``, ``custom_scales``, ``image_source``, ``upload``, ``gallery_index``,
``new_sample`` (and ``photo``, ``photo_size`` of :mod:`ui.photos`).
Pass ``key_prefix`` to use a control twice on one page.

Across pages: :func:`keep_choices` carries the checkpoint, scale set and image choice from
page to page, the latest uploaded image is remembered for the session (another page shows
it without a new upload), and a checkpoint uploaded on the Checkpoints page can be used on
every page of the session.

Text safety: strings a person supplies (file names) go through :func:`plain` before they
reach Markdown, and nothing is rendered with ``unsafe_allow_html``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from segscale.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint_bytes,
)
from segscale.config import normalize_scales
from segscale.data.scaleshapes import generate_sample
from segscale.formatting import format_scale_set, scale_label
from segscale.images import (
    DEFAULT_MAX_SIDE,
    MIN_SIDE,
    READABLE_DESCRIPTION,
    ImageError,
    load_image,
)
from segscale.inference import FastPathOptions
from segscale.merges import ATTENTION_HEAD, GATE_HEAD, MERGES, merge_info
from segscale.predictor import Prediction, Predictor

LOG = logging.getLogger("segscale.app")

APP_DIR = Path(__file__).resolve().parent.parent  # the folder of app.py
CHECKPOINT_DIR_ENV = "SEGSCALE_CHECKPOINT_DIR"
DEFAULT_CHECKPOINT = "scaleshapes_demo.pt"
# Scale sets offered besides "custom"; each is shown only when the checkpoint supports it.
CUSTOM = "custom"
CUSTOM_STEP = 0.05  # the grid of scales a custom set picks from, inside the checkpoint's range
MAX_CUSTOM_SCALES = 8  # more maps per row than a page can show legibly, and each scale is another forward pass
GALLERY_SPLIT, GALLERY_SIZE = "val", 12
RANDOM_SPLIT = "test"  # "new random sample" draws from the test split, never seen in training
IMAGE_SOURCES = ("Gallery", "Upload", "Random sample")
PHOTO_IMAGE_SOURCES = ("Gallery", "Upload")  # a photo network's gallery is photos; random samples are ScaleShapes'
MERGE_HELP = {name: merge.help for name, merge in MERGES.items()}  # the merge radio's help, from the registry
LAST_PREDICTION_KEY = "segscale.last_prediction"  # session state: the latest Prediction shown, for other pages
LAST_UPLOAD_KEY = "segscale.last_upload"  # session state: (name, bytes) of the latest usable image uploaded on any page
UPLOADED_CHECKPOINTS_KEY = "segscale.uploaded_checkpoints"  # session state: {option: (file name, bytes)}
UPLOADED_PREFIX = "uploaded: "  # how a checkpoint uploaded this session is named in the checkpoint box
# Widgets whose choice follows the person from page to page (see keep_choices).
SHARED_CHOICES = (
    "checkpoint",
    "merge",
    "scale_preset",
    "custom_scales",
    "image_source",
    "gallery_index",
    "photo",
    "photo_size",
)

# What the app may keep in memory, so that a server that runs for days does not grow. st.cache_data
# keeps each entry pickled, once per process, shared by every session; each cached function keeps at most its number of
# entries (least recently used out first) and drops an entry CACHE_TTL_S after computing it, so an
# idle server gives its memory back. Sizes per entry, measured with the demo checkpoint at three
# scales (docs/APP.md): a Prediction is 3.4 MB for 512x512 and 41 MB at load_image's 2048 px cap
# (2048x1536; its int64 labels dominate), a display view about 6-8 MB whatever the image, a
# decoded upload at most 9.4 MB: at worst 16 x 41 + 16 x 8 + 8 x 9.4, about 0.85 GB for these three.
# server.maxCacheDataSize (.streamlit/config.toml, 1 GB) bounds every cache together, whatever each holds.
CACHE_TTL_S = 3600  # an hour: long enough for a person's visit, short enough to free an idle server
PREDICTION_CACHE_ENTRIES = 16  # eight people at once, each with the image they look at and the one before
VIEW_CACHE_ENTRIES = 16  # display maps, inspector grids, merge comparisons: one or two per prediction
DECODED_UPLOAD_CACHE_ENTRIES = 8  # a file is decoded once per visit; only re-runs of the same page hit it
DIAGNOSTICS_CACHE_ENTRIES = 8  # scale-diagnostics runs and their figures: few people ask for them
UPLOADED_CHECKPOINTS_PER_SESSION = 3  # checkpoint bytes a session keeps to choose from (oldest dropped)


# ----------------------------------------------------------------------------- text


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it literally: no links, images, HTML, LaTeX or icons."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text).replace("\n", " "))


def show_error(message: str, title: str = "") -> None:
    """A red message box: ``title`` in bold, then the message (as literal text), never a traceback."""
    prefix = f"**{plain(title)}** " if title else ""
    st.error(prefix + plain(message), icon=":material/error:")


def show_notices(notices) -> None:
    """One blue box listing what was changed about an input (image notices), if anything was."""
    notices = list(notices)
    if notices:
        st.info("\n".join(f"- {plain(n)}" for n in notices), icon=":material/info:")


def keep_choices(keys: Sequence[str] = SHARED_CHOICES) -> None:
    """Carry the sidebar and image choices from page to page; call it at the top of every page.

    Streamlit forgets a widget's value at the end of a run that does not draw it (any other
    page). Writing the value back into the session state before the widgets are drawn keeps
    it, Streamlit's documented way; a value the next page does not offer falls back to that
    page's default.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


# ----------------------------------------------------------------------------- checkpoints and model


def checkpoint_dir() -> Path:
    """``$SEGSCALE_CHECKPOINT_DIR``, else ``checkpoints/`` next to app.py."""
    configured = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(configured).expanduser() if configured else APP_DIR / "checkpoints"


def list_checkpoints(folder: Path | None = None) -> list[Path]:
    """Every ``.pt`` in the folder, the default checkpoint first, then by name."""
    folder = checkpoint_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    found = sorted(path for path in folder.glob("*.pt") if path.is_file())
    return sorted(found, key=lambda path: (path.name != DEFAULT_CHECKPOINT, path.name.lower()))


@dataclass(frozen=True)
class LoadedModel:
    """A predictor as cached for the whole process (shared by sessions, so only ever read)."""

    predictor: Predictor
    path: Path
    key: str  # path, size and modification time: a replaced file is a new model
    load_s: float

    @property
    def metadata(self) -> CheckpointMetadata:
        return self.predictor.metadata


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_model(key: str, path: str, autocast: str = "auto") -> LoadedModel:
    started = time.perf_counter()
    predictor = Predictor.from_checkpoint(path, options=FastPathOptions(autocast=autocast))
    return LoadedModel(predictor, Path(path), key, time.perf_counter() - started)


def _precision_key(autocast: str) -> str:
    return "" if autocast == "auto" else f"|autocast={autocast}"


def load_predictor(path: Path, autocast: str = "auto") -> LoadedModel:
    """The model of a checkpoint file, loaded once per process; raises CheckpointError.

    Cached on the file's size and modification time, so a checkpoint replaced on disk (a
    better model trained meanwhile) is read again. The predictor is shared by every session
    and must be used read-only (``Predictor.predict`` is). ``autocast="off"`` gives a float32
    copy (the pixel inspector's: its numbers are read digit by digit), a model of its own
    with a cache key of its own.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name}: no such file in {path.parent}")
    return _load_model(file_key(path) + _precision_key(autocast), str(path), autocast)


def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_uploaded_model(key: str, name: str, autocast: str, _data: bytes) -> LoadedModel:
    started = time.perf_counter()
    model, metadata = load_checkpoint_bytes(_data, name)
    predictor = Predictor(model, metadata, options=FastPathOptions(autocast=autocast))
    return LoadedModel(predictor, Path(name), key, time.perf_counter() - started)


def load_uploaded_predictor(name: str, data: bytes, autocast: str = "auto") -> LoadedModel:
    """The model in an uploaded checkpoint's bytes (read with ``weights_only=True``); raises CheckpointError.

    Cached on a digest of the bytes: only a session holding the file can ask for it.
    """
    return _load_uploaded_model(f"upload|{bytes_digest(data)}" + _precision_key(autocast), name, autocast, data)


def uploaded_checkpoints() -> dict[str, tuple[str, bytes]]:
    """The checkpoints this session chose to use from the Checkpoints page: {option: (file name, bytes)}."""
    return st.session_state.get(UPLOADED_CHECKPOINTS_KEY, {})


def use_uploaded_checkpoint(name: str, data: bytes) -> str:
    """Offer an uploaded checkpoint in every checkpoint box of this session, and choose it; returns its option.

    The session keeps the last :data:`UPLOADED_CHECKPOINTS_PER_SESSION` of them (their bytes stay in memory).
    """
    option = f"{UPLOADED_PREFIX}{name}"
    kept = {key: value for key, value in uploaded_checkpoints().items() if key != option}
    kept[option] = (name, data)  # the newest last; the oldest go, so a session holds a bounded number of files
    st.session_state[UPLOADED_CHECKPOINTS_KEY] = dict(list(kept.items())[-UPLOADED_CHECKPOINTS_PER_SESSION:])
    st.session_state["checkpoint"] = option
    return option


def checkpoint_picker(key_prefix: str = "", autocast: str = "auto") -> LoadedModel | None:
    """Checkpoint selector with the chosen model's card; None (and an error shown) if none loads.

    Offers every ``.pt`` of the checkpoint folder, then the checkpoints this session uploaded
    on the Checkpoints page. ``autocast="off"`` loads a float32 copy (see :func:`load_predictor`).
    """
    folder = checkpoint_dir()
    paths = list_checkpoints(folder)
    uploaded = uploaded_checkpoints()
    if not paths and not uploaded:
        show_error(
            f"No checkpoint (.pt file) in {folder}. Put one there, or point the environment variable "
            f"{CHECKPOINT_DIR_ENV} to a folder that has one.",
            "No model.",
        )
        return None
    names = [path.name for path in paths] + list(uploaded)
    name = st.selectbox(
        "Checkpoint",
        names,
        key=f"{key_prefix}checkpoint",
        help=f"Every .pt file in {folder}" + (", and the checkpoints you uploaded in this session" if uploaded else ""),
    )
    try:
        with st.spinner(f"Loading {name}…"):
            if name in uploaded:
                model = load_uploaded_predictor(*uploaded[name], autocast=autocast)
            else:
                model = load_predictor(folder / name, autocast)
    except CheckpointError as error:
        show_error(str(error), "This checkpoint cannot be used.")
        return None
    checkpoint_card(model.metadata)
    return model


def checkpoint_card(metadata: CheckpointMetadata) -> None:
    """Name, classes, trained scale set, head and score of a checkpoint, as a few short lines."""
    model = metadata.model
    low, high = metadata.scale_range
    lines = [
        f"**{plain(metadata.name or 'unnamed model')}**",
        f"Classes ({len(metadata.classes)}): {plain(', '.join(metadata.classes))}",
        f"Trained scale set: {plain(format_scale_set(model.scales))}, merge {plain(model.merge)}",
        f"{plain(_head_description(model.merge, model.head.kind))}; "
        f"scales supported: {plain(f'{low:g}')} to {plain(f'{high:g}')}",
    ]
    miou = metadata.metrics.get("val_miou") if isinstance(metadata.metrics, dict) else None
    if isinstance(miou, (int, float)):
        lines.append(f"Validation mIoU: {100 * miou:.1f}%")
    st.caption("  \n".join(lines))


def _head_description(merge: str, head_kind: str) -> str:
    """The head a model has, named first: the checkpoint's name above says the same."""
    head = merge_info(merge).head
    if head is ATTENTION_HEAD:
        return f"Attention head: {head_kind}"
    if head is GATE_HEAD:
        return "Gate head: hierarchical attention (Tao et al. 2020), no softmax attention head"
    return f"Attention head: none, merges by {merge}"


def merge_picker(model: LoadedModel, key_prefix: str = "") -> str:
    """Radio of the merges the model offers (``Predictor.offered_merges``), its own merge first chosen.

    Attention needs an attention head, hierarchical a gate head; a caption under the radio says
    which merges are not offered and why (:func:`not_offered_note`).
    """
    predictor = model.predictor
    modes = list(predictor.offered_merges)
    key = f"{key_prefix}merge"
    if st.session_state.get(key) not in modes:  # first visit, or a choice this checkpoint does not offer
        # Set before the radio is drawn (not as its index): Streamlit's documented way, so the
        # radio and the session agree and no "default value and session state" warning shows.
        st.session_state[key] = predictor.default_merge if predictor.default_merge in modes else modes[0]
    choice = st.radio(
        "Merge over scales",
        modes,
        key=key,
        horizontal=True,
        help="  \n".join(MERGE_HELP[mode] for mode in modes),
    )
    not_offered_note(model)
    return choice


def not_offered_text(model: LoadedModel) -> str | None:
    """ "Not offered: hierarchical, since this model has no gate head ..." or None when every merge is offered."""
    missing = model.predictor.unoffered_merges
    if not missing:
        return None
    return "Not offered: " + "; ".join(f"{merge}, since {reason}" for merge, reason in missing.items()) + "."


def not_offered_note(model: LoadedModel) -> None:
    """One caption naming the merges this checkpoint cannot do, and why (nothing when it can do all)."""
    text = not_offered_text(model)
    if text:
        st.caption(plain(text))


def scale_set_picker(model: LoadedModel, merge: str, key_prefix: str = "") -> tuple[float, ...] | None:
    """Preset or custom scale set, validated by ``Predictor.check_request``; None (error shown) if invalid."""
    metadata = model.metadata
    presets = model.predictor.offered_scale_sets(merge)
    trained = metadata.model.scales

    def label(option) -> str:
        if option == CUSTOM:
            return "custom…"
        text = format_scale_set(option)
        return f"{text} (trained)" if tuple(option) == tuple(trained) else text

    options: list = list(presets)
    paper_attention = model.predictor.fixed_scale_set(merge)
    if not paper_attention:
        options.append(CUSTOM)
    choice = st.radio("Scale set", options, key=f"{key_prefix}scale_preset", format_func=label, horizontal=True)
    if paper_attention:
        st.caption("This checkpoint's attention head is the paper's: it fuses only its trained scale set.")
    if choice == CUSTOM:
        grid = model.predictor.custom_scale_grid(CUSTOM_STEP)
        state_key = f"{key_prefix}custom_scales"
        if state_key in st.session_state:  # a carried choice: drop scales this checkpoint does not offer
            st.session_state[state_key] = [s for s in st.session_state[state_key] if s in grid][:MAX_CUSTOM_SCALES]
        picked = st.multiselect(
            "Custom scales",
            grid,
            default=None if state_key in st.session_state else [s for s in trained if s in grid][:MAX_CUSTOM_SCALES],
            key=state_key,
            format_func=scale_label,
            max_selections=MAX_CUSTOM_SCALES,
            help=(
                f"Up to {MAX_CUSTOM_SCALES} scales from {metadata.scale_range[0]:g} "
                f"to {metadata.scale_range[1]:g}, the range this model was trained on."
            ),
        )
        if len(picked) == MAX_CUSTOM_SCALES:
            st.caption(
                f"{MAX_CUSTOM_SCALES} scales is the most a custom set takes: more maps would "
                "not fit a row legibly, and each scale costs another pass of the network."
            )
        if not picked:
            show_error("Pick at least one scale for the custom set.", "No scales.")
            return None
        choice = tuple(sorted(picked, reverse=True))
    try:
        scales, _ = model.predictor.check_request(normalize_scales(choice), merge)
    except ValueError as error:
        show_error(str(error), "This scale set does not work with this checkpoint.")
        return None
    return scales


# ----------------------------------------------------------------------------- images


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
        from ui.photos import photo_gallery_input  # here: ui.photos imports this module

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


def upload_limit_mb() -> int:
    """The largest file the uploaders take, in MB: ``server.maxUploadSize`` as the server runs with it."""
    return int(st.get_option("server.maxUploadSize"))


def upload_limit_text() -> str:
    """The upload limit in plain words, for every uploader's help (Streamlit's own note says only "per file")."""
    return f"Files up to {upload_limit_mb()} MB each; the uploader refuses a larger one before sending it."


def _forget_removed_upload(upload_key: str) -> None:
    """The person removed the file (×): do not bring it back from the session's memory."""
    if st.session_state.get(upload_key) is None:
        st.session_state.pop(LAST_UPLOAD_KEY, None)


def _gallery_label(split: str, index: int) -> str:
    image, _, objects = scaleshapes_sample(split, index)
    return f"{split} #{index}: {image.shape[1]}x{image.shape[0]} px, {objects} object{'s' if objects != 1 else ''}"


# ----------------------------------------------------------------------------- prediction


@st.cache_data(max_entries=PREDICTION_CACHE_ENTRIES, ttl=CACHE_TTL_S, show_spinner=False)
def _predict(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    merge: str,
    _model: LoadedModel,
    _rgb: np.ndarray,
    _misses: list,
) -> Prediction:
    _misses.append(1)  # runs only on a cache miss: tells the caller the model really ran
    return _model.predictor.predict(_rgb, scales=scales, merge=merge)


def predict(
    model: LoadedModel, image: ImageInput, scales: tuple[float, ...], merge: str
) -> tuple[Prediction, bool] | None:
    """The prediction for (checkpoint, image, scales, merge), from the cache when it has it.

    Returns (prediction, computed_now), or None with an error on the page. Also stored in
    ``st.session_state[LAST_PREDICTION_KEY]`` for other pages.
    """
    misses: list = []
    try:
        with st.spinner(
            (
                f"Running the model at {len(scales)} "
                f"scale{'s' if len(scales) > 1 else ''} on {model.predictor.device_name}…"
            ),
            show_time=True,
        ):
            prediction = _predict(model.key, image.key, tuple(scales), merge, model, image.rgb, misses)
    except (ImageError, ValueError) as error:
        show_error(str(error), "The model cannot take this image with these settings.")
        return None
    except Exception as error:  # the page must survive anything the model does; the log keeps the traceback
        LOG.exception("prediction failed")
        show_error(f"{type(error).__name__}: {error}", "The prediction failed.")
        return None
    st.session_state[LAST_PREDICTION_KEY] = prediction
    return prediction, bool(misses)


def model_sidebar(
    *, autocast: str = "auto", scale_set: bool = True
) -> tuple[LoadedModel | None, tuple[float, ...] | None]:
    """The sidebar of the pages beside the main view: checkpoint (with its card) and scale set.

    The scale set is the one ``Predictor.inspection_merge`` allows (for a paper head, only its
    trained set). Returns (model, scales); either is None when unusable (a message shows).
    """
    with st.sidebar:
        st.header("Model")
        model = checkpoint_picker(autocast=autocast)
        scales = None
        if model is not None and scale_set:
            scales = scale_set_picker(model, model.predictor.inspection_merge)
    return model, scales
