"""The naive baseline the fast path is measured against, and
the fast path built up from it one optimisation at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..devices import synchronize
from ..inference import FastMultiScale, FastPathOptions, labels_from_fused
from ..merges import ATTENTION, MAX
from ..modeling.geometry import resize_bilinear, scaled_size


class NaiveMultiScale:
    """Multi-scale attention as public reimplementations write it: the baseline to beat.

    * a Python loop over scales calling the trunk and the heads;
    * float32, NCHW, under ``torch.no_grad``;
    * every score map and every attention logit map upsampled to the full input size, so
      Eq. 2 (softmax over scales) and Eq. 1 (weighted sum) run on S x C full-size maps;
    * the argmax over classes of the full-size fused map.

    It uses the model's own layers and resizes in its trunk's convention (``align_corners``,
    :mod:`segscale.trunks`), so its convolutions (and FLOPs) are the fast path's;
    only the way around them differs. Its labels agree with the fast path's up to the order
    of resizing and fusing (bilinear resizing and the softmax do not commute).
    """

    def __init__(self, model: nn.Module, mean, std, device: torch.device) -> None:
        self.network = model.eval().to(device)  # a plain MultiScaleNet, not a Predictor
        self.device = device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def __call__(self, pixels, scales, merge: str) -> Tensor:
        """uint8 pixels (B, H, W, 3), array or tensor -> labels (B, H, W) int64 on the device."""
        with torch.no_grad():
            pixels = torch.as_tensor(pixels)
            images = pixels.to(self.device).permute(0, 3, 1, 2).contiguous().float() / 255.0  # (B, 3, H, W)
            images = (images - self.mean) / self.std
            size = tuple(images.shape[-2:])
            align_corners = self.network.align_corners  # as the model resizes around its trunk
            features, full_scores = [], []
            for scale in scales:
                resized = F.interpolate(
                    images, size=scaled_size(size, scale), mode="bilinear", align_corners=align_corners
                )
                feature = self.network.trunk(resized)  # (B, F, h_s, w_s)
                features.append(feature)
                score = self.network.score_head(feature)  # (B, C, h_s, w_s)
                full_scores.append(F.interpolate(score, size=size, mode="bilinear", align_corners=align_corners))
            score_maps = torch.stack(full_scores, dim=1)  # (B, S, C, H, W)
            if merge == MAX:
                fused = score_maps.max(dim=1).values
            else:
                if merge == ATTENTION:
                    largest = max(range(len(scales)), key=lambda k: scales[k])
                    grid = tuple(features[largest].shape[-2:])
                    logits = self.network.attention_head(features, scales, grid)  # (B, S, h, w)
                    logits = F.interpolate(
                        logits, size=size, mode="bilinear", align_corners=align_corners
                    )  # (B, S, H, W)
                else:
                    logits = score_maps.new_zeros(score_maps.shape[:2] + score_maps.shape[3:])
                weights = torch.softmax(logits, dim=1)  # Eq. 2 at full resolution
                fused = (weights.unsqueeze(2) * score_maps).sum(dim=1)  # Eq. 1 at full resolution
            return fused.argmax(dim=1)


# ----------------------------------------------------------------------------- one optimisation at a time


@dataclass(frozen=True)
class Step:
    """One rung of the ladder from the naive baseline to the fast path."""

    name: str
    run: Callable[[object], Tensor]  # uint8 pixels (B, H, W, 3) -> labels (B, H, W)
    setup_s: float = 0.0  # one-off cost paid before the first call (compilation, graph capture)


def optimisation_ladder(
    model: nn.Module,
    mean,
    std,
    device: torch.device,
    scales,
    merge: str,
    example_pixels,
    compile: bool = False,
) -> list[Step]:
    """The fast path built up one optimisation at a time; each step keeps all the ones before it.

    Steps that cannot apply are left out (batch norm folding on a model without batch
    norm; cuDNN search and CUDA graphs off CUDA); torch.compile only when asked, as it takes
    minutes on a CPU. ``example_pixels`` pays the one-off costs (compilation, graph capture)
    outside the timed calls; they are reported as ``setup_s``.
    """
    naive = NaiveMultiScale(model, mean, std, device)
    steps = [Step("naive baseline (loop, fp32, NCHW, fuse at full size)", lambda p: naive(p, scales, merge))]

    def grid_fusion(labels_fn):
        def run(pixels):
            with torch.no_grad():
                images = torch.as_tensor(pixels).to(device).permute(0, 3, 1, 2).contiguous().float() / 255.0
                images = (images - naive.mean) / naive.std
                fused = naive.network(images, scales=scales, merge=merge).fused  # Eq. 1-2 on the score-map grid
                return labels_fn(fused, tuple(images.shape[-2:]))

        return run

    steps.append(
        Step(
            "fuse on the stride-8 grid, upsample the fused map once",
            grid_fusion(lambda fused, size: resize_bilinear(fused, size, naive.network.align_corners).argmax(dim=1)),
        )
    )
    steps.append(
        Step(
            "+ labels by max(dim=1).indices",
            grid_fusion(lambda fused, size: labels_from_fused(fused, size, naive.network.align_corners)),
        )
    )

    has_batchnorm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    rungs: list[tuple[str, dict]] = [
        (
            "+ inference_mode, uint8 pixels normalised in one multiply-add",
            dict(channels_last=False, fold_batchnorm=False, autocast="off"),
        ),
        ("+ channels_last", dict(channels_last=True)),
    ]
    if has_batchnorm:
        rungs.append(("+ batch norm folded into the convolutions", dict(fold_batchnorm=True)))
    rungs.append(("+ bf16 autocast (Eq. 1-2 stay float32)", dict(autocast="bf16")))
    rungs.append(("+ convolution weights stored in bf16 (cast once, not per call)", dict(bf16_weights=True)))
    if device.type == "cuda":
        rungs.append(("+ cudnn.benchmark", dict(cudnn_benchmark=True)))
    if compile:
        rungs.append(("+ torch.compile", dict(compile=True)))
    if device.type == "cuda":
        rungs.append(("+ CUDA graphs", dict(cuda_graphs=True)))

    options = dict(channels_last=False, fold_batchnorm=False, autocast="off", bf16_weights=False)
    for name, change in rungs:
        options.update(change)
        fast = FastMultiScale(model, mean, std, device, FastPathOptions(**options))
        start = time.perf_counter()
        setup = 0.0
        if options.get("compile") or options.get("cuda_graphs"):
            fast.run(example_pixels, scales, merge)
            synchronize(device)
            setup = time.perf_counter() - start
        steps.append(Step(name, lambda p, fast=fast: fast.run(p, scales, merge)[1], setup))
    return steps
