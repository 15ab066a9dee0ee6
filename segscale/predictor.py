"""The numpy-facing API between the model and everything that shows its results.

    p = Predictor.from_checkpoint("checkpoints/scaleshapes_demo.pt")
    r = p.predict(image, scales=(1.0, 0.75, 0.5), merge="attention")
    r.labels  # (H, W) class indices, r.attention  # (S, h, w) weights w^s

The app, the command line and the tests go through this class; none of them touches tensors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import CheckpointMetadata, model_from_checkpoint
from .config import MERGE_MODES
from .images import DEFAULT_MAX_SIDE, as_rgb_array, cap_longest_side, check_min_size
from .inference import AUTOCAST_MIN_AGREEMENT, FastMultiScale, FastPathOptions, synchronize
from .modeling import MultiScaleOutput

__all__ = ["AUTOCAST_MIN_AGREEMENT", "Prediction", "Predictor", "StageTimings", "device_description", "select_device"]


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or the best available: CUDA, then Apple's MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_description(device: torch.device) -> str:
    """A human name for a device: the GPU's model, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


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
        merge: "attention", "average" or "max".
        image: uint8 (H, W, 3), the RGB image the model saw.
        score_maps: float32 (S, C, h, w), f^s on the common grid.
        attention_logits: float32 (S, h, w), h^s; None for average and max.
        attention: float32 (S, h, w), w^s; 1/S everywhere for average; None for max.
        fused: float32 (C, h, w), g = sum_s w^s f^s (or the max over scales).
        labels: int64 (H, W), argmax over classes of g upsampled bilinearly to (H, W).
        original_size: (H, W) of the image before any cap; equals labels.shape when not scaled.
        device: where it ran, in words.
        timings: seconds per stage.
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

    @property
    def was_downscaled(self) -> bool:
        return tuple(self.labels.shape) != tuple(self.original_size)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.fused.shape[-2:])  # type: ignore[return-value]


class Predictor:
    """A model with its metadata on a device, predicting from numpy images.

    Args:
        model: a :class:`~segscale.modeling.MultiScaleNet`.
        metadata: the checkpoint's metadata (classes, palette, normalisation, scales).
        device: None for the best available (CUDA, then MPS, then CPU).
        max_side: longer image sides are scaled down to this before prediction (None: never).
        options: the fast path's optimisations (:class:`~segscale.inference.FastPathOptions`);
            the defaults fold batch norm, use channels_last and bf16 autocast where it pays.
            Predictions go through ``self.fast``, a prepared copy of the model; ``self.model``
            is the model as given (on ``device``, in eval mode).
    """

    def __init__(
        self,
        model: nn.Module,
        metadata: CheckpointMetadata,
        device=None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        *,
        options: FastPathOptions = FastPathOptions(),
    ) -> None:
        self.device = select_device(device)
        self.model = model.eval().to(self.device)
        self.metadata = metadata
        self.max_side = max_side
        # Predictions run through a copy of the model prepared for speed (segscale.inference):
        # batch norm folded, channels_last, bf16 autocast where it pays and its labels agree.
        self.fast = FastMultiScale(self.model, metadata.mean, metadata.std, self.device, options)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device=None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        *,
        options: FastPathOptions = FastPathOptions(),
    ) -> "Predictor":
        """Load a ``.pt`` checkpoint (read with ``weights_only=True``). Raises CheckpointError."""
        model, metadata = model_from_checkpoint(path)
        return cls(model, metadata, device=device, max_side=max_side, options=options)

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
    def device_name(self) -> str:
        return device_description(self.device)

    def check_request(self, scales=None, merge: str | None = None) -> tuple[tuple[float, ...], str]:
        """Validated (scales, merge) for a request; raises ValueError with what is allowed."""
        merge = self.default_merge if merge is None else merge
        if merge not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge!r}; valid: {', '.join(MERGE_MODES)}")
        return self.model.check_scales(scales, merge), merge

    def predict(self, image, scales=None, merge: str | None = None) -> Prediction:
        """Predict one image.

        Args:
            image: a PIL image or an (H, W, 3) uint8 RGB array.
            scales: the scale set; None for the checkpoint's default set.
            merge: "attention", "average" or "max"; None for the checkpoint's own (attention
                for the shipped models).
        """
        scales, merge = self.check_request(scales, merge)
        start = time.perf_counter()
        rgb = as_rgb_array(image)
        check_min_size(rgb)
        original_size = tuple(rgb.shape[:2])
        rgb, _ = cap_longest_side(rgb, self.max_side)
        pixels = torch.from_numpy(rgb).unsqueeze(0)  # (1, H, W, 3) uint8; moved to the device by the fast path
        preprocessed = time.perf_counter()

        # One pass on the device, no transfer until it is done: normalise, every scale, Eq. 1-2
        # on the grid, one upsample of the fused map and the argmax.
        output, labels = self.fast.run(pixels, scales, merge)
        synchronize(self.device)
        modelled = time.perf_counter()
        arrays = {
            name: (None if value is None else value[0].float().cpu().numpy())
            for name, value in (
                ("score_maps", output.score_maps),
                ("attention_logits", output.attention_logits),
                ("attention", output.attention),
                ("fused", output.fused),
            )
        }
        labels_np = labels[0].cpu().numpy()
        finished = time.perf_counter()
        return Prediction(
            scales=output.scales,
            merge=merge,
            image=rgb,
            labels=labels_np,
            original_size=original_size,  # type: ignore[arg-type]
            device=self.device_name,
            timings=StageTimings(preprocessed - start, modelled - preprocessed, finished - modelled),
            **arrays,
        )

    # Temporary (issue 12, bench branch): the lead adds these on main; keep main's version on merge.
    @property
    def autocast_agreement(self) -> float | None:
        """Share of labels bf16 autocast agreed on with float32 when it was decided (None before, or when not checked)."""
        return self.fast.autocast_agreement

    def run_pixels(self, pixels, scales, merge: str) -> tuple[MultiScaleOutput, Tensor]:
        """uint8 pixels (B, H, W, 3) -> (model output, labels (B, H, W) int64), both on the device."""
        return self.fast.run(pixels, scales, merge)

    @property
    def precision(self) -> str:
        """"bf16 autocast", "float32", or "undecided" before the first prediction (where it is chosen)."""
        if self.fast.use_autocast is None:
            return "undecided"
        return "bf16 autocast" if self.fast.use_autocast else "float32"
