"""Building blocks for segscale's Streamlit pages: controls, cached model, sections, downloads.

Every page (``app.py``, ``pages/*.py``) is a few lines of layout calling these. The model is
loaded once per process (:func:`load_predictor`, ``st.cache_resource``, used read-only); a
prediction is cached on (checkpoint, image, scales, merge) (:func:`predict`), so moving a
display slider never runs the model again. Nothing in ``segscale/`` imports Streamlit; the
pictures come from :mod:`segscale.visualize`, the same functions ``python -m segscale predict``
uses.

Widget keys (for ``AppTest`` and for pages sharing state): ``checkpoint``, ``merge``,
``scale_preset``, ``custom_scales``, ``image_source``, ``upload``, ``gallery_index``,
``new_sample``, ``score_class``, ``score_kind``, ``overlay_alpha``. Pass ``key_prefix`` to use
a control twice on one page.

Text safety: strings a person supplies (file names) go through :func:`plain` before they
reach Markdown, and nothing is rendered with ``unsafe_allow_html``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from segscale import visualize as viz
from segscale.checkpoint import CheckpointError, CheckpointMetadata
from segscale.config import MERGE_MODES, normalize_scales
from segscale.data.scaleshapes import CLASSES as SCALESHAPES_CLASSES
from segscale.data.scaleshapes import generate_sample
from segscale.images import DEFAULT_MAX_SIDE, MIN_SIDE, READABLE_DESCRIPTION, ImageError, load_image
from segscale.metrics import ConfusionMatrix
from segscale.predictor import Prediction, Predictor

LOG = logging.getLogger("segscale.app")

APP_DIR = Path(__file__).resolve().parent
CHECKPOINT_DIR_ENV = "SEGSCALE_CHECKPOINT_DIR"
DEFAULT_CHECKPOINT = "scaleshapes_demo.pt"
# Scale sets offered besides "custom"; each is shown only when the checkpoint supports it.
SCALE_PRESETS: tuple[tuple[float, ...], ...] = ((1.0, 0.75, 0.5), (1.0, 0.5), (1.0, 0.75), (1.0,))
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
def _load_model(key: str, path: str) -> LoadedModel:
    started = time.perf_counter()
    predictor = Predictor.from_checkpoint(path)
    return LoadedModel(predictor, Path(path), key, time.perf_counter() - started)


def load_predictor(path: Path) -> LoadedModel:
    """The model of a checkpoint file, loaded once per process; raises CheckpointError.

    Cached on the file's size and modification time, so a checkpoint replaced on disk (a
    better model trained meanwhile) is read again. The predictor is shared by every session
    and must be used read-only (``Predictor.predict`` is).
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name}: no such file in {path.parent}")
    return _load_model(_file_key(path), str(path))


def checkpoint_picker(key_prefix: str = "") -> LoadedModel | None:
    """Checkpoint selector with the chosen model's card; None (and an error shown) if none loads."""
    folder = checkpoint_dir()
    paths = list_checkpoints(folder)
    if not paths:
        show_error(
            f"No checkpoint (.pt file) in {folder}. Put one there, or point the environment variable "
            f"{CHECKPOINT_DIR_ENV} to a folder that has one.",
            "No model.",
        )
        return None
    names = [path.name for path in paths]
    name = st.selectbox(
        "Checkpoint",
        names,
        key=f"{key_prefix}checkpoint",
        help=f"Every .pt file in {folder}",
    )
    try:
        with st.spinner(f"Loading {name}…"):
            model = load_predictor(folder / name)
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
    has_head = getattr(model.predictor.model, "attention_head", None) is not None
    modes = [mode for mode in MERGE_MODES if has_head or mode != "attention"]
    return st.radio(
        "Merge over scales",
        modes,
        key=f"{key_prefix}merge",
        horizontal=True,
        help="  \n".join(MERGE_HELP[mode] for mode in modes),
    )


def offered_scale_sets(metadata: CheckpointMetadata, merge: str) -> list[tuple[float, ...]]:
    """Preset scale sets this checkpoint supports for ``merge``, its trained set first."""
    trained = metadata.model.scales
    if merge == "attention" and metadata.model.head.kind == "paper":
        return [trained]  # the paper's head concatenates S feature maps: S and their order are fixed
    low, high = metadata.scale_range
    inside = [s for s in SCALE_PRESETS if all(low - 1e-6 <= v <= high + 1e-6 for v in s)]
    return [trained] + [s for s in inside if sorted(s) != sorted(trained)]


def custom_scale_options(metadata: CheckpointMetadata) -> list[float]:
    """The scales a custom set may use: a 0.05 grid over the checkpoint's range, largest first."""
    low, high = metadata.scale_range
    grid = np.round(np.arange(np.ceil(low / CUSTOM_STEP) * CUSTOM_STEP, high + 1e-9, CUSTOM_STEP), 4)
    values = {float(v) for v in grid if low - 1e-6 <= v <= high + 1e-6} | set(metadata.model.scales)
    return sorted(values, reverse=True)


def scale_set_picker(model: LoadedModel, merge: str, key_prefix: str = "") -> tuple[float, ...] | None:
    """Preset or custom scale set, validated by ``Predictor.check_request``; None (error shown) if invalid."""
    metadata = model.metadata
    presets = offered_scale_sets(metadata, merge)
    trained = metadata.model.scales

    def label(option) -> str:
        if option == CUSTOM:
            return "custom…"
        text = viz.format_scale_set(option)
        return f"{text} (trained)" if tuple(option) == tuple(trained) else text

    options: list = list(presets)
    paper_attention = merge == "attention" and metadata.model.head.kind == "paper"
    if not paper_attention:
        options.append(CUSTOM)
    choice = st.radio("Scale set", options, key=f"{key_prefix}scale_preset", format_func=label, horizontal=True)
    if paper_attention:
        st.caption("This checkpoint's attention head is the paper's: it fuses only its trained scale set.")
    if choice == CUSTOM:
        grid = custom_scale_options(metadata)
        picked = st.multiselect(
            "Custom scales",
            grid,
            default=[s for s in trained if s in grid],
            key=f"{key_prefix}custom_scales",
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
        uploaded = st.file_uploader(
            "Upload an image",
            key=f"{key_prefix}upload",
            help=f"{READABLE_DESCRIPTION} (a GIF's first frame), at least {MIN_SIDE}x{MIN_SIDE} pixels. "
            f"Larger than {max_side} px on a side is scaled down.",
        )
        if uploaded is None:
            st.info(f"Upload an image ({READABLE_DESCRIPTION}), or choose the gallery.", icon=":material/upload:")
            return None
        try:
            rgb, notices, decode_s = decode_upload(uploaded.getvalue(), uploaded.name, max_side)
        except ImageError as error:
            show_error(str(error), "This file cannot be used.")
            st.caption("Replace the file above (or remove it with ×), or pick the gallery.")
            return None
        return ImageInput(rgb, uploaded.name, "upload", notices, None, image_key(rgb), decode_s)

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
