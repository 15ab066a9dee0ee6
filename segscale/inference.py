"""The fast inference path: a :class:`~segscale.modeling.MultiScaleNet` prepared once, run fast.

:class:`~segscale.predictor.Predictor` (and so the app and the command line) predicts
through :class:`FastMultiScale`; the benchmark (``python -m segscale bench``) times it
against the naive baseline of :mod:`segscale.benchmark`. What it does, each step measured
on its own in docs/PERFORMANCE.md:

* Eq. 1-2 on the stride-8 grid of the largest scale (as :class:`MultiScaleNet` does), and
  one upsample of the fused map only, to the image size, for the labels;
* labels as ``max(dim=1).indices``: the same first-maximum rule as ``argmax``, but a
  contiguous reduction on NCHW (``argmax`` over the strided class axis is ~7x slower on the CPU);
* ``torch.inference_mode`` rather than ``no_grad`` (no version counters, no view tracking);
* batch norm folded into the convolution before it (the model is copied; the caller's
  model is left alone);
* channels_last (NHWC) weights and inputs, which the oneDNN and cuDNN kernels prefer; the
  uint8 (H, W, 3) image already is NHWC, so normalising it in place of a permute costs nothing;
* bf16 autocast for the trunk and heads, with Eq. 1-2 still in float32 (the model does
  that): tried on CUDA and on CPUs with native bf16 (AMX or AVX512-BF16), and decided on the
  first image by measurement on the machine itself: kept only when it ran faster than float32
  there and its labels agree with float32 on at least 99.5% of the image's pixels; once kept,
  the convolution weights are stored in bf16 rather than cast per call;
* optional ``torch.compile`` and, on CUDA, optional CUDA graphs per fixed input shape; each
  falls back to eager execution, with a warning, when it is unavailable or fails.

The reference the fast path must agree with stays plain: the same model in float32, NCHW,
under ``no_grad`` (tests/test_fast_path.py checks the 99.5% on the CPU).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import devices
from .modeling.geometry import ALIGN_CORNERS, resize_bilinear
from .modeling.multiscale import MultiScaleOutput

# bf16 labels must agree with float32 on at least this share of pixels for autocast to be kept.
AUTOCAST_MIN_AGREEMENT = 0.995
AUTOCAST_CHOICES = ("auto", "bf16", "off")
# ... and run at most this share of float32's time on the first image (the timing probe), or it is not worth it.
AUTOCAST_MAX_TIME_RATIO = 0.9


@dataclass(frozen=True)
class FastPathOptions:
    """Which optimisations :class:`FastMultiScale` applies (the defaults are the Predictor's).

    channels_last: NHWC weights and activations.
    fold_batchnorm: fold eval-mode batch norm into the convolution before it.
    autocast: "auto" (bf16 where the first image runs faster with it and its labels agree
        with float32; tried on CUDA and CPUs with AMX or AVX512-BF16), "bf16" (always,
        unchecked) or "off" (float32).
    compile: ``torch.compile`` the model (one compilation per input shape; minutes on a CPU).
    cuda_graphs: on CUDA, capture one CUDA graph per input shape, scale set and merge and
        replay it (removes the per-kernel launch cost at small batches). Ignored elsewhere.
    cudnn_benchmark: on CUDA, let cuDNN time its algorithms per new shape (pays off for
        fixed shapes, costs on the first call of each). Ignored elsewhere.
    bf16_weights: once bf16 autocast is chosen, store the convolution weights in bf16, so
        that autocast does not cast them again on every call (it caches casts only within
        one autocast region).
    """

    channels_last: bool = True
    fold_batchnorm: bool = True
    autocast: str = "auto"
    compile: bool = False
    cuda_graphs: bool = False
    cudnn_benchmark: bool = False
    bf16_weights: bool = True

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"unknown autocast choice {self.autocast!r}; valid: {', '.join(AUTOCAST_CHOICES)}")


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d in an ``nn.Sequential`` into it, in place.

    y = gamma (conv(x) - mean) / sqrt(var + eps) + beta is again a convolution, with weights
    scaled per output channel and a new bias; the norm becomes an ``nn.Identity``, so layer
    names (conv1_1, conv1_1_norm, ...) stay where they were. Only valid in eval mode (running
    statistics); the caller passes a copy.
    """
    assert not module.training, "fold batch norm only into a model in eval mode (it uses the running statistics)"
    for sequential in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(sequential._modules)
        for previous, name in zip(names, names[1:]):
            conv, norm = sequential._modules[previous], sequential._modules[name]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                sequential._modules[previous] = fuse_conv_bn_eval(conv, norm)
                sequential._modules[name] = nn.Identity()
    return module


def prepare_model(model: nn.Module, device: torch.device, options: FastPathOptions) -> nn.Module:
    """A copy of ``model`` for inference: eval mode, batch norm folded, NHWC weights, on ``device``."""
    prepared = copy.deepcopy(model).eval()
    if options.fold_batchnorm:
        fold_batchnorm(prepared)
    prepared = prepared.to(device)
    if options.channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
    for parameter in prepared.parameters():
        parameter.requires_grad_(False)
    return prepared


def labels_from_fused(fused: Tensor, size: tuple[int, int], align_corners: bool = ALIGN_CORNERS) -> Tensor:
    """(B, C, h, w) fused scores -> (B, *size) int64 labels: one bilinear upsample, then the argmax.

    ``max(dim=1).indices`` returns the first maximum, as ``argmax`` does, but reduces over a
    contiguous axis of the NCHW map, which is several times faster on the CPU.
    """
    upsampled = resize_bilinear(fused.float().contiguous(), tuple(size), align_corners)  # (B, C, H, W)
    return upsampled.max(dim=1).indices


class FastMultiScale:
    """A multi-scale model on one device, prepared for fast prediction from uint8 pixels.

    Args:
        model: a :class:`~segscale.modeling.MultiScaleNet`; copied, never modified.
        mean, std: per-channel normalisation of RGB values in [0, 1] (the checkpoint's).
        device: where to run; None for the device of the model's parameters.
        options: which optimisations to apply.

    Call :meth:`run` with uint8 pixels (B, H, W, 3); its outputs live on ``device``.

    Thread safety: several threads may call :meth:`run` at once (the app shares one Predictor
    between sessions). The first-call decision (bf16 autocast or not, and casting the weights
    to bf16) happens once, under a lock, before any call runs with it: a thread that arrives
    while it is open waits, so none sees weights cast halfway. CUDA graph capture and replay
    run under a second lock, and each replay's outputs are copied for their caller, since the
    graph's buffers are shared by every caller of that shape.
    """

    def __init__(self, model: nn.Module, mean, std, device=None, options: FastPathOptions = FastPathOptions()) -> None:
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.options = options
        self.model = prepare_model(model, self.device, options)
        devices.use_cudnn_benchmark(self.device, options.cudnn_benchmark)  # process-wide: set once, here
        mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add on the uint8 values.
        self._input_scale = 1.0 / (255.0 * std)
        self._input_shift = -mean / std
        # None: undecided until the first image, which is run both ways (see _decide_autocast).
        self.use_autocast: bool | None = {
            "off": False,
            "bf16": True,
            "auto": None if devices.bf16_worth_probing(self.device) else False,
        }[options.autocast]
        self.autocast_agreement: float | None = None
        self.autocast_seconds: tuple[float, float] | None = None  # (float32, bf16) on the first image
        self._forward = self.model
        if options.compile:
            compiled = _compiled_or_none(self.model)
            self._forward = self.model if compiled is None else compiled
        self._graphs: dict[tuple, _CapturedRun] = {}
        self._graphs_failed = False
        self._weights_in_bf16 = False
        self._decision_lock = threading.Lock()  # the autocast decision and the bf16 cast, once
        self._graph_lock = threading.Lock()  # capture and replay of CUDA graphs, one caller at a time
        if self.use_autocast:
            self._store_bf16_weights()

    def check_scales(self, scales, merge: str | None = None) -> tuple[float, ...]:
        return self.model.check_scales(scales, merge)

    def images_from_pixels(self, pixels) -> Tensor:
        """uint8 (B, H, W, 3) tensor or array (or one (H, W, 3) image) -> normalised (B, 3, H, W) on the device.

        The uint8 values travel to the device (4x fewer bytes than float32); the permuted view
        of NHWC pixels already has channels_last strides, which ``float()`` and the
        multiply-add keep.
        """
        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(pixels)
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(0)
        assert pixels.dim() == 4 and pixels.shape[-1] == 3, (
            f"pixels must be (B, H, W, 3) uint8, got {tuple(pixels.shape)}"
        )
        nhwc = pixels.to(self.device, non_blocking=True)
        images = nhwc.permute(0, 3, 1, 2).float()  # (B, 3, H, W), channels_last strides
        if not self.options.channels_last:
            images = images.contiguous()
        return torch.addcmul(self._input_shift, images, self._input_scale)  # one pass: shift + images * scale

    def forward(self, images: Tensor, scales, merge: str, autocast: bool, cache_casts: bool = True) -> MultiScaleOutput:
        """Normalised images (B, 3, H, W) on the device -> the model's output, under inference_mode.

        ``cache_casts=False`` while capturing a CUDA graph: autocast's cache of bf16 weight
        copies must not outlive the capture.
        """
        if self._weights_in_bf16 and not autocast:
            raise ValueError(
                "this fast path stores its convolution weights in bf16; for float32 build one with "
                "FastPathOptions(autocast='off') (or bf16_weights=False)"
            )
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast, cache_enabled=cache_casts),
        ):
            return self._call_model(images, scales, merge)

    def run(self, pixels, scales=None, merge: str | None = None) -> tuple[MultiScaleOutput, Tensor]:
        """uint8 pixels (B, H, W, 3) -> (model output, labels (B, H, W) int64), both on the device.

        Safe to call from several threads (see the class docstring). With CUDA graphs on, the
        returned tensors are copies of the graph's buffers, made before the next replay.
        """
        scales = self.check_scales(scales, merge)
        merge = self.model.config.merge if merge is None else merge
        with torch.inference_mode():
            images = self.images_from_pixels(pixels)
            if self.use_autocast is None:
                self._decide_autocast_once(images, scales, merge)
            size = tuple(images.shape[-2:])
            if self.options.cuda_graphs and self.device.type == "cuda" and not self._graphs_failed:
                with self._graph_lock:  # a capture must not overlap other work; a replay overwrites shared buffers
                    captured = self._captured(images, scales, merge)
                    if captured is not None:
                        return captured(images)
            output = self.forward(images, scales, merge, self.use_autocast)
            return output, labels_from_fused(output.fused, size, self.model.align_corners)

    def _decide_autocast_once(self, images: Tensor, scales, merge: str) -> None:
        """Decide autocast on this image unless another thread did meanwhile; publish the decision last.

        ``use_autocast`` stays None until the weights are in their final dtype, so a thread that
        reads a decision also finds the weights that go with it.
        """
        with self._decision_lock:
            if self.use_autocast is not None:
                return
            decided = self._decide_autocast(images, scales, merge)
            if decided:
                self._store_bf16_weights()
            self.use_autocast = decided

    def _call_model(self, images: Tensor, scales, merge: str) -> MultiScaleOutput:
        if self._forward is self.model:
            return self.model(images, scales=scales, merge=merge)
        try:
            return self._forward(images, scales=scales, merge=merge)
        except Exception as error:  # compilation fails lazily, on the first call
            warnings.warn(f"torch.compile failed ({type(error).__name__}: {error}); running eagerly", stacklevel=3)
            self._forward = self.model
            return self.model(images, scales=scales, merge=merge)

    def _decide_autocast(self, images: Tensor, scales, merge: str) -> bool:
        """Run the first image in float32 and in bf16, twice each (the first call of each warms up)
        and timed the second time; keep bf16 only if its labels agree and it is faster by the
        measure (AUTOCAST_MAX_TIME_RATIO) on this machine."""
        size = tuple(images.shape[-2:])
        labels, seconds = {}, {}
        for autocast in (False, True, False, True):
            started = time.perf_counter()
            labels[autocast] = labels_from_fused(
                self.forward(images, scales, merge, autocast=autocast).fused, size, self.model.align_corners
            )
            devices.synchronize(self.device)
            seconds[autocast] = time.perf_counter() - started
        self.autocast_agreement = (labels[False] == labels[True]).float().mean().item()
        self.autocast_seconds = (seconds[False], seconds[True])
        return (
            self.autocast_agreement >= AUTOCAST_MIN_AGREEMENT
            and seconds[True] <= AUTOCAST_MAX_TIME_RATIO * seconds[False]
        )

    def _store_bf16_weights(self) -> None:
        """Cast convolution weights and biases to bf16 once (autocast would do it on every call)."""
        if not self.options.bf16_weights or self._weights_in_bf16:
            return
        for module in self.model.modules():
            if isinstance(module, nn.Conv2d):
                module.to(torch.bfloat16)
        self._weights_in_bf16 = True

    def _captured(self, images: Tensor, scales, merge: str) -> _CapturedRun | None:
        key = (tuple(images.shape), images.dtype, scales, merge, self.use_autocast)
        if key not in self._graphs:
            try:
                self._graphs[key] = _CapturedRun(self, images, scales, merge)
            except Exception as error:
                warnings.warn(
                    f"CUDA graph capture failed ({type(error).__name__}: {error}); running eagerly", stacklevel=3
                )
                self._graphs_failed = True
                return None
        return self._graphs[key]


class _CapturedRun:
    """One CUDA graph of forward + labels for a fixed input shape, scale set and merge."""

    def __init__(self, fast: FastMultiScale, images: Tensor, scales, merge: str) -> None:
        self.static_images = images.clone()
        size = tuple(images.shape[-2:])

        def step():
            output = fast.forward(self.static_images, scales, merge, bool(fast.use_autocast), cache_casts=False)
            return output, labels_from_fused(output.fused, size, fast.model.align_corners)

        # Warm up on a side stream (cuDNN and autocast caches), as torch.cuda.graphs asks.
        side = torch.cuda.Stream(device=images.device)
        side.wait_stream(torch.cuda.current_stream(images.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                step()
        torch.cuda.current_stream(images.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = step()

    def __call__(self, images: Tensor) -> tuple[MultiScaleOutput, Tensor]:
        """Replay on ``images``; returns copies of the outputs, so the next replay cannot overwrite them.

        The caller holds FastMultiScale's graph lock; the copies are queued on the same stream
        as the replay, before the next caller's input copy."""
        self.static_images.copy_(images)
        self.graph.replay()
        output, labels = self.static_output
        return _cloned_output(output), labels.clone()


def _cloned_output(output: MultiScaleOutput) -> MultiScaleOutput:
    """The same MultiScaleOutput with every tensor copied (scales and merge kept)."""

    def clone(value):
        return None if value is None else value.clone()

    return dataclasses.replace(
        output,
        native_score_maps=tuple(clone(t) for t in output.native_score_maps),
        score_maps=clone(output.score_maps),
        attention_logits=clone(output.attention_logits),
        attention=clone(output.attention),
        fused=clone(output.fused),
        gate_logits=clone(output.gate_logits),
    )


def _compiled_or_none(model: nn.Module):
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        warnings.warn("this torch has no torch.compile; running eagerly", stacklevel=3)
        return None
    try:
        return compile_fn(model, dynamic=False)
    except Exception as error:
        warnings.warn(f"torch.compile is unavailable ({type(error).__name__}: {error}); running eagerly", stacklevel=3)
        return None
