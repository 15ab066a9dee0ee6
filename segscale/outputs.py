"""The files of one prediction, each kind declared once: its name, file suffix, MIME type, label and maker.

Three places save a prediction, and all three read :data:`OUTPUT_KINDS`, so none can offer a file the others
name, make or spell differently:

* the main view's download buttons (``ui/main_view.py``), for the kinds with ``in_app``;
* ``python -m segscale predict`` on image files (:mod:`segscale.commands.predict`);
* folder jobs, ``predict`` on a folder, glob or list (:mod:`segscale.batch.runner`).

A file is named ``<stem><suffix>``, the stem saying which image, merge and scale set made it
(:func:`output_stem`: ``photo_attention_1-0.75-0.5_labels.png``), so files saved with other settings never
overwrite each other. A kind that does not apply to a prediction is not written: max pooling has no weights
to draw, one scale has nothing to leave out (:meth:`OutputKind.applies`, decided from the merge and scales
alone, so a folder job knows before predicting which files make an image complete).

The makers are pure: a :class:`~segscale.predictor.Prediction`, its checkpoint's metadata and
:class:`OutputOptions` in, bytes out. The pictures in them come from :mod:`segscale.visualize` (arrays) and
:mod:`segscale.plots` (figures); files are written through :func:`segscale.atomic_files.write_atomically`.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import visualize as viz
from .atomic_files import write_atomically
from .formatting import format_scale_set, scale_label
from .merges import LEARNED_MERGES, MAX, merge_info
from .metrics import attention_entropy
from .palette import ATTENTION_CMAP

# ----------------------------------------------------------------------------- what a file holds


def palette_png(labels: np.ndarray, palette) -> bytes:
    """(H, W) labels as an indexed PNG: pixel values are class indices, the palette gives colours.

    The PASCAL VOC convention, so any tool reads either the classes or the colours.
    """
    labels = np.asarray(labels)
    if len(palette) > 256 or (labels.size and (labels.min() < 0 or labels.max() > 255)):
        raise ValueError("an indexed PNG holds class indices 0-255 and at most 256 palette colours")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = [int(v) for colour in palette for v in colour]
    image.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def attention_png(weights: np.ndarray, size: tuple[int, int], gap: int = 8) -> bytes:
    """The S weight maps w^s side by side as one PNG, each upsampled to ``size`` (H, W).

    Left to right in the order of the scale set, on the fixed 0-1 range of
    :data:`~segscale.palette.ATTENTION_CMAP` (dark = 0, yellow = 1), separated by ``gap`` white pixels.
    The exact values are in :func:`prediction_npz`.
    """
    maps = viz.upsample_maps(weights, size)
    height, width = size
    count = maps.shape[0]
    canvas = np.full((height, count * width + (count - 1) * gap, 3), 255, dtype=np.uint8)
    for k in range(count):
        canvas[:, k * (width + gap) : k * (width + gap) + width] = viz.heat_map(maps[k], 0.0, 1.0, ATTENTION_CMAP)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "PNG")
    return buffer.getvalue()


def prediction_maps(prediction) -> dict[str, np.ndarray]:
    """Every map of a prediction (and what explains it) as named arrays; see :func:`prediction_npz`."""
    maps: dict[str, np.ndarray] = {
        "image": prediction.image,
        "labels": prediction.labels.astype(np.int64),
        "scales": np.asarray(prediction.scales, dtype=np.float64),
        "merge": np.asarray(prediction.merge),
        "score_maps": prediction.score_maps,
        "fused": prediction.fused,
        "original_size": np.asarray(prediction.original_size, dtype=np.int64),
    }
    if prediction.attention_logits is not None:
        maps["attention_logits"] = prediction.attention_logits
    if prediction.attention is not None:
        maps["attention"] = prediction.attention
        maps["attention_entropy_bits"] = attention_entropy(prediction.attention, unit="bits").astype(np.float32)
    if prediction.merge in LEARNED_MERGES and prediction.attention is not None:
        maps["dominant_scale"] = viz.dominant_scale(prediction.attention)
    elif prediction.merge == MAX:
        maps["dominant_scale"] = viz.winning_scale_for_max(prediction.score_maps, prediction.fused.argmax(axis=0))
    return maps


def prediction_npz(prediction, classes, palette) -> bytes:
    """Every map of a prediction as a compressed ``.npz`` (loads with ``allow_pickle=False``).

    Arrays: image (H, W, 3) uint8; labels (H, W); scales (S,); merge (str); score_maps
    (S, C, h, w); fused (C, h, w); attention_logits and attention (S, h, w) when the merge has
    them; attention_entropy_bits (h, w); dominant_scale (h, w) indices into scales; classes (C,)
    str; palette (C, 3) uint8; original_size (2,).
    """
    maps = prediction_maps(prediction)
    maps["classes"] = np.asarray([str(c) for c in classes])
    maps["palette"] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps)
    return buffer.getvalue()


def prediction_figure_png(view: viz.PredictionView, prediction, metadata, image_name: str) -> bytes:
    """The side-by-side figure of one prediction as PNG, titled "image · model · merge over {scales}".

    Saved whole (not cropped tight), so the panels keep the layout
    :func:`~segscale.plots.side_by_side_figure` gives them.
    """
    from . import plots  # matplotlib only when a figure is made: folder jobs' decoding workers import this module

    title = f"{image_name} · {metadata.name} · {prediction.merge} over {format_scale_set(prediction.scales)}"
    return plots.figure_png(plots.side_by_side_figure(view, prediction, metadata.classes, title=title), tight=False)


def ablation_png(prediction, metadata, title: str = "") -> bytes:
    """The leave-one-scale-out figure of a prediction (two or more scales) as PNG bytes."""
    from . import plots

    ablation = prediction.scale_ablation()
    return plots.figure_png(plots.scale_ablation_figure(ablation, prediction.image, metadata.palette, title))


# ----------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class OutputOptions:
    """What the files of one prediction show beyond the prediction itself.

    title: the image as its owner knows it (a file name, or its path under a folder job's root); the figures'
        titles.
    class_index: the class whose score map the side-by-side figure shows; None for
        :func:`~segscale.visualize.default_class`.
    score_kind: that map as a "probability" or a raw "score".
    view: the page's :class:`~segscale.visualize.PredictionView`, already built with its own class and score
        kind; when given, the figure draws it (class_index and score_kind are then not used).
    """

    title: str = ""
    class_index: int | None = None
    score_kind: str = "probability"
    view: viz.PredictionView | None = None


def _labels_file(prediction, metadata, options: OutputOptions) -> bytes:
    return palette_png(prediction.labels, metadata.palette)


def _attention_file(prediction, metadata, options: OutputOptions) -> bytes:
    return attention_png(prediction.attention, prediction.labels.shape)


def _maps_file(prediction, metadata, options: OutputOptions) -> bytes:
    return prediction_npz(prediction, metadata.classes, metadata.palette)


def _figure_file(prediction, metadata, options: OutputOptions) -> bytes:
    view = options.view
    if view is None:
        class_index = options.class_index
        if class_index is None:
            class_index = viz.default_class(prediction.labels, len(metadata.classes))
        view = viz.build_view(prediction, metadata.classes, metadata.palette, class_index, options.score_kind)
    return prediction_figure_png(view, prediction, metadata, options.title)


def _ablation_file(prediction, metadata, options: OutputOptions) -> bytes:
    return ablation_png(prediction, metadata, options.title)


@dataclass(frozen=True)
class OutputKind:
    """One kind of file saved from a prediction.

    name: its key in ``--outputs``, in folder jobs' summaries and in the page's widget keys.
    suffix: what follows the stem in its file name.
    mime: its MIME type, for a download.
    label: its download button's label.
    what: what it holds, in a few words, for messages ("attention maps").
    make: (prediction, checkpoint metadata, :class:`OutputOptions`) -> the file's bytes.
    needs_weights: only for merges with weights w^s to draw (not max pooling).
    needs_several_scales: only for two or more scales.
    in_app: offered by the main view's download buttons.
    """

    name: str
    suffix: str
    mime: str
    label: str
    what: str
    make: Callable[..., bytes]
    needs_weights: bool = False
    needs_several_scales: bool = False
    in_app: bool = True

    def missing_reason(self, merge: str, scales) -> str:
        """Why a prediction with ``merge`` over ``scales`` has no such file, as a sentence; '' when it has one."""
        if self.needs_weights and merge_info(merge).weights is None:
            return f"No {self.what}: {merge_info(merge).label} has no weights."
        if self.needs_several_scales and len(scales) < 2:
            return f"No {self.what}: one scale has nothing to leave out."
        return ""

    def applies(self, merge: str, scales) -> bool:
        """Whether a prediction with ``merge`` over ``scales`` has this file."""
        return not self.missing_reason(merge, scales)


OUTPUT_KINDS: dict[str, OutputKind] = {
    kind.name: kind
    for kind in (
        OutputKind("labels", "_labels.png", "image/png", "Fused labels (palette PNG)", "fused labels", _labels_file),
        OutputKind(
            "attention",
            "_attention.png",
            "image/png",
            "Attention maps (PNG)",
            "attention maps",
            _attention_file,
            needs_weights=True,
        ),
        OutputKind("maps", "_maps.npz", "application/octet-stream", "Every map (.npz)", "maps", _maps_file),
        OutputKind(
            "figure", "_figure.png", "image/png", "Side-by-side figure (PNG)", "side-by-side figure", _figure_file
        ),
        # The main view shows what each scale decides in a section of its own rather than as a download.
        OutputKind(
            "ablation",
            "_ablation.png",
            "image/png",
            "Leave one scale out (PNG)",
            "leave-one-scale-out figure",
            _ablation_file,
            needs_several_scales=True,
            in_app=False,
        ),
    )
}
OUTPUT_NAMES = tuple(OUTPUT_KINDS)
APP_DOWNLOADS = tuple(name for name, kind in OUTPUT_KINDS.items() if kind.in_app)


def output_kind(name: str) -> OutputKind:
    """The registry's entry for ``name``; ValueError naming the kinds for anything else."""
    try:
        return OUTPUT_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown output kind {name!r}; valid: {', '.join(OUTPUT_NAMES)}") from None


def kinds_that_apply(names, merge: str, scales) -> tuple[str, ...]:
    """The kinds of ``names`` (None: every kind) that a prediction with ``merge`` over ``scales`` has, in order."""
    names = OUTPUT_NAMES if names is None else tuple(names)
    return tuple(name for name in names if output_kind(name).applies(merge, scales))


# ----------------------------------------------------------------------------- file names and writing


def safe_file_stem(name: str | None, default: str = "image") -> str:
    """A file name stem safe on every system, from a name a person chose (``../My photo.JPG`` -> ``My_photo``)."""
    stem = Path(str(name or "")).stem if name else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80]
    return stem or default


def output_stem(image_name: str | None, merge: str, scales) -> str:
    """The stem of every file saved from one prediction: the image, the merge and the scale set.

    ``output_stem("My photo.jpg", "attention", (1, 0.75, 0.5))`` is ``My_photo_attention_1-0.75-0.5``,
    so files of one image saved with different merges or scale sets never overwrite each other.
    """
    scale_set = "-".join(scale_label(s) for s in scales)
    return f"{safe_file_stem(image_name)}_{safe_file_stem(merge, 'merge')}_{scale_set}"


def output_name(image_name: str | None, merge: str, scales, kind: str) -> str:
    """The file name of output ``kind`` of the image ``image_name`` predicted with ``merge`` over ``scales``."""
    return output_stem(image_name, merge, scales) + output_kind(kind).suffix


def output_paths(folder: Path, image_name: str | None, merge: str, scales, kinds) -> dict[str, Path]:
    """kind -> the path of that file in ``folder``, for each of ``kinds``."""
    return {kind: Path(folder) / output_name(image_name, merge, scales, kind) for kind in kinds}


def write_outputs(prediction, metadata, paths: dict[str, Path], options: OutputOptions) -> list[Path]:
    """Make and write each file of ``paths`` (kind -> path) that applies to ``prediction``; the paths written.

    Each file is written whole or not at all (:func:`~segscale.atomic_files.write_atomically`), so a file under
    its final name is complete even after a kill; ValueError naming the file when one cannot be written.
    """
    written = []
    for name, path in paths.items():
        kind = output_kind(name)
        if not kind.applies(prediction.merge, prediction.scales):
            continue
        write_atomically(path, kind.make(prediction, metadata, options))
        written.append(path)
    return written
