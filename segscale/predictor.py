"""The numpy-facing API between the model and everything that shows its results.

    p = Predictor.from_checkpoint("checkpoints/scaleshapes_demo.pt")
    r = p.predict(image, scales=(1.0, 0.75, 0.5), merge="attention")
    r.labels  # (H, W) class indices, r.attention  # (S, h, w) weights w^s

The app, the command line and the tests go through this class; none of them touches tensors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointMetadata, model_from_checkpoint
from .config import MERGE_MODES, normalize_scales
from .devices import available_devices, device_description, select_device, synchronize
from .images import DEFAULT_MAX_SIDE, as_rgb_array, cap_longest_side, capped_size, check_min_size
from .inference import AUTOCAST_MIN_AGREEMENT, FastMultiScale, FastPathOptions
from .label_maps import compact_labels
from .merges import ATTENTION, ATTENTION_HEAD, GATE_HEAD, HEADS, LEARNED_MERGES, merge_info, merges_with
from .modeling.geometry import scaled_size

__all__ = [
    "AUTOCAST_MIN_AGREEMENT",
    "DEFAULT_PIXEL_BUDGET",
    "SCALE_PRESETS",
    "Prediction",
    "Predictor",
    "StageTimings",
    "available_devices",
    "device_description",
    "select_device",
]

# The scale sets offered besides a checkpoint's trained one, where its range allows.
SCALE_PRESETS: tuple[tuple[float, ...], ...] = ((1.0, 0.75, 0.5), (1.0, 0.5), (1.0, 0.75), (1.0,))
# The largest input one scale may be resized to, in pixels: an image capped at DEFAULT_MAX_SIDE
# (2048) at scale 2 just fits. Above it one request would ask for tens of GB (scale 100 of a
# 512 px image is a 51 200 px square), so it is refused before anything is allocated.
DEFAULT_PIXEL_BUDGET = 4096 * 4096
_SCALE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class StageTimings:
    """Seconds spent in each stage of one prediction."""

    preprocess_s: float
    model_s: float
    postprocess_s: float

    @property
    def total_s(self) -> float:
        return self.preprocess_s + self.model_s + self.postprocess_s


@dataclass(frozen=True)
class Prediction:
    """One image's multi-scale prediction, as numpy arrays.

    Shapes: S scales, C classes, (h, w) the common stride-8 grid of the largest scale,
    (H, W) the image as predicted (after any cap of its longest side).

    Attributes:
        scales: the S scales used, in the order of every S axis.
        merge: "attention", "hierarchical", "average" or "max".
        image: uint8 (H, W, 3), the RGB image the model saw.
        score_maps: float32 (S, C, h, w), f^s on the common grid.
        attention_logits: float32 (S, h, w), h^s; None for average and max.
        attention: float32 (S, h, w), w^s; 1/S everywhere for average; for hierarchical the
            effective weights of the gate chain (:func:`segscale.modeling.fusion.hierarchical_chain`);
            None for max.
        fused: float32 (C, h, w), g = sum_s w^s f^s (or the max over scales).
        labels: (H, W), argmax over classes of g upsampled bilinearly to (H, W); uint8 up to 256
            classes, else int64 (:mod:`segscale.label_maps`).
        original_size: (H, W) of the image before any cap; equals labels.shape when not scaled.
        device: where it ran, in words.
        timings: seconds per stage.
        gate_logits: float32 (S, h, w), q^s of the gate head; None unless merge is hierarchical.
        align_corners: how the labels were upsampled from the grid (the trunk's convention, see
            :mod:`segscale.trunks`); views that upsample the maps again follow it.
    """

    scales: tuple[float, ...]
    merge: str
    image: np.ndarray
    score_maps: np.ndarray
    attention_logits: np.ndarray | None
    attention: np.ndarray | None
    fused: np.ndarray
    labels: np.ndarray
    original_size: tuple[int, int]
    device: str
    timings: StageTimings
    gate_logits: np.ndarray | None = None
    align_corners: bool = True

    @property
    def was_downscaled(self) -> bool:
        return tuple(self.labels.shape) != tuple(self.original_size)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.fused.shape[-2:])  # type: ignore[return-value]

    # What each scale decides, from these score maps alone (no extra network pass):
    # segscale.diagnostics.ablation has the definitions.

    def scale_ablation(self, merge: str | None = None):
        """Leave each scale out in turn and fuse the rest with ``merge`` (this prediction's by default):
        a :class:`~segscale.diagnostics.ablation.ScaleAblation`. ValueError for a single scale."""
        from .diagnostics.ablation import scale_ablation

        return scale_ablation(self, merge)

    def max_deciding_scale(self) -> np.ndarray:
        """(h, w) int64: the scale max pooling takes for the class it predicts, on the grid."""
        from .diagnostics.ablation import max_deciding_scale

        return max_deciding_scale(self.score_maps)

    def scale_confidence(self):
        """Each scale's top-class probability and, where the scales disagree, the most confident one:
        a :class:`~segscale.diagnostics.ablation.ScaleConfidence`."""
        from .diagnostics.ablation import scale_confidence

        return scale_confidence(self.score_maps, self.scales)


def prediction_from_output(
    output,
    labels,
    index: int,
    image,
    original_size,
    device: str,
    timings: StageTimings | None = None,
    align_corners: bool = True,
) -> Prediction:
    """Image ``index`` of a batch's (MultiScaleOutput, labels) as a numpy :class:`Prediction`.

    The one place where the model's tensors (on any device, in any dtype) become a Prediction:
    every map is copied to the CPU in float32, the labels in :func:`~segscale.label_maps.label_dtype`
    (uint8 up to 256 classes). ``image`` is the uint8 RGB
    array the model saw, ``original_size`` its (H, W) before any cap.
    """

    def numpy_of(value):
        # C order: the trunk runs channels-last, and numpy's reductions over the class axis (the views'
        # argmax and softmax) are many times slower on those strides than the one copy here.
        return None if value is None else np.ascontiguousarray(value[index].float().cpu().numpy())

    return Prediction(
        scales=tuple(output.scales),
        merge=output.merge,
        image=image,
        score_maps=numpy_of(output.score_maps),
        attention_logits=numpy_of(output.attention_logits),
        attention=numpy_of(output.attention),
        fused=numpy_of(output.fused),
        labels=compact_labels(labels[index].cpu().numpy(), output.score_maps.shape[2]),
        original_size=tuple(int(v) for v in original_size),  # type: ignore[arg-type]
        device=device,
        timings=timings or StageTimings(0.0, 0.0, 0.0),
        gate_logits=numpy_of(getattr(output, "gate_logits", None)),
        align_corners=align_corners,
    )


class Predictor:
    """A model with its metadata on a device, predicting from numpy images.

    Args:
        model: a :class:`~segscale.modeling.MultiScaleNet`.
        metadata: the checkpoint's metadata (classes, palette, normalisation, scales).
        device: None for the best available (CUDA, then MPS, then CPU).
        max_side: longer image sides are scaled down to this before prediction (None: never).
        options: the fast path's optimisations (:class:`~segscale.inference.FastPathOptions`);
            the defaults fold batch norm, use channels_last and bf16 autocast where it pays.
        pixel_budget: the most pixels any one scaled input may have (see :meth:`check_request`).

    Only the public members below are for callers: the prepared model inside is an
    implementation detail, and the Predictor keeps that one copy only (the model given is
    copied once for the fast path and not kept).
    """

    def __init__(
        self,
        model: nn.Module,
        metadata: CheckpointMetadata,
        device=None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        *,
        options: FastPathOptions = FastPathOptions(),
        pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    ) -> None:
        self.device = select_device(device)
        self.metadata = metadata
        self.max_side = max_side
        self.pixel_budget = int(pixel_budget)
        self._heads = tuple(head for head in HEADS if getattr(model, head.attribute, None) is not None)
        # Predictions run through a copy of the model prepared for speed (segscale.inference):
        # batch norm folded, channels_last, bf16 autocast where it pays and its labels agree.
        # The model as given is not kept: one copy of the weights per Predictor.
        self.fast = FastMultiScale(model.eval(), metadata.mean, metadata.std, self.device, options)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device=None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        *,
        options: FastPathOptions = FastPathOptions(),
        pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    ) -> Predictor:
        """Load a ``.pt`` checkpoint (read with ``weights_only=True``). Raises CheckpointError.

        The device is checked first, so ``device="cuda"`` on a machine without one fails
        before the file is read."""
        device = select_device(device)
        model, metadata = model_from_checkpoint(path)
        return cls(model, metadata, device=device, max_side=max_side, options=options, pixel_budget=pixel_budget)

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.classes)

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return list(self.metadata.palette)

    @property
    def default_scales(self) -> tuple[float, ...]:
        return self.metadata.model.scales

    @property
    def default_merge(self) -> str:
        return self.metadata.model.merge

    @property
    def align_corners(self) -> bool:
        """How maps are resized to the image around this model's trunk (:mod:`segscale.trunks`)."""
        return self.fast.model.align_corners

    @property
    def device_name(self) -> str:
        return device_description(self.device)

    # ------------------------------------------------------------------ what this model offers

    @property
    def has_attention_head(self) -> bool:
        """Whether the model has an attention head (so merge="attention" is possible)."""
        return ATTENTION_HEAD in self._heads

    @property
    def has_gate_head(self) -> bool:
        """Whether the model has Tao et al.'s gate head (so merge="hierarchical" is possible)."""
        return GATE_HEAD in self._heads

    @property
    def offered_merges(self) -> tuple[str, ...]:
        """The merges this model can do, in MERGE_MODES order: attention only with an attention
        head, hierarchical only with a gate head; average and max always."""
        return merges_with(self._heads)

    @property
    def unoffered_merges(self) -> dict[str, str]:
        """The merges this model cannot do, each with why in words (the head it lacks), in MERGE_MODES order."""
        return {merge: reason for merge in MERGE_MODES if (reason := self._missing_head(merge)) is not None}

    def _missing_head(self, merge: str) -> str | None:
        """Why this model cannot do ``merge`` (the head it lacks), or None when it can."""
        info = merge_info(merge)
        return None if info.head is None or info.head in self._heads else info.missing

    @property
    def inspection_merge(self) -> str:
        """The merge to predict with when every merge is derived from one pass (inspector, comparison,
        diagnostics): attention or hierarchical when the model has that head, since its pass also yields
        the score maps that average and max pooling need; else the checkpoint's own."""
        learned = [merge for merge in LEARNED_MERGES if merge in self.offered_merges]
        return learned[0] if learned else self.default_merge

    @property
    def scale_range(self) -> tuple[float, float]:
        """(smallest, largest) scale this model accepts: the range it was trained on."""
        return self.metadata.scale_range

    def fixed_scale_set(self, merge: str) -> bool:
        """True when ``merge`` works only at the trained scale set (the paper's attention head)."""
        return merge == ATTENTION and self.metadata.model.head.kind == "paper"

    def offered_scale_sets(self, merge: str) -> list[tuple[float, ...]]:
        """Preset scale sets this model accepts for ``merge``, its trained set first."""
        trained = self.default_scales
        candidates = [trained] + [s for s in SCALE_PRESETS if sorted(s) != sorted(trained)]
        return [s for s in candidates if self.accepts_scales(s, merge)]

    def custom_scale_grid(self, step: float = 0.05) -> list[float]:
        """The scales a custom set may use: a ``step`` grid over the accepted range, plus the trained
        scales, largest first. Empty when ``merge`` is fixed to the trained set."""
        low, high = self.scale_range
        grid = np.round(np.arange(np.ceil(low / step) * step, high + 1e-9, step), 4)
        values = {float(v) for v in grid if low - _SCALE_TOLERANCE <= v <= high + _SCALE_TOLERANCE}
        return sorted(values | set(self.default_scales), reverse=True)

    def accepts_scales(self, scales, merge: str | None = None) -> bool:
        """Whether :meth:`check_request` takes this scale set (ignoring the image size)."""
        try:
            self.check_request(scales, merge)
        except ValueError:
            return False
        return True

    @property
    def autocast_agreement(self) -> float | None:
        """Share of the first image's pixels whose bf16 labels matched float32 (None: not measured)."""
        return self.fast.autocast_agreement

    # ------------------------------------------------------------------ requests

    def check_request(
        self, scales=None, merge: str | None = None, image_size: tuple[int, int] | None = None
    ) -> tuple[tuple[float, ...], str]:
        """Validated (scales, merge) for a request; raises ValueError naming what is allowed.

        This is the one place that decides which scale sets a model accepts:
        * the merge must be one of :attr:`offered_merges`;
        * every scale must lie in :attr:`scale_range` (where the model was trained);
        * the paper's attention head fuses only its trained set;
        * with ``image_size`` (H, W, before the cap to ``max_side``), the largest scaled input
          must fit :attr:`pixel_budget`; checked before anything is allocated.
        """
        merge = self.default_merge if merge is None else merge
        if merge not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge!r}; valid: {', '.join(MERGE_MODES)}")
        missing = self._missing_head(merge)
        if missing is not None:
            raise ValueError(
                f"{missing}, so it cannot merge with {merge!r}; use one of: {', '.join(self.offered_merges)}"
            )
        scales = self.default_scales if scales is None else normalize_scales(scales)
        low, high = self.scale_range
        outside = [s for s in scales if not low - _SCALE_TOLERANCE <= s <= high + _SCALE_TOLERANCE]
        if outside:
            raise ValueError(
                f"scale {outside[0]:g} is outside this model's range {low:g} to {high:g} (the scales it was "
                f"trained on); pick scales from {low:g} to {high:g}"
            )
        scales = self.fast.check_scales(scales, merge)
        if image_size is not None:
            self.check_pixel_budget(image_size, scales)
        return scales, merge

    def check_pixel_budget(self, image_size: tuple[int, int], scales) -> None:
        """Raise ValueError when the image (H, W, as given) at its largest scale exceeds the budget."""
        height, width = capped_size(int(image_size[0]), int(image_size[1]), self.max_side)
        largest = max(scales)
        scaled_h, scaled_w = scaled_size((height, width), largest)
        if scaled_h * scaled_w <= self.pixel_budget:
            return
        fits = (self.pixel_budget / (height * width)) ** 0.5
        fits = int(fits * 100) / 100  # round down to two decimals, so it really fits
        raise ValueError(
            f"scale {largest:g} makes this {width}x{height} image {scaled_w}x{scaled_h} px "
            f"({scaled_w * scaled_h / 1e6:.1f} Mpx), over the budget of {self.pixel_budget / 1e6:.1f} Mpx per "
            f"scaled input; the largest scale that fits is {fits:g}"
        )

    def predict(self, image, scales=None, merge: str | None = None) -> Prediction:
        """Predict one image.

        Args:
            image: a PIL image or an (H, W, 3) uint8 RGB array.
            scales: the scale set; None for the checkpoint's default set.
            merge: "attention", "hierarchical", "average" or "max"; None for the checkpoint's own (attention
                for the shipped models).
        """
        start = time.perf_counter()
        rgb = as_rgb_array(image)
        check_min_size(rgb)
        scales, merge = self.check_request(scales, merge, image_size=rgb.shape[:2])
        original_size = tuple(rgb.shape[:2])
        rgb, _ = cap_longest_side(rgb, self.max_side)
        pixels = torch.from_numpy(rgb).unsqueeze(0)  # (1, H, W, 3) uint8; moved to the device by the fast path
        preprocessed = time.perf_counter()

        # One pass on the device, no transfer until it is done: normalise, every scale, Eq. 1-2
        # on the grid, one upsample of the fused map and the argmax.
        output, labels = self.run_pixels(pixels, scales, merge)
        synchronize(self.device)
        modelled = time.perf_counter()
        prediction = prediction_from_output(
            output, labels, 0, rgb, original_size, self.device_name, align_corners=self.align_corners
        )
        finished = time.perf_counter()
        return replace(
            prediction, timings=StageTimings(preprocessed - start, modelled - preprocessed, finished - modelled)
        )

    def predict_batch(self, images, scales=None, merge: str | None = None, original_sizes=None) -> list[Prediction]:
        """Predict images of one size in one pass (what folder jobs run).

        Args:
            images: (H, W, 3) uint8 RGB arrays, all of the same size once capped to ``max_side``.
            scales, merge: as for :meth:`predict`, the same for every image.
            original_sizes: each image's (H, W) before the caller capped it (a folder job's
                loader caps as it decodes); None: the sizes as given. Checked against the
                pixel budget, as :meth:`predict` checks its image.

        Each Prediction's timings hold its share of the batch's time, all as model time.
        """
        if not len(images):
            return []
        given = [as_rgb_array(image) for image in images]
        for rgb in given:
            check_min_size(rgb)
        rgbs = [cap_longest_side(rgb, self.max_side)[0] for rgb in given]
        sizes = [tuple(rgb.shape[:2]) for rgb in given] if original_sizes is None else list(original_sizes)
        if len({rgb.shape for rgb in rgbs}) != 1:
            raise ValueError(f"predict_batch needs images of one size; got {sorted({rgb.shape[:2] for rgb in rgbs})}")
        for size in sizes:
            scales, merge = self.check_request(scales, merge, image_size=size)
        started = time.perf_counter()
        pixels = torch.from_numpy(np.stack(rgbs))  # (B, H, W, 3) uint8
        output, labels = self.run_pixels(pixels, scales, merge)
        synchronize(self.device)
        timings = StageTimings(0.0, (time.perf_counter() - started) / len(rgbs), 0.0)
        return [
            prediction_from_output(output, labels, index, rgb, size, self.device_name, timings, self.align_corners)
            for index, (rgb, size) in enumerate(zip(rgbs, sizes))
        ]

    def run_pixels(self, pixels, scales, merge: str):
        """uint8 pixels (B, H, W, 3) -> (MultiScaleOutput, labels (B, H, W)), both on the device.

        The tensor-level call behind :meth:`predict`, for the benchmark and batch jobs: no
        checks beyond the model's own, no copy to numpy. See
        :meth:`segscale.inference.FastMultiScale.run` for the CUDA-graph buffer caveat.
        """
        return self.fast.run(pixels, scales, merge)

    def architecture_summary(self):
        """Every layer of this model with its receptive field (:func:`segscale.architecture.architecture_summary`).

        Built from the checkpoint's description on the meta device (no weights are
        allocated), so it counts the layers as trained, before batch norm was folded."""
        from .architecture import architecture_summary
        from .modeling import build_model

        with torch.device("meta"):
            return architecture_summary(build_model(self.metadata.model))

    @property
    def precision(self) -> str:
        """ "bf16 autocast", "float32", or "undecided" before the first prediction (where it is chosen)."""
        if self.fast.use_autocast is None:
            return "undecided"
        return "bf16 autocast" if self.fast.use_autocast else "float32"
