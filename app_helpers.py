"""Building blocks for segscale's Streamlit pages: controls, cached model, sections, downloads.

Every page (``app.py``, ``pages/*.py``) is a few lines of layout calling these. The model is
loaded once per process (:func:`load_predictor`, ``st.cache_resource``, used read-only); a
prediction is cached on (checkpoint, image, scales, merge) (:func:`predict`), so moving a
display slider never runs the model again. Nothing in ``segscale/`` imports Streamlit; the
pictures come from :mod:`segscale.visualize` and :mod:`segscale.plots`, the numbers from
:mod:`segscale.diagnostics` and :mod:`segscale.architecture`, the same functions the command
line uses (``python -m segscale predict|inspect|compare|diagnose|describe|checkpoints``).

Widget keys (for ``AppTest`` and for pages sharing state): ``checkpoint``, ``merge``,
``scale_preset``, ``custom_scales``, ``image_source``, ``upload``, ``gallery_index``,
``new_sample``, ``score_class``, ``score_kind``, ``overlay_alpha``. Pass ``key_prefix`` to use
a control twice on one page. The pages' own controls are listed in their sections below
(``inspect_*``, ``compare_*``, ``diagnose_*``, ``describe_*``, ``checkpoint_upload``).

Across pages: :func:`keep_choices` carries the checkpoint, scale set and image choice from
page to page, the latest uploaded image is remembered for the session (another page shows
it without a new upload), and a checkpoint uploaded on the Checkpoints page can be used on
every page of the session.

Text safety: strings a person supplies (file names) go through :func:`plain` before they
reach Markdown, and nothing is rendered with ``unsafe_allow_html``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import streamlit as st

from segscale import architecture as arch
from segscale import diagnostics as diag
from segscale import plots
from segscale import visualize as viz
from segscale.checkpoint import CheckpointError, CheckpointMetadata
from segscale.config import MERGE_MODES, normalize_scales
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.data.scaleshapes import SPLITS as SCALESHAPES_SPLITS
from segscale.data.scaleshapes import generate_sample
from segscale.images import DEFAULT_MAX_SIDE, MIN_SIDE, READABLE_DESCRIPTION, ImageError, load_image
from segscale.inference import FastPathOptions
from segscale.metrics import ConfusionMatrix
from segscale.predictor import Prediction, Predictor

LOG = logging.getLogger("segscale.app")

APP_DIR = Path(__file__).resolve().parent
CHECKPOINT_DIR_ENV = "SEGSCALE_CHECKPOINT_DIR"
DEFAULT_CHECKPOINT = "scaleshapes_demo.pt"
# Scale sets offered besides "custom"; each is shown only when the checkpoint supports it.
CUSTOM = "custom"
CUSTOM_STEP = 0.05  # the grid of scales a custom set picks from, inside the checkpoint's range
GALLERY_SPLIT, GALLERY_SIZE = "val", 12
RANDOM_SPLIT = "test"  # "new random sample" draws from the test split, never seen in training
IMAGE_SOURCES = ("Gallery", "Upload", "Random sample")
MERGE_HELP = {
    "attention": "attention: learned per-pixel weights wˢ (softmax over scales, Eq. 2)",
    "average": "average: wˢ = 1/S everywhere",
    "max": "max: per pixel and class, the largest score over scales",
}
KEY_WIDTH = 240  # px of colour bars and legends, drawn at the size they are shown (a column at 1500 px)
LAST_PREDICTION_KEY = "segscale.last_prediction"  # session state: the latest Prediction shown, for other pages
LAST_UPLOAD_KEY = "segscale.last_upload"  # session state: (name, bytes) of the latest usable image uploaded on any page
UPLOADED_CHECKPOINTS_KEY = "segscale.uploaded_checkpoints"  # session state: {option: (file name, bytes)}
UPLOADED_PREFIX = "uploaded: "  # how a checkpoint uploaded this session is named in the checkpoint box
# Widgets whose choice follows the person from page to page (see keep_choices).
SHARED_CHOICES = ("checkpoint", "merge", "scale_preset", "custom_scales", "image_source", "gallery_index")


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


def _file_key(path: Path) -> str:
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
    return _load_model(_file_key(path) + _precision_key(autocast), str(path), autocast)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_uploaded_model(key: str, name: str, autocast: str, _data: bytes) -> LoadedModel:
    started = time.perf_counter()
    model, metadata = arch.load_checkpoint_bytes(_data, name)
    predictor = Predictor(model, metadata, options=FastPathOptions(autocast=autocast))
    return LoadedModel(predictor, Path(name), key, time.perf_counter() - started)


def load_uploaded_predictor(name: str, data: bytes, autocast: str = "auto") -> LoadedModel:
    """The model in an uploaded checkpoint's bytes (read with ``weights_only=True``); raises CheckpointError.

    Cached on a digest of the bytes: only a session holding the file can ask for it.
    """
    return _load_uploaded_model(f"upload|{_digest(data)}" + _precision_key(autocast), name, autocast, data)


def uploaded_checkpoints() -> dict[str, tuple[str, bytes]]:
    """The checkpoints this session chose to use from the Checkpoints page: {option: (file name, bytes)}."""
    return st.session_state.get(UPLOADED_CHECKPOINTS_KEY, {})


def use_uploaded_checkpoint(name: str, data: bytes) -> str:
    """Offer an uploaded checkpoint in every checkpoint box of this session, and choose it; returns its option."""
    option = f"{UPLOADED_PREFIX}{name}"
    st.session_state[UPLOADED_CHECKPOINTS_KEY] = {**uploaded_checkpoints(), option: (name, data)}
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
        f"Trained scale set: {plain(viz.format_scale_set(model.scales))}, merge {plain(model.merge)}",
        f"Attention head: {plain(model.head.kind)}; scales supported: {plain(f'{low:g}')} to {plain(f'{high:g}')}",
    ]
    miou = metadata.metrics.get("val_miou") if isinstance(metadata.metrics, dict) else None
    if isinstance(miou, (int, float)):
        lines.append(f"Validation mIoU: {100 * miou:.1f}%")
    st.caption("  \n".join(lines))


def merge_picker(model: LoadedModel, key_prefix: str = "") -> str:
    """Radio for attention / average / max; attention only when the model has an attention head."""
    modes = list(model.predictor.offered_merges)
    return st.radio(
        "Merge over scales",
        modes,
        key=f"{key_prefix}merge",
        horizontal=True,
        help="  \n".join(MERGE_HELP[mode] for mode in modes),
    )


def scale_set_picker(model: LoadedModel, merge: str, key_prefix: str = "") -> tuple[float, ...] | None:
    """Preset or custom scale set, validated by ``Predictor.check_request``; None (error shown) if invalid."""
    metadata = model.metadata
    presets = model.predictor.offered_scale_sets(merge)
    trained = metadata.model.scales

    def label(option) -> str:
        if option == CUSTOM:
            return "custom…"
        text = viz.format_scale_set(option)
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
            st.session_state[state_key] = [s for s in st.session_state[state_key] if s in grid]
        picked = st.multiselect(
            "Custom scales",
            grid,
            default=None if state_key in st.session_state else [s for s in trained if s in grid],
            key=state_key,
            format_func=viz.scale_label,
            help=f"Any scales from {metadata.scale_range[0]:g} to {metadata.scale_range[1]:g}, the range this model was trained on.",
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


@st.cache_data(max_entries=8, show_spinner=False)
def decode_upload(data: bytes, name: str, max_side: int) -> tuple[np.ndarray, tuple[str, ...], float]:
    """:func:`load_image` on uploaded bytes, cached on them: (rgb, notices, seconds). Raises ImageError."""
    started = time.perf_counter()
    loaded = load_image(data, name, max_side=max_side)
    return loaded.rgb, loaded.notices, time.perf_counter() - started


def _sample_input(split: str, index: int, source: str) -> ImageInput:
    image, label, _ = scaleshapes_sample(split, index)
    return ImageInput(image, f"ScaleShapes {split} #{index}", source, ground_truth=label, key=image_key(image))


def image_input(key_prefix: str = "", max_side: int = DEFAULT_MAX_SIDE) -> ImageInput | None:
    """Image source chooser (gallery, upload, random sample) and its widget.

    Returns the chosen image, or None with a message on the page (nothing uploaded yet, or an
    unusable file); the page keeps working either way, and another source can be picked.
    """
    source = st.radio("Image", IMAGE_SOURCES, key=f"{key_prefix}image_source", horizontal=True, label_visibility="collapsed")
    if source == "Upload":
        upload_key = f"{key_prefix}upload"
        uploaded = st.file_uploader(
            "Upload an image",
            key=upload_key,
            on_change=_forget_removed_upload,
            args=(upload_key,),
            help=f"{READABLE_DESCRIPTION} (a GIF's first frame), at least {MIN_SIDE}x{MIN_SIDE} pixels. "
            f"Larger than {max_side} px on a side is scaled down.",
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
    if st.button("New random sample", key=f"{key_prefix}new_sample", icon=":material/casino:") or state_key not in st.session_state:
        st.session_state[state_key] = int(np.random.default_rng().integers(0, 100_000))
    return _sample_input(RANDOM_SPLIT, st.session_state[state_key], "random")


def _forget_removed_upload(upload_key: str) -> None:
    """The person removed the file (×): do not bring it back from the session's memory."""
    if st.session_state.get(upload_key) is None:
        st.session_state.pop(LAST_UPLOAD_KEY, None)


def _gallery_label(split: str, index: int) -> str:
    image, _, objects = scaleshapes_sample(split, index)
    return f"{split} #{index}: {image.shape[1]}x{image.shape[0]} px, {objects} object{'s' if objects != 1 else ''}"


# ----------------------------------------------------------------------------- prediction


@st.cache_data(max_entries=16, show_spinner=False)
def _predict(model_key: str, pixels_key: str, scales: tuple[float, ...], merge: str, _model: LoadedModel, _rgb: np.ndarray, _misses: list) -> Prediction:
    _misses.append(1)  # runs only on a cache miss: tells the caller the model really ran
    return _model.predictor.predict(_rgb, scales=scales, merge=merge)


def predict(model: LoadedModel, image: ImageInput, scales: tuple[float, ...], merge: str) -> tuple[Prediction, bool] | None:
    """The prediction for (checkpoint, image, scales, merge), from the cache when it has it.

    Returns (prediction, computed_now), or None with an error on the page. Also stored in
    ``st.session_state[LAST_PREDICTION_KEY]`` for other pages.
    """
    misses: list = []
    try:
        with st.spinner(f"Running the model at {len(scales)} scale{'s' if len(scales) > 1 else ''} on {model.predictor.device_name}…", show_time=True):
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


@st.cache_data(max_entries=32, show_spinner=False)
def build_view(model_key: str, pixels_key: str, scales: tuple[float, ...], merge: str, class_index: int, score_kind: str, _prediction: Prediction, _metadata: CheckpointMetadata) -> viz.PredictionView:
    """:func:`segscale.visualize.build_view`, cached on the prediction's own key and the display choices."""
    return viz.build_view(_prediction, _metadata.classes, _metadata.palette, class_index, score_kind)


# ----------------------------------------------------------------------------- sections of the main view


@st.cache_data(max_entries=32, show_spinner=False)
def colorbar(vmin: float, vmax: float, cmap: str, label: str) -> np.ndarray:
    """A colour bar image (drawn once per process for each range, map and label)."""
    return viz.colorbar_image(vmin, vmax, cmap, width=KEY_WIDTH, bar_height=14, font_size=13, label=label)


@st.cache_data(max_entries=32, show_spinner=False)
def swatches(names: tuple[str, ...], colours: tuple[tuple[int, int, int], ...], columns: int = 1) -> np.ndarray:
    """A legend of coloured squares and names as an image (cached)."""
    return viz.swatch_legend_image(names, colours, width=KEY_WIDTH, font_size=13, columns=columns)


def _image(array: np.ndarray, caption: str, photo: bool = False) -> None:
    """One map at the column's width. Maps go as PNG (hard label edges stay hard); photos
    (the input, overlays) as JPEG, which encodes some 20 times faster."""
    st.image(array, caption=caption, width="stretch", output_format="JPEG" if photo else "PNG")


def _key(array: np.ndarray, alt: str | None = None) -> None:
    """A colour bar or legend at its natural size, so its text keeps its size whatever the column."""
    st.image(array, width=min(KEY_WIDTH, array.shape[1]), output_format="PNG", alt=alt)


def class_controls(metadata: CheckpointMetadata, labels: np.ndarray, key_prefix: str = "") -> tuple[int, str]:
    """Selectors for the class whose score map is shown and how (probability or raw score)."""
    default = viz.default_class(labels, len(metadata.classes))
    class_index = st.selectbox(
        "Class shown in the score maps",
        list(range(len(metadata.classes))),
        index=default,
        key=f"{key_prefix}score_class",
        format_func=lambda k: metadata.classes[k],
        help="Its score at every scale is drawn as a heat map; the default is the most frequent predicted object class.",
    )
    score_kind = st.radio(
        "Show the class as",
        viz.SCORE_KINDS,
        key=f"{key_prefix}score_kind",
        horizontal=True,
        format_func=lambda k: "probability (0-1)" if k == "probability" else "raw score fˢ (shared range)",
    )
    return int(class_index), str(score_kind)


def per_scale_section(view: viz.PredictionView, prediction: Prediction, metadata: CheckpointMetadata) -> None:
    """One column per scale, one row per quantity, each row with its colour bar on the right."""
    count = len(view.scales)
    spec = [1.0] * count + [1.0]
    class_name = metadata.classes[view.class_index]
    h, w = view.size

    def row(title: str, explanation: str, images: list[tuple[np.ndarray, str, bool]], key_image: np.ndarray | None) -> None:
        columns = st.columns(spec, gap="small")
        for column, (array, caption, photo) in zip(columns, images):
            with column:
                _image(array, caption, photo)
        with columns[-1]:
            st.markdown(f"**{title}**  \n{explanation}")
            if key_image is not None:
                _key(key_image)

    row(
        "Input per scale",
        f"The image resized as the network sees it at each scale, all shown at {w}x{h}: coarser scales carry less detail.",
        [(c.input, f"Scale {viz.scale_label(c.scale)} · input resized to {c.input_size[1]}x{c.input_size[0]}", True) for c in view.scales],
        None,
    )
    row(
        "Score maps fˢ: labels",
        "Argmax over classes of each scale's score map, in the checkpoint's palette.",
        [(c.labels, f"Scale {viz.scale_label(c.scale)} · labels of fˢ", False) for c in view.scales],
        swatches(tuple(metadata.classes), tuple(metadata.palette), 2 if len(metadata.classes) > 4 else 1),
    )
    if view.score_kind == "probability":
        title, bar_label, note = f"Score maps fˢ: {class_name}", f"P({class_name}) per scale", "softmax over classes, 0 to 1"
    else:
        low, high = view.score_range
        title, bar_label, note = f"Score maps fˢ: {class_name}", f"raw score of {class_name}", f"raw fˢ, one range for all scales ({low:.1f} to {high:.1f})"
    row(
        title,
        f"The {class_name} class at each scale: {note}.",
        [(c.class_map, f"Scale {viz.scale_label(c.scale)} · {class_name} {'probability' if view.score_kind == 'probability' else 'score'}", False) for c in view.scales],
        colorbar(*view.score_range, viz.SCORE_CMAP, bar_label),
    )
    if prediction.merge == "max":
        st.caption("Max pooling picks a scale per pixel *and class*, so it has no weight map wˢ shared by the classes.")
    else:
        explanation = (
            "Softmax over scales of the attention logits (Eq. 2); at every pixel the weights sum to 1."
            if prediction.merge == "attention"
            else f"Average pooling: every scale weighs 1/{count} everywhere."
        )
        row(
            "Attention weights wˢ",
            explanation,
            [(c.attention, f"Scale {viz.scale_label(c.scale)} · weight wˢ ({prediction.merge})", False) for c in view.scales],
            colorbar(0.0, 1.0, viz.ATTENTION_CMAP, "weight wˢ (same scale for all)"),
        )


def fused_section(view: viz.PredictionView, prediction: Prediction, metadata: CheckpointMetadata, image: ImageInput, key_prefix: str = "") -> None:
    """Fused labels, overlay with an opacity slider, ground truth (samples), legend; dominant scale and entropy."""
    merge = prediction.merge
    spec = [1.0, 1.0, 1.0, 1.0]
    # The slider sits above the row, so that the three images of the row stay aligned.
    slider_column, _ = st.columns([1.0, 2.0])
    with slider_column:
        alpha = st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key=f"{key_prefix}overlay_alpha")
    columns = st.columns(spec, gap="small")
    with columns[0]:
        _image(view.fused_labels, f"Fused labels ({merge})")
    with columns[1]:
        _image(viz.overlay(view.image, view.fused_labels, alpha), f"Fused labels on the input, opacity {alpha:.2f}", photo=True)
    with columns[2]:
        if image.ground_truth is not None:
            truth = viz.resize_rgb(viz.colorize_labels(image.ground_truth, metadata.palette), view.size, nearest=True)
            _image(truth, "Ground truth (ScaleShapes)")
            if tuple(metadata.classes) == SCALESHAPES_CLASSES:
                st.caption(_agreement(image.ground_truth, prediction.labels, len(metadata.classes)))
        else:
            _image(view.image, "Input (uploads have no ground truth)", photo=True)
    with columns[3]:
        st.markdown("**Fused labels**  \nClasses and their share of the pixels:")
        shown = [s for s in view.shares if s.share > 0] or list(view.shares)
        text = "; ".join(f"{s.name} {100 * s.share:.1f}%" for s in shown)
        _key(swatches(tuple(f"{s.name}  {100 * s.share:.1f}%" for s in shown), tuple(s.colour for s in shown)), alt=text)
        absent = [s.name for s in view.shares if s.share == 0]
        if absent and len(shown) < len(view.shares):
            st.caption(f"Not predicted: {plain(', '.join(absent))}")

    columns = st.columns(spec, gap="small")
    names = tuple(f"scale {viz.scale_label(s)}" for s in prediction.scales)
    colours = tuple(viz.SCALE_COLOURS[k % len(viz.SCALE_COLOURS)] for k in range(len(names)))
    with columns[0]:
        if view.dominant is not None:
            what = "largest wˢ" if merge == "attention" else "max score of the fused class"
            _image(view.dominant, f"Dominant scale: {what}")
        else:
            st.caption("Dominant scale: none; average pooling weighs every scale equally.")
    with columns[1]:
        if view.entropy is not None:
            _image(view.entropy, f"Attention entropy ({merge}), 0-1")
        else:
            st.caption("Attention entropy: none; max pooling has no weight map.")
    with columns[3]:
        st.markdown(
            "**Which scale decides**  \nThe dominant scale has the largest weight at each pixel. The entropy of the "
            "weights, −Σ wˢ log wˢ / log S, is 0 where one scale takes all the weight and 1 where all weigh the same."
        )
        if view.dominant is not None:
            _key(swatches(names, colours, 1))
        if view.entropy is not None:
            _key(colorbar(0.0, 1.0, viz.ENTROPY_CMAP, "entropy: 0 one scale · 1 all equal"))


def _agreement(truth: np.ndarray, labels: np.ndarray, num_classes: int) -> str:
    matrix = ConfusionMatrix(num_classes)
    matrix.update(truth, labels)
    scores = matrix.scores()
    return f"On this image: pixel accuracy {100 * scores.pixel_accuracy:.1f}%, mIoU {100 * scores.miou:.1f}%"


def figure_bytes(view: viz.PredictionView, prediction: Prediction, metadata: CheckpointMetadata, title: str) -> bytes:
    """The side-by-side matplotlib figure as PNG (what ``segscale predict`` writes)."""
    return viz.figure_png(viz.side_by_side_figure(view, prediction, metadata.classes, title=title))


def downloads_section(model: LoadedModel, image: ImageInput, prediction: Prediction, view: viz.PredictionView) -> None:
    """Download buttons: fused labels (palette PNG), attention maps (PNG), every map (.npz), the figure (PNG).

    The file names are those ``python -m segscale predict`` writes. Every file is made only
    when its button is clicked (``data`` is a callable, run by Streamlit on the click), so the
    page pays nothing for them while it renders.
    """
    stem = viz.safe_file_stem(image.name)
    metadata = model.metadata
    title = f"{image.name} · {metadata.name} · {prediction.merge} over {viz.format_scale_set(prediction.scales)}"
    files = [
        ("labels", "Fused labels (palette PNG)", "image/png", lambda: viz.palette_png(prediction.labels, metadata.palette)),
        (
            "attention", "Attention maps (PNG)", "image/png",
            None if prediction.attention is None else lambda: viz.attention_png(prediction.attention, prediction.labels.shape),
        ),
        ("maps", "Every map (.npz)", "application/octet-stream", lambda: viz.prediction_npz(prediction, metadata.classes, metadata.palette)),
        ("figure", "Side-by-side figure (PNG)", "image/png", lambda: figure_bytes(view, prediction, metadata, title)),
    ]  # fmt: skip
    for column, (kind, label, mime, make) in zip(st.columns(len(files)), files):
        with column:
            if make is None:
                st.caption("No attention maps: max pooling has no weights.")
                continue
            st.download_button(
                label, make, stem + viz.OUTPUT_SUFFIXES[kind], mime,
                key=f"download_{kind}", icon=":material/download:", on_click="ignore",
            )  # fmt: skip


def show_device(model: LoadedModel) -> None:
    """Where the model runs, before any prediction (replaced by :func:`show_timings` after one)."""
    st.caption(f"**Device:** {plain(model.predictor.device_name)}  \nCheckpoint load: {model.load_s:.2f} s (once per process)")


def _precision(model: LoadedModel) -> str:
    """", bf16 autocast" or ", float32" once the predictor has chosen (on its first image)."""
    precision = getattr(model.predictor, "precision", "undecided")
    return "" if precision == "undecided" else f", {precision}"


def show_timings(model: LoadedModel, image: ImageInput, prediction: Prediction, computed_now: bool, view_s: float, run_s: float) -> None:
    """Where the model ran and the seconds of each stage, as a few short lines."""
    t = prediction.timings
    lines = [f"**Device:** {plain(prediction.device + _precision(model))}", f"Checkpoint load: {model.load_s:.2f} s (once per process)"]
    if image.source == "upload":
        lines.append(f"Image decode: {image.decode_s:.2f} s")
    if computed_now:
        lines.append(f"Model: {t.model_s:.2f} s (preprocess {t.preprocess_s:.2f} s, postprocess {t.postprocess_s:.2f} s)")
    else:
        lines.append(f"Model: prediction cached (it took {t.model_s:.2f} s)")
    lines += [f"Maps: {view_s:.2f} s", f"Whole page run: {run_s:.2f} s"]
    st.caption("  \n".join(lines))


def image_summary(image: ImageInput, prediction: Prediction) -> str:
    """"photo.jpg: 640x480 px, scales {1, 0.75, 0.5}, attention" with the name made literal."""
    height, width = image.rgb.shape[:2]
    return f"{plain(image.name)}: {width}x{height} px · {viz.format_scale_set(prediction.scales)} · {prediction.merge}"


# ============================================================================= the pages beside the main view
#
# Pixel inspector, Merge comparison, Scale diagnostics, How it works, Checkpoints: each
# page is a few lines calling the sections below. Tables go through st.dataframe (text
# shows literally, whatever a checkpoint or file name holds); equations through st.latex
# (class names escaped by segscale.diagnostics); pictures through st.image with a caption
# naming the scale and the quantity.


def model_sidebar(*, autocast: str = "auto", scale_set: bool = True) -> tuple[LoadedModel | None, tuple[float, ...] | None]:
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


def _table(rows: list[dict], digits: int = 4, height: int | str = "auto", key: str | None = None) -> None:
    """Rows of flat dicts as a read-only table: floats to ``digits`` decimals, text shown literally."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    config = {
        column: st.column_config.NumberColumn(format=f"%.{digits}f")
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column])
    }
    st.dataframe(frame, hide_index=True, column_config=config, height=height, key=key)


def _pairs_table(pairs) -> None:
    """(field, value) pairs as a two-column Markdown table: long values wrap, every cell shown literally."""
    lines = ["| field | value |", "|---|---|"]
    lines += [f"| {'↳ ' if name.startswith('  ') else ''}{plain(name.strip())} | {plain(value)} |" for name, value in pairs]  # "  x": a part of the row above
    st.markdown("\n".join(lines))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


# ----------------------------------------------------------------------------- 1. pixel inspector

INSPECTOR_MAX_SIDE = 640  # px: uploads are scaled to this, so the clickable grid stays under ~6 500 cells
INSPECT = "inspect_"  # key prefix of the inspector's controls: inspect_row, inspect_col, inspect_grid_colour, ...
GRID_COLOURINGS = {
    "input": "image (mean colour of the cell's pixels)",
    "labels": "fused labels at the cell",
    "dominant": "dominant scale (largest wˢ)",
}
EQUATION_SIZE = "\\small "  # KaTeX size switch: Eq. 1 with three scales' terms fits the numbers column
GRID_CHART_WIDTH = 380  # px: the picker column's width at 1500 px; the chart stretches to the column


def precision_note(model: LoadedModel) -> str:
    """Which precision the numbers on the page are in, as a sentence."""
    precision = getattr(model.predictor, "precision", "undecided")
    if precision == "float32":
        return "Numbers in float32: this page runs its own float32 copy of the model (no bf16 autocast), so the digits are the model's."
    if precision == "bf16 autocast":
        return "Numbers from bf16 autocast (trunk and heads), with Eq. 1-2 in float32: the last digits are rounded."
    return "Numbers in float32."


@st.cache_data(max_entries=16, show_spinner=False)
def _grid_frame(model_key: str, pixels_key: str, scales: tuple[float, ...], merge: str, colouring: str, _prediction: Prediction, _classes: tuple[str, ...], _palette):
    """One row per grid cell: its rectangle, colour and tooltip (the clickable heat map's data)."""
    import pandas as pd

    prediction = _prediction
    grid_h, grid_w = prediction.grid
    size = tuple(prediction.labels.shape)
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    labels = prediction.fused.argmax(axis=0)  # (h, w): the winner of the prediction's own fusion at each cell
    if colouring == "labels":
        colours = np.asarray(_palette, dtype=np.uint8)[labels]
    elif colouring == "dominant" and prediction.attention is not None:
        colours = np.asarray(viz.SCALE_COLOURS, dtype=np.uint8)[prediction.attention.argmax(axis=0) % len(viz.SCALE_COLOURS)]
    else:
        colours = diag.cell_mean_colours(prediction.image, prediction.grid)
    flat = colours.reshape(-1, 3)
    centre_y = np.array([diag.cell_center((int(i), 0), size, prediction.grid)[0] for i in range(grid_h)])
    centre_x = np.array([diag.cell_center((0, int(j)), size, prediction.grid)[1] for j in range(grid_w)])
    names = np.asarray(_classes, dtype=object)[labels.ravel()]
    tips = [f"cell ({i}, {j}) on pixel ({centre_y[i]:.0f}, {centre_x[j]:.0f}) · {name}" for i, j, name in zip(rows.ravel(), cols.ravel(), names)]
    if prediction.attention is not None:
        weights = prediction.attention.reshape(len(scales), -1)
        tips = [f"{t} · w " + " / ".join(f"{w:.2f}" for w in weights[:, k]) for k, t in enumerate(tips)]
    return pd.DataFrame({
        "cell_row": rows.ravel(), "cell_col": cols.ravel(),
        "x0": cols.ravel(), "x1": cols.ravel() + 1, "y0": rows.ravel(), "y1": rows.ravel() + 1,
        "colour": [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in flat], "cell": tips,
    })  # fmt: skip


def _grid_chart(frame, grid: tuple[int, int], cell: tuple[int, int]):
    """The stride-8 grid as an altair heat map, one clickable rectangle per cell, the chosen cell outlined."""
    import altair as alt
    import pandas as pd

    grid_h, grid_w = grid
    x = alt.X("x0:Q", scale=alt.Scale(domain=[0, grid_w], nice=False, zero=False), axis=None)
    y = alt.Y("y0:Q", scale=alt.Scale(domain=[grid_h, 0], nice=False, zero=False), axis=None)
    pick = alt.selection_point(name="cell", fields=["cell_row", "cell_col"], on="click", clear=False, empty=False)
    colour = alt.Color("colour:N", scale=None)
    cells = (
        alt.Chart(frame)
        .mark_rect(strokeWidth=0.6)  # a stroke of the cell's own colour closes the hairline seams between cells
        .encode(x=x, x2="x1:Q", y=y, y2="y1:Q", color=colour, stroke=alt.Stroke("colour:N", scale=None), tooltip=[alt.Tooltip("cell:N", title="")])
        .add_params(pick)
    )
    chosen = pd.DataFrame({"x0": [cell[1]], "x1": [cell[1] + 1], "y0": [cell[0]], "y1": [cell[0] + 1]})
    outline = alt.Chart(chosen).mark_rect(fill=None, stroke="#ff00dc", strokeWidth=2.5).encode(x=x, x2="x1:Q", y=y, y2="y1:Q")
    height = max(60, round(GRID_CHART_WIDTH * grid_h / grid_w))  # cells square at the column's usual width
    return alt.layer(cells, outline).properties(width="container", height=height).configure_view(strokeWidth=0)


def _pick_cell(chart_key: str, row_key: str, col_key: str, image_size: tuple[int, int], grid: tuple[int, int]) -> None:
    """on_select of the grid chart: the clicked cell's pixel becomes the inspected one (run before the page)."""
    state = st.session_state.get(chart_key)
    points = (state or {}).get("selection", {}).get("cell") if state is not None else None
    if not points or not isinstance(points, list):
        return
    point = points[0]
    try:
        cell = (int(point["cell_row"]), int(point["cell_col"]))
    except (KeyError, TypeError, ValueError):
        return
    if 0 <= cell[0] < grid[0] and 0 <= cell[1] < grid[1]:
        st.session_state[row_key], st.session_state[col_key] = diag.pixel_at_cell(cell, image_size, grid)


def pixel_picker(model: LoadedModel, prediction: Prediction, image: ImageInput, key_prefix: str = INSPECT) -> tuple[int, int]:
    """Pick a pixel: click a cell of the stride-8 grid, or type its row and column. Returns (row, col).

    ``st.image`` has no click events; an altair heat map with a point selection does: one
    rectangle per grid cell (the unit Eq. 1 holds on), ``on_select`` turns the clicked cell
    into the pixel it sits on. The number inputs always work (keyboard, AppTest) and show
    the current pixel. A new image starts on :func:`segscale.diagnostics.salient_pixel`.
    """
    metadata = model.metadata
    height, width = prediction.labels.shape
    grid = prediction.grid
    row_key, col_key, owner_key, pixel_key = (f"{key_prefix}{name}" for name in ("row", "col", "pixel_of", "pixel"))
    identity = (image.key, height, width)
    if st.session_state.get(owner_key) != identity:  # a new image: start on its most telling pixel
        st.session_state[pixel_key] = diag.salient_pixel(prediction)
        st.session_state[owner_key] = identity
        st.session_state[row_key], st.session_state[col_key] = st.session_state[pixel_key]
    for key, index, limit in ((row_key, 0, height), (col_key, 1, width)):
        value = st.session_state.get(key, st.session_state[pixel_key][index])  # back from another page: the last pixel
        st.session_state[key] = int(min(max(int(value), 0), limit - 1))
    cell = diag.nearest_cell(st.session_state[row_key], st.session_state[col_key], (height, width), grid)

    colourings = [k for k in GRID_COLOURINGS if k != "dominant" or prediction.attention is not None]
    colouring = st.radio(
        "Colour the grid by", colourings, key=f"{key_prefix}grid_colour", horizontal=True, format_func=lambda k: GRID_COLOURINGS[k]
    )
    frame = _grid_frame(model.key, image.key, prediction.scales, prediction.merge, colouring, prediction, tuple(metadata.classes), tuple(metadata.palette))
    chart_key = f"{key_prefix}grid_{cell[0]}_{cell[1]}"  # a new chart after each pick: clicking the same cell again works
    st.altair_chart(
        _grid_chart(frame, grid, cell),
        key=chart_key,
        on_select=functools.partial(_pick_cell, chart_key, row_key, col_key, (height, width), grid),
        selection_mode="cell",
        width="stretch",
    )
    st.caption(
        f"Click a cell: the {grid[0]} x {grid[1]} stride-8 grid of the largest scale, coloured by "
        f"{GRID_COLOURINGS[colouring]}; the pink outline is the cell inspected."
    )
    if colouring == "labels":
        _key(swatches(tuple(metadata.classes), tuple(metadata.palette), 2 if len(metadata.classes) > 4 else 1), alt="class colours")
    elif colouring == "dominant":
        names = tuple(f"scale {viz.scale_label(s)}" for s in prediction.scales)
        _key(swatches(names, tuple(viz.SCALE_COLOURS[k % len(viz.SCALE_COLOURS)] for k in range(len(names)))), alt="scale colours")

    row_column, col_column = st.columns(2)
    with row_column:
        row = st.number_input(f"Row (0 to {height - 1})", min_value=0, max_value=height - 1, step=1, key=row_key)
    with col_column:
        col = st.number_input(f"Column (0 to {width - 1})", min_value=0, max_value=width - 1, step=1, key=col_key)
    st.session_state[pixel_key] = (int(row), int(col))
    cell = diag.nearest_cell(int(row), int(col), (height, width), grid)
    footprint = diag.cell_footprint(cell, (height, width), grid)
    zoom = plots.pixel_zoom(prediction.image, int(row), int(col), footprint, radius=24, factor=6)
    st.image(
        zoom,
        caption=f"Input at scale 1 around pixel ({row}, {col}), 6x: the pink square is grid cell {cell}'s pixels, the small frame the pixel",
        width="stretch",
        output_format="PNG",
    )
    return int(row), int(col)


def _scale_table_rows(breakdown: diag.PixelBreakdown) -> list[dict]:
    """:meth:`PixelBreakdown.scale_rows` with readable headers (h^s, w^s, f^s_c)."""
    renames = {"h": "hˢ", "h - max h": "hˢ − m", "exp(h - max h)": "exp(hˢ − m)", "w": "wˢ"}
    rows = []
    for row in breakdown.scale_rows():
        out = {"scale": viz.scale_label(row.pop("scale")), "winner": row.pop("winner")}
        for name, value in row.items():
            if name.startswith("f["):
                name = f"fˢ {name[2:-1]}"
            out[renames.get(name, name)] = value
        rows.append(out)
    return rows


def _merge_table_rows(breakdown: diag.PixelBreakdown) -> list[dict]:
    rows = []
    for row in breakdown.merge_rows():
        method = row.pop("merge")
        out = {"merge": method + (" (this prediction)" if method == breakdown.merge else ""), "winner": row.pop("winner")}
        out.update({(f"g {name[2:-1]}" if name.startswith("g[") else name): value for name, value in row.items()})
        rows.append(out)
    return rows


def pixel_equations(model: LoadedModel, prediction: Prediction, image: ImageInput, row: int, col: int, key_prefix: str = INSPECT) -> None:
    """Eq. 2 and Eq. 1 with the numbers of one pixel (at its grid cell), the winners, and average and max pooling."""
    classes = tuple(model.metadata.classes)
    top_column, class_column = st.columns(2)
    with top_column:
        top_k = st.slider("Classes shown", 1, len(classes), min(3, len(classes)), key=f"{key_prefix}top_k", help="The classes with the highest fused score g at the cell (this prediction's fusion).")
    with class_column:
        chosen = st.selectbox(
            "Also show class", [None, *range(len(classes))], key=f"{key_prefix}class",
            format_func=lambda c: "(none)" if c is None else classes[c],
        )  # fmt: skip
    try:
        breakdown = diag.pixel_breakdown(prediction, row, col, classes, top_k=top_k, chosen_class=chosen)
    except ValueError as error:
        show_error(str(error), "This pixel cannot be inspected.")
        return
    height, width = breakdown.image_size
    i, j = breakdown.cell
    st.markdown(
        f"**Pixel (row {row}, col {col})** of the {width}x{height} image → **grid cell ({i}, {j})** of the "
        f"{breakdown.grid[0]} x {breakdown.grid[1]} stride-8 grid, which sits on pixel "
        f"({breakdown.cell_center[0]:.1f}, {breakdown.cell_center[1]:.1f}). Eq. 1 and 2 hold exactly on this grid; "
        f"the label of the pixel is g interpolated from its four nearest cells."
    )
    st.caption(precision_note(model) + f" Scales {viz.format_scale_set(breakdown.scales)}.")

    st.subheader("Eq. 2: the weights wˢ, a softmax over scales")
    eq2 = breakdown.latex_eq2()
    if eq2 is None:
        st.caption(f"No attention here: this checkpoint merges by {plain(breakdown.merge)} pooling, with no logits hˢ.")
    else:
        st.latex(EQUATION_SIZE + eq2)
        st.caption(
            "The table takes Eq. 2 step by step: the logit hˢ of the attention head, minus the largest one m (the same result, "
            "without overflow), its exponential, and wˢ, that exponential over the sum of them all. Then the scores fˢ of the "
            "classes shown, and the class each scale alone would pick."
        )
    _table(_scale_table_rows(breakdown))
    winners = ", ".join(f"scale {viz.scale_label(s)}: {classes[w]}" for s, w in zip(breakdown.scales, breakdown.scale_winners))
    st.caption(f"Each scale on its own (argmax of fˢ): {plain(winners)}.")

    st.subheader("Eq. 1: the fused score g, a weighted sum over scales")
    methods = list(breakdown.methods)
    method = st.radio(
        "Fusion written out", methods, key=f"{key_prefix}eq1_merge", horizontal=True,
        format_func=lambda m: {"attention": "attention (Eq. 1)", "average": "average pooling (wˢ = 1/S)", "max": "max pooling"}[m],
    )  # fmt: skip
    st.latex(EQUATION_SIZE + breakdown.latex_eq1(method))
    _table(_merge_table_rows(breakdown))
    fused = ", ".join(f"{f.method}: {classes[f.winner]}" for f in breakdown.fusions)
    st.caption(
        f"The winner of each fusion at the cell: {plain(fused)}. Average pooling is Eq. 1 with wˢ = 1/S; max pooling "
        "takes, for every class on its own, the largest score over the scales, so no weights are shared across classes."
    )
    label = classes[breakdown.pixel_label]
    text = f"**Label at pixel ({row}, {col}):** {plain(label)} ({plain(breakdown.merge)})"
    if image.ground_truth is not None and tuple(classes) == SCALESHAPES_CLASSES:
        truth = int(image.ground_truth[row, col])
        text += f" · ground truth: {plain(classes[truth]) if truth < len(classes) else 'ignore'}"
    st.markdown(text)
    if breakdown.note:
        st.info(plain(breakdown.note[0].upper() + breakdown.note[1:]), icon=":material/info:")


# ----------------------------------------------------------------------------- 2. merge comparison

COMPARE_WIDTH = 320  # px each picture is resampled to (nearest), so every column shows the same size


@st.cache_data(max_entries=16, show_spinner=False)
def _comparison(model_key: str, pixels_key: str, scales: tuple[float, ...], with_truth: bool, _prediction: Prediction, _truth, _classes: tuple[str, ...]) -> diag.MergeComparison:
    return diag.compare_merges(_prediction, _truth if with_truth else None, _classes)


def _shown(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return viz.resize_rgb(array, size, nearest=True)


def comparison_section(model: LoadedModel, image: ImageInput, prediction: Prediction) -> None:
    """Attention, average and max pooling from one pass: labels side by side, disagreement, IoU and errors."""
    metadata = model.metadata
    classes = tuple(metadata.classes)
    with_truth = image.ground_truth is not None and classes == SCALESHAPES_CLASSES
    try:
        comparison = _comparison(model.key, image.key, prediction.scales, with_truth, prediction, image.ground_truth, classes)
    except ValueError as error:
        show_error(str(error), "The merges cannot be compared on this image.")
        return
    size = viz.display_size(tuple(prediction.labels.shape), COMPARE_WIDTH)
    columns_spec = [1.0] * (len(comparison.results) + 2)
    palette = metadata.palette
    disagree = comparison.disagreement_share

    st.subheader("Labels of each merge")
    columns = st.columns(columns_spec, gap="small")
    with columns[0]:
        _image(_shown(prediction.image, size), "Input (scale 1)", photo=True)
    for column, result in zip(columns[1:], comparison.results):
        with column:
            score = "" if result.scores is None else f", mIoU {100 * result.scores.miou:.1f}%"
            _image(_shown(viz.colorize_labels(result.labels, palette), size), f"Fused labels: {result.method}{score}")
    with columns[-1]:
        _image(_shown(plots.disagreement_image(comparison.disagreement, prediction.image), size), f"Merges disagree: {100 * disagree:.1f}% of pixels (red)")
    if with_truth:
        columns = st.columns(columns_spec, gap="small")
        with columns[0]:
            _image(_shown(viz.colorize_labels(comparison.ground_truth, palette), size), "Ground truth (ScaleShapes)")
        for column, result in zip(columns[1:], comparison.results):
            with column:
                _image(_shown(plots.error_image(result.errors, comparison.ground_truth), size), f"Errors: {result.method}, {int(result.errors.sum())} px wrong (red)")
        with columns[-1]:
            _key(swatches(("wrong", "right", "ignored (void)"), (plots.WRONG_COLOUR, plots.RIGHT_COLOUR, plots.IGNORED_COLOUR)), alt="error colours")
    legend_column, text_column = st.columns([1, 2])
    with legend_column:
        _key(swatches(classes, tuple(palette), 2 if len(classes) > 4 else 1), alt="class colours")
    with text_column:
        st.markdown(
            f"All merges come from **one forward pass**: the same score maps fˢ, fused three ways. They disagree on "
            f"**{int(comparison.disagreement.sum())}** of {comparison.disagreement.size} pixels ({100 * disagree:.2f}%). "
            + ("" if comparison.has_ground_truth else "No ground truth for this image: pick a ScaleShapes sample (gallery or random) "
               "with a ScaleShapes checkpoint to score the merges.")
        )  # fmt: skip
    st.subheader("Scores" if with_truth else "Agreement")
    if with_truth:
        rows = []
        for row in comparison.summary_rows():
            row = dict(row)
            for name in ("mIoU", "pixel accuracy", "right where merges disagree"):
                row[name] = _percent(row.get(name))
            rows.append({k: (_percent(v) if k.startswith("IoU ") else v) for k, v in row.items()})
        _table(rows)
        st.caption(
            "mIoU and pixel accuracy on this image; *right where merges disagree*: of the pixels where the merges "
            "give different labels, the share this merge gets right. IoU per class, – where a class is neither present nor predicted."
        )
    _table([{"merges": f"{a} · {b}", "pixels with the same label": _percent(share)} for a, b, share in comparison.agreement])
    title = f"{image.name} · {metadata.name} · merges over {viz.format_scale_set(prediction.scales)}"
    st.download_button(
        "Comparison figure (PNG)", lambda: plots.figure_png(plots.merge_comparison_figure(comparison, prediction.image, palette, title)),
        viz.safe_file_stem(image.name) + "_merges.png", "image/png", key="compare_download", icon=":material/download:", on_click="ignore",
    )  # fmt: skip


# ----------------------------------------------------------------------------- 3. scale diagnostics

DIAGNOSE_SOURCES = ("ScaleShapes images", "Uploaded images")
DEFAULT_DIAGNOSE_COUNT, MAX_DIAGNOSE_COUNT = 20, 500
DIAGNOSE_RUN_KEY = "segscale.diagnose_run"  # session state: the settings of the last ScaleShapes run asked for
DIAGNOSE_UPLOAD_RUN_KEY = "segscale.diagnose_upload_run"  # session state: the same for uploaded images


# The progress bar is made inside the cached functions: Streamlit replays a cached function's
# elements on a hit, which it can only do for elements the function itself created. On a hit
# the bar's replay ends with its removal, so nothing shows: the bar appears on the first run only.


@st.cache_data(max_entries=8, show_spinner=False)
def _scale_diagnostics(model_key: str, count: int, split: str, scales: tuple[float, ...], merges: tuple[str, ...], _model: LoadedModel) -> diag.ScaleDiagnostics:
    with _progress(count, f"ScaleShapes {split}") as on_image:
        return diag.scale_diagnostics(_model.predictor, split, count, scales, merges, on_image=on_image)


@st.cache_data(max_entries=8, show_spinner=False)
def _image_diagnostics(model_key: str, pixels_keys: tuple[str, ...], names: tuple[str, ...], scales: tuple[float, ...], _model: LoadedModel, _images) -> diag.ImageSetDiagnostics:
    with _progress(len(_images), "Uploaded images") as on_image:
        return diag.image_diagnostics(_model.predictor, _images, names, scales, on_image=on_image)


@st.cache_data(max_entries=16, show_spinner=False)
def _diagnostics_pngs(run_key: tuple, zoom: bool, _diagnostics: diag.ScaleDiagnostics) -> dict[str, bytes]:
    """The four figures of a run as PNG, drawn once per run (and zoom choice)."""
    d = _diagnostics
    figures = {"miou_by_merge": plots.merge_scores_figure(d.merges, [s.miou for s in d.scores], [s.pixel_accuracy for s in d.scores])}
    if d.has_attention:
        figures["weight_by_extent"] = plots.weight_by_extent_figure(d, zoom=zoom)
        figures["weight_by_class"] = plots.weight_by_class_figure(d)
        figures["dominant_share"] = plots.dominant_share_figure(d.scales, d.dominant_share)
    return {name: plots.figure_png(figure) for name, figure in figures.items()}


@st.cache_data(max_entries=16, show_spinner=False)
def _image_set_pngs(run_key: tuple, _result: diag.ImageSetDiagnostics) -> dict[str, bytes]:
    return {
        "image_weights": plots.figure_png(plots.image_weights_figure(_result)),
        "dominant_share": plots.figure_png(plots.dominant_share_figure(_result.scales, _result.dominant_share)),
    }


def diagnostics_source() -> str:
    """ScaleShapes images (with ground truth) or uploaded images (without)."""
    return st.radio("Images", DIAGNOSE_SOURCES, key="diagnose_source", horizontal=True, label_visibility="collapsed")


@contextlib.contextmanager
def _progress(total: int, what: str):
    """An st.progress bar while the block runs; yields the on_image callback that moves it. Removed afterwards, error or not."""
    bar = st.progress(0.0, text=f"{what}: 0 of {total}")
    started = time.perf_counter()

    def on_image(position: int) -> None:
        done = position + 1
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done)
        bar.progress(done / total, text=f"{what}: {done} of {total} ({elapsed:.0f} s, about {left:.0f} s left)")

    try:
        yield on_image
    finally:
        bar.empty()


def _figure(png: bytes, caption: str) -> None:
    st.image(png, caption=caption, width="stretch", output_format="PNG")


def _figure_row(figures: list[tuple[bytes, str]]) -> None:
    """Figures side by side in columns as wide as the figures are, so that all are scaled alike and share one text size."""
    from PIL import Image

    widths = [Image.open(io.BytesIO(png)).width for png, _ in figures]
    for column, (png, caption) in zip(st.columns(widths, gap="medium"), figures):
        with column:
            _figure(png, caption)


def _has_head(model: LoadedModel) -> bool:
    return model.predictor.has_attention_head


def scaleshapes_diagnostics(model: LoadedModel, scales: tuple[float, ...]) -> None:
    """N ScaleShapes images (chosen, with a progress bar), run on a button; figures, tables and the CSV.

    Cached on (checkpoint, N, split, scales, merges): coming back to the page, or pressing the
    button again, shows the earlier result at once (and the progress bar does not show).
    """
    classes = tuple(model.metadata.classes)
    if classes != SCALESHAPES_CLASSES:
        show_error(
            f"This checkpoint predicts {', '.join(classes)}, not ScaleShapes' classes, so it cannot be scored on "
            "ScaleShapes images. Choose Uploaded images above, or a ScaleShapes checkpoint.",
            "Not a ScaleShapes model.",
        )
        return
    offered = [m for m in MERGE_MODES if _has_head(model) or m != "attention"]
    count_column, split_column, merge_column = st.columns([1, 1, 2])
    with count_column:
        count = st.number_input("Images (N)", 1, MAX_DIAGNOSE_COUNT, DEFAULT_DIAGNOSE_COUNT, step=5, key="diagnose_count")
    with split_column:
        split = st.selectbox("Split", SCALESHAPES_SPLITS, index=SCALESHAPES_SPLITS.index("val"), key="diagnose_split")
    with merge_column:
        merges = st.multiselect("Merges scored", offered, default=offered, key="diagnose_merges")
    st.caption(
        f"One forward pass per image at every scale of {viz.format_scale_set(scales)}; every merge comes from it. On a "
        "2-core CPU that is about 1 s per ScaleShapes image with the demo checkpoint (N = 20: some 20 s), a fraction of that on a GPU. "
        "Results are kept: the same settings again, or coming back to this page, show them at once."
    )
    if not merges:
        show_error("Pick at least one merge to score.", "No merges.")
        return
    request = (model.key, int(count), split, tuple(scales), tuple(m for m in MERGE_MODES if m in merges))
    if st.button("Run diagnostics", key="diagnose_run", type="primary", icon=":material/play_arrow:"):
        st.session_state[DIAGNOSE_RUN_KEY] = request
    if st.session_state.get(DIAGNOSE_RUN_KEY) != request:
        previous = st.session_state.get(DIAGNOSE_RUN_KEY)
        st.info(
            "Press *Run diagnostics* to run the checkpoint over these images." if previous is None
            else "The settings changed since the last run: press *Run diagnostics* to run with these.",
            icon=":material/play_arrow:",
        )  # fmt: skip
        return
    try:
        result = _scale_diagnostics(*request, model)
    except ValueError as error:
        show_error(str(error), "The diagnostics cannot run with these settings.")
        return
    except Exception as error:  # the page must survive anything the model does; the log keeps the traceback
        LOG.exception("scale diagnostics failed")
        show_error(f"{type(error).__name__}: {error}", "The diagnostics failed.")
        return
    _show_scale_diagnostics(result, request)


def _scale_columns(row: dict) -> dict:
    """"weight_s0.75" -> "s=0.75": short headers, so that three tables fit side by side."""
    return {(f"s={k[len('weight_s'):]}" if k.startswith("weight_s") else k): v for k, v in row.items()}


def _show_scale_diagnostics(result: diag.ScaleDiagnostics, request: tuple) -> None:
    st.success(
        f"ScaleShapes {result.split} images {result.start} to {result.start + result.count - 1}: {len(result.objects)} visible "
        f"objects, scales {viz.format_scale_set(result.scales)}; computed in {result.seconds:.1f} s "
        f"({result.seconds / result.count:.2f} s per image).",
        icon=":material/check:",
    )
    zoom = False
    if result.has_attention:
        zoom = st.toggle("Zoom the weight axis to the data", key="diagnose_zoom", help="For a model whose weights stay near 1/S, the 0-1 axis hides the differences.")
    try:
        pngs = _diagnostics_pngs(request, zoom, result)
    except Exception as error:  # a figure that cannot be drawn is a message; the tables below still show
        LOG.exception("diagnostics figures failed")
        show_error(f"{type(error).__name__}: {error}", "The figures could not be drawn.")
        pngs = {}
    if not pngs:
        pass  # the error above says why
    elif result.has_attention:
        _figure_row([
            (pngs["weight_by_extent"], "Mean attention weight wˢ of each scale against object extent (px, log axis); dots: single objects"),
            (pngs["dominant_share"], "Share of all pixels where each scale has the largest weight wˢ"),
        ])  # fmt: skip
        _figure_row([
            (pngs["weight_by_class"], "Mean attention weight wˢ of each scale per class (objects in brackets)"),
            (pngs["miou_by_merge"], "mIoU and pixel accuracy of each merge over these images"),
        ])  # fmt: skip
    else:
        st.caption("No attention weights: the attention merge was not scored (or the checkpoint has no attention head).")
        left, _ = st.columns(2)
        with left:
            _figure(pngs["miou_by_merge"], "mIoU and pixel accuracy of each merge over these images")
    st.subheader("Tables")
    merge_rows = [{"merge": r["merge"], "mIoU": _percent(r["mIoU"]), "pixel accuracy": _percent(r["pixel_accuracy"])} for r in result.merge_rows()]
    if result.has_attention:
        left, middle, right = st.columns([3, 3, 2], gap="medium")
        with left:
            st.markdown("**Mean weight wˢ per scale, by object extent (px)**")
            _table([{"extent": f"{r.pop('extent_low'):g}-{r.pop('extent_high'):g}", **_scale_columns(r)} for r in result.extent_rows()], digits=3)
        with middle:
            st.markdown("**Mean weight wˢ per scale, by class**")
            _table([_scale_columns(r) for r in result.class_rows() if r["objects"]], digits=3)
        with right:
            st.markdown("**Score per merge**")
            _table(merge_rows)
    else:
        _table(merge_rows)
    st.markdown(f"**Every object** ({len(result.objects)} rows; the CSV holds the same)")
    _table(result.object_rows(), digits=3, height=260)
    stem = f"scaleshapes_{result.split}_{result.start}-{result.start + result.count - 1}"
    st.download_button(
        "Objects table (CSV)", result.to_csv(), f"{stem}_objects.csv", "text/csv",
        key="diagnose_csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip


def upload_diagnostics(model: LoadedModel, scales: tuple[float, ...]) -> None:
    """Several uploaded images (no ground truth): mean weight and dominant share per scale, per image."""
    if not _has_head(model):
        show_error(
            f"This checkpoint has no attention head (it merges by {model.metadata.model.merge}), so there are no weights wˢ to "
            "summarise over uploaded images. ScaleShapes images still give its mIoU per merge.",
            "No attention weights.",
        )
        return
    files = st.file_uploader(
        "Upload images", accept_multiple_files=True, key="diagnose_uploads",
        help=f"{READABLE_DESCRIPTION}; several at once. Without ground truth, the page shows the attention only.",
    )  # fmt: skip
    images, names, keys = [], [], []
    for file in files or []:
        try:
            rgb, notices, _ = decode_upload(file.getvalue(), file.name, DEFAULT_MAX_SIDE)
        except ImageError as error:
            show_error(str(error), f"{file.name} is left out.")
            continue
        images.append(rgb)
        names.append(file.name)
        keys.append(image_key(rgb))
    if not images:
        st.info(f"Upload one or more images ({READABLE_DESCRIPTION}), then press *Run diagnostics*.", icon=":material/upload:")
        return
    request = (model.key, tuple(keys), tuple(names), tuple(scales))
    st.caption(f"{len(images)} image{'s' if len(images) > 1 else ''} ready; one forward pass each at {viz.format_scale_set(scales)}.")
    if st.button("Run diagnostics", key="diagnose_run_uploads", type="primary", icon=":material/play_arrow:"):
        st.session_state[DIAGNOSE_UPLOAD_RUN_KEY] = request
    if st.session_state.get(DIAGNOSE_UPLOAD_RUN_KEY) != request:
        st.info("Press *Run diagnostics* to run the checkpoint over these images.", icon=":material/play_arrow:")
        return
    try:
        result = _image_diagnostics(*request, model, images)
    except (ValueError, ImageError) as error:
        show_error(str(error), "The diagnostics cannot run on these images.")
        return
    except Exception as error:  # as above
        LOG.exception("image diagnostics failed")
        show_error(f"{type(error).__name__}: {error}", "The diagnostics failed.")
        return
    st.success(f"{len(result.images)} images in {result.seconds:.1f} s.", icon=":material/check:")
    try:
        pngs = _image_set_pngs(request, result)
    except Exception as error:  # as above
        LOG.exception("image diagnostics figures failed")
        show_error(f"{type(error).__name__}: {error}", "The figures could not be drawn.")
        pngs = None
    if pngs:
        _figure_row([
            (pngs["image_weights"], "Mean attention weight wˢ of each scale, per uploaded image"),
            (pngs["dominant_share"], "Share of all pixels where each scale has the largest weight wˢ"),
        ])  # fmt: skip
    _table(result.image_rows(), digits=3)
    st.caption(f"Entropy of the weights in bits: 0 = one scale takes all the weight, {result.max_entropy_bits:.3f} = all scales weigh the same.")
    st.download_button(
        "Images table (CSV)", result.to_csv(), "uploaded_images.csv", "text/csv",
        key="diagnose_upload_csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip


# ----------------------------------------------------------------------------- 4. how it works

EQ2_LATEX = r"w_i^{s} = \frac{\exp(h_i^{s})}{\sum_{t=1}^{S} \exp(h_i^{t})} \qquad (2)"
EQ1_LATEX = r"g_{i,c} = \sum_{s=1}^{S} w_i^{s}\, f_{i,c}^{s} \qquad (1)"
AVERAGE_LATEX = r"\text{average pooling: } w_i^{s} = \tfrac{1}{S} \;\Rightarrow\; g_{i,c} = \tfrac{1}{S} \sum_{s=1}^{S} f_{i,c}^{s} \qquad\quad \text{max pooling: } g_{i,c} = \max_{s} f_{i,c}^{s}"
ESUPV_LATEX = r"\mathcal{L} = \ell\big(g, y\big) + \sum_{s=1}^{S} \ell\big(f^{s}, y\big) \qquad \ell = \text{cross-entropy over the labelled pixels}"


@st.cache_data(max_entries=8, show_spinner=False)
def _architecture(model_key: str, _model: LoadedModel) -> arch.ArchitectureSummary:
    return _model.predictor.architecture_summary()


@st.cache_data(max_entries=4, show_spinner=False)
def _paper_architecture(num_classes: int) -> arch.ArchitectureSummary:
    return arch.paper_model_summary(num_classes)


@st.cache_data(max_entries=8, show_spinner=False)
def _diagram_png(scales: tuple[float, ...], head_kind: str | None) -> bytes:
    return plots.figure_png(plots.model_diagram_figure(scales, head_kind), dpi=110)


def how_it_works_section(model: LoadedModel) -> None:
    """The model for a student: share-net, attention head, Eq. 2 and Eq. 1, the special cases, E-Supv."""
    config = model.metadata.model
    summary = _architecture(model.key, model)
    scales = tuple(config.scales)
    head_kind = summary.head_kind
    count = len(scales)
    _figure(_diagram_png(scales, head_kind), f"The model at its trained scales {viz.format_scale_set(scales)}: "
            + ("attention head, softmax over scales, weighted sum" if head_kind else f"no attention head, {config.merge} pooling"))

    st.subheader("1. One network, several scales (share-net)")
    st.markdown(
        f"The image is resized to each scale s, here {viz.format_scale_set(scales)}, and every copy goes through "
        f"**the same network**, DeepLab-LargeFOV: VGG-16 made fully convolutional, its last pooling layers keeping the "
        f"resolution and atrous (dilated) convolutions widening the view instead. Each scale gives a **score map fˢ**: "
        f"for every cell of a grid with one cell per **{summary.output_stride} input pixels**, one score per class. A cell "
        f"sees **{summary.receptive_field} x {summary.receptive_field} pixels** of the image it is given; at scale s that is "
        f"{summary.receptive_field} / s pixels of the original, so the coarse copies see whole large objects while the full-size "
        "copy keeps the detail of small ones. The score maps are resized to the grid of the largest scale, so that they can be "
        "compared cell by cell."
    )
    st.subheader("2. The attention head and Eq. 2")
    if head_kind == "paper":
        head_text = (
            f"This checkpoint's head is the paper's: it concatenates the fc7 features of all {count} scales and returns "
            f"{count} logits per cell, one per scale, so it only fuses the scale set it was trained with."
        )
    elif head_kind == "shared":
        head_text = (
            "This checkpoint's head is shared: it scores each scale's fc7 features on their own (one logit per scale and cell, "
            "given log2 s as an extra input channel), so it can fuse any set of scales in its trained range."
        )
    else:
        head_text = f"This checkpoint has **no attention head**: it was trained with {plain(config.merge)} pooling, a special case below."
    st.markdown(
        "A second, small network, the **attention head** (a 3x3 convolution, ReLU, a 1x1 convolution), reads the features the "
        "trunk computed (fc7) and gives one number per scale and cell: the **logit hˢ**, how much that scale should count there. "
        "A softmax **over the scales** turns the logits into weights that are positive and sum to 1 at every cell. The same "
        "weight wˢ multiplies every class's score: the head chooses a scale, not a class. "
        + head_text
    )
    st.latex(EQ2_LATEX)
    st.subheader("3. Eq. 1: the weighted sum")
    st.markdown(
        "The fused score of class c at cell i is the weighted sum of the scales' scores. Its argmax over the classes, upsampled to "
        "the image, is the label. Where a scale's weight is near 1, the result is that scale's own prediction; where the weights are "
        "even, the scales vote. The *Pixel inspector* writes both equations out with the numbers of any pixel you pick."
    )
    st.latex(EQ1_LATEX)
    st.subheader("4. Average and max pooling are special cases")
    st.markdown(
        f"Fix the weights at 1/S (here 1/{count}) everywhere and Eq. 1 is **average pooling**. Take, for each class on its own, the "
        "largest score over the scales and it is **max pooling**: then there is no weight shared by the classes, so max pooling is "
        "not a weighted sum of the kind Eq. 1 describes. The attention model learns where each scale deserves the weight instead of "
        "fixing the rule in advance; the *Merge comparison* page shows the three side by side."
    )
    st.latex(AVERAGE_LATEX)
    st.subheader("5. Extra supervision (E-Supv)")
    supervised = (model.metadata.training or {}).get("config", {}).get("extra_supervision")
    st.markdown(
        "Trained only through g, a scale can hide behind the others. With extra supervision each scale's own score map fˢ gets a "
        "loss against the ground truth too, so every scale learns to segment by itself and the attention has real alternatives to "
        "choose between. "
        + {True: "This checkpoint was trained with it.", False: "This checkpoint was trained without it."}.get(supervised, "Its training card does not say whether this checkpoint used it.")
    )
    st.latex(ESUPV_LATEX)


def architecture_section(model: LoadedModel) -> None:
    """The loaded checkpoint's layers with receptive field and jump, its totals, and the paper's full model beside it."""
    summary = _architecture(model.key, model)
    every = st.toggle("Every layer (also ReLU, normalisation, dropout)", key="describe_all_layers")
    rows = summary.rows(spatial_only=not every)
    _table(rows, digits=0, height=min(38 + 35 * len(rows), 1000))  # every convolution and pooling layer without scrolling
    st.caption(
        "Kernel, stride, dilation and padding along one axis; receptive field (RF) and jump in pixels of the image at the scale it is fed, "
        "after the layer. The score head and the attention head continue from fc7."
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**This checkpoint**")
        _pairs_table(summary.totals())
    with right:
        paper = _paper_architecture(summary.num_classes)
        st.markdown("**The paper's model, for comparison** (width 1, paper head, {1, 0.75, 0.5})")
        _pairs_table([
            ("parameters", f"{paper.total_parameters:,}"),
            *[(f"  {part}", f"{paper.parameters[part]:,}") for part in arch.PARTS],
            ("output stride", str(paper.output_stride)),
            ("receptive field", f"{paper.receptive_field} px"),
            ("this checkpoint's share", f"{summary.total_parameters / paper.total_parameters:.1%} of the parameters (width {summary.width:g})"),
        ])  # fmt: skip


def training_card_section(metadata: CheckpointMetadata) -> None:
    """What the checkpoint says about its training: data, scales, supervision, optimiser, steps, metrics."""
    _pairs_table(arch.training_card(metadata))


# ----------------------------------------------------------------------------- 5. checkpoints


@st.cache_data(max_entries=32, show_spinner=False)
def _checkpoint_card(file_key: str, path: str) -> arch.CheckpointCard:
    return arch.checkpoint_card(path)


@st.cache_data(max_entries=4, show_spinner=False)
def _read_uploaded_checkpoint(digest: str, name: str, _data: bytes) -> tuple[CheckpointMetadata, arch.ArchitectureSummary]:
    """Metadata and architecture of an uploaded checkpoint; raises CheckpointError (not cached)."""
    model, metadata = arch.load_checkpoint_bytes(_data, name)
    return metadata, arch.architecture_summary(model)


CARD_FIELDS = ("trunk", "attention head", "trained scales", "scale range", "data", "steps", "wall time", "machine")


def _card(metadata: CheckpointMetadata, caption: str, extra=()) -> None:
    """A checkpoint's card: its name, a caption (file, size), what it is in short, the whole training card folded."""
    full = arch.training_card(metadata)
    fields = dict(full)
    short = [(name, fields[name]) for name in CARD_FIELDS if name in fields]
    short += [(name, value) for name, value in full if name.startswith("metric")] + list(extra)
    with st.container(border=True):
        st.markdown(f"**{plain(metadata.name or 'unnamed model')}**")
        st.caption(plain(caption))
        _pairs_table(short)
        with st.expander("Full training card"):
            _pairs_table(full)


def shipped_checkpoints_section() -> None:
    """A card per checkpoint in the checkpoint folder: trunk, head, scales, data, steps, metrics (or why it cannot be used)."""
    folder = checkpoint_dir()
    paths = list_checkpoints(folder)
    if not paths:
        show_error(f"No checkpoint (.pt file) in {folder}.", "No checkpoints.")
        return
    columns = st.columns(2, gap="medium")
    for k, path in enumerate(paths):
        card = _checkpoint_card(_file_key(path), str(path))
        with columns[k % 2]:
            caption = f"{path.name} · {card.size_bytes / 1e6:.1f} MB"
            if not card.ok:
                with st.container(border=True):
                    st.markdown(f"**{plain(path.name)}**")
                    show_error(card.error or "unreadable", "Cannot be used.")
                continue
            _card(card.metadata, caption)


def own_checkpoint_section() -> None:
    """Upload a .pt: read with weights_only=True, its card shown, and on request used on every page of this session."""
    uploaded = st.file_uploader(
        "A checkpoint file of your own (.pt)", key="checkpoint_upload",
        help="A segscale checkpoint (python -m segscale train writes them). It is read with torch.load(weights_only=True): "
        "a file whose pickle would build arbitrary objects is refused, never run.",
    )  # fmt: skip
    if uploaded is None:
        st.caption("Read with `weights_only=True`: only tensors and plain data are unpickled, never code. It stays in this session only.")
        return
    data = uploaded.getvalue()
    try:
        metadata, summary = _read_uploaded_checkpoint(_digest(data), uploaded.name, data)
    except CheckpointError as error:
        show_error(str(error), "This file cannot be used as a checkpoint.")
        return
    except Exception as error:  # anything else a hostile or odd file provokes: a message, not a traceback
        LOG.exception("reading an uploaded checkpoint failed")
        show_error(f"{uploaded.name}: {type(error).__name__}: {error}", "This file cannot be used as a checkpoint.")
        return
    option = f"{UPLOADED_PREFIX}{uploaded.name}"
    totals = [("parameters", f"{summary.total_parameters:,}"), ("output stride", str(summary.output_stride)), ("receptive field", f"{summary.receptive_field} px")]
    _card(metadata, f"{uploaded.name} · {len(data) / 1e6:.1f} MB · uploaded, read with weights_only=True", totals)
    if option in uploaded_checkpoints():
        st.success(f"In use for this session: choose “{plain(option)}” in the Checkpoint box of any page.", icon=":material/check:")
    else:
        st.button(
            "Use it in the app for this session", key="checkpoint_use", icon=":material/input:",
            on_click=use_uploaded_checkpoint, args=(uploaded.name, data),
        )  # fmt: skip
