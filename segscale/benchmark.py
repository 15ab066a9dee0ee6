"""Benchmark parts: the naive baseline, the reference workloads, FLOP counting, timing and memory.

``python -m segscale bench`` (:mod:`segscale.commands.bench`) puts these together. Rules the
measurements follow, because the machines they run on are often shared:

* Candidates compared with each other run **interleaved** in one loop (round r runs every
  candidate once, in a rotated order), so a burst of load elsewhere hits them all alike;
  latencies are medians over rounds after warm-up, and ratios are the median of the
  per-round ratios (paired), not a ratio of medians.
* GPU work is synchronised before the clock stops.
* Peak memory is what a call adds on top of what was resident before it (weights and the
  input excluded): ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the process's
  peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) minus its size before.
* FLOPs are counted, not timed: 2 x the multiply-adds of every convolution, from the layer
  shapes of one forward pass on the meta device (no arithmetic is done). Resizing, pooling,
  ReLU, softmax and Eq. 1-2 are left out; they are well under 1% of the count.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .inference import synchronize
from .modeling.geometry import resize_bilinear, scaled_size

# ----------------------------------------------------------------------------- the naive baseline


class NaiveMultiScale:
    """Multi-scale attention as public reimplementations write it: the baseline to beat.

    * a Python loop over scales calling the trunk and the heads;
    * float32, NCHW, under ``torch.no_grad``;
    * every score map and every attention logit map upsampled to the full input size, so
      Eq. 2 (softmax over scales) and Eq. 1 (weighted sum) run on S x C full-size maps;
    * the argmax over classes of the full-size fused map.

    It uses the model's own layers, so its convolutions (and FLOPs) are the fast path's;
    only the way around them differs. Its labels agree with the fast path's up to the order
    of resizing and fusing (bilinear resizing and the softmax do not commute).
    """

    def __init__(self, model: nn.Module, mean, std, device: torch.device) -> None:
        self.model = model.eval().to(device)
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
            features, full_scores = [], []
            for scale in scales:
                resized = F.interpolate(images, size=scaled_size(size, scale), mode="bilinear", align_corners=True)
                feature = self.model.trunk(resized)  # (B, F, h_s, w_s)
                features.append(feature)
                score = self.model.score_head(feature)  # (B, C, h_s, w_s)
                full_scores.append(F.interpolate(score, size=size, mode="bilinear", align_corners=True))
            score_maps = torch.stack(full_scores, dim=1)  # (B, S, C, H, W)
            if merge == "max":
                fused = score_maps.max(dim=1).values
            else:
                if merge == "attention":
                    largest = max(range(len(scales)), key=lambda k: scales[k])
                    grid = tuple(features[largest].shape[-2:])
                    logits = self.model.attention_head(features, scales, grid)  # (B, S, h, w)
                    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)  # (B, S, H, W)
                else:
                    logits = score_maps.new_zeros(score_maps.shape[:2] + score_maps.shape[3:])
                weights = torch.softmax(logits, dim=1)  # Eq. 2 at full resolution
                fused = (weights.unsqueeze(2) * score_maps).sum(dim=1)  # Eq. 1 at full resolution
            return fused.argmax(dim=1)


# ----------------------------------------------------------------------------- FLOPs


def count_conv_flops(model: nn.Module, run: Callable[[nn.Module, torch.device], object]) -> int:
    """2 x multiply-adds of every Conv2d that ``run(meta_model, meta_device)`` calls.

    The model is copied to the meta device, so only shapes are computed: counting the
    full-width VGG at 2048 x 2048 takes milliseconds. A forward hook reads each
    convolution's output size; a dilated convolution costs what an undilated one does.
    """
    meta_model = copy.deepcopy(model).to("meta")
    total = 0

    def hook(conv: nn.Conv2d, inputs, output: Tensor) -> None:
        nonlocal total
        kernel_h, kernel_w = conv.kernel_size
        total += 2 * output.numel() * (conv.in_channels // conv.groups) * kernel_h * kernel_w

    handles = [m.register_forward_hook(hook) for m in meta_model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            run(meta_model, torch.device("meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def multiscale_flops(model: nn.Module, size: tuple[int, int], scales, merge: str, batch: int = 1) -> int:
    """Convolution FLOPs of one multi-scale forward pass on ``batch`` images of ``size``."""
    return count_conv_flops(
        model, lambda m, device: m(torch.empty(batch, 3, *size, device=device), scales=scales, merge=merge)
    )


def sum_of_squared_scales(scales) -> float:
    """sum_s s^2: the cost of a share-net pass in units of a single-scale pass."""
    return float(sum(s * s for s in scales))


# ----------------------------------------------------------------------------- timing and memory


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one candidate, one entry per timed round (warm-up excluded).

    ``peak_memory_bytes`` and ``result`` come from the last timed round, when asked for.
    """

    seconds: tuple[float, ...]
    peak_memory_bytes: int | None = None
    result: object = field(default=None, repr=False, compare=False)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min_s(self) -> float:
        return min(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range over the median: how noisy the machine was."""
        if len(self.seconds) < 4:
            return (max(self.seconds) - min(self.seconds)) / self.median_s
        q = statistics.quantiles(self.seconds, n=4)
        return (q[2] - q[0]) / self.median_s


Candidates = dict[str, Callable[[], object]]


def time_interleaved(
    candidates: Candidates | list[Candidates],
    device: torch.device,
    warmup: int = 2,
    repeats: int = 7,
    budget_s: float | None = None,
    min_repeats: int = 3,
    measure_memory: bool = False,
) -> dict[str, Timing]:
    """Run every candidate once per round and return their timed rounds.

    ``candidates`` is a dict, or a list of dicts (groups): members of a group always run
    back to back, so ratios between them are paired as tightly as possible. Each round
    rotates the order of the groups and, inside each, of their members, so that no
    candidate always runs first, after a big allocation, or last.

    With ``budget_s``, the timed rounds are cut to fit it (never below ``min_repeats``),
    judged from the last warm-up round; when the first warm-up round alone takes over an
    eighth of the budget, it is the only one. With ``measure_memory``, the last round also
    records each call's peak memory (outside the clock) and keeps its result.
    """
    groups = [candidates] if isinstance(candidates, dict) else list(candidates)
    names = [name for group in groups for name in group]
    assert len(set(names)) == len(names), "candidate names must be unique across groups"
    functions = {name: fn for group in groups for name, fn in group.items()}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, int | None] = {}
    results: dict[str, object] = {}

    def one_round(round_index: int, timed: bool, last: bool) -> float:
        started = time.perf_counter()
        shift = round_index % len(groups)
        for group in groups[shift:] + groups[:shift]:
            members = list(group)
            inner = round_index % len(members)
            for name in members[inner:] + members[:inner]:
                if last and measure_memory:
                    peaks[name], results[name], elapsed = _timed_with_peak(functions[name], device)
                else:
                    synchronize(device)
                    start = time.perf_counter()
                    functions[name]()
                    synchronize(device)
                    elapsed = time.perf_counter() - start
                if timed:
                    seconds[name].append(elapsed)
        return time.perf_counter() - started

    round_index, round_s = 0, 0.0
    for _ in range(warmup):
        round_s = one_round(round_index, timed=False, last=False)
        round_index += 1
        if budget_s is not None and round_s > budget_s / 8:
            break
    if budget_s is not None and round_s > 0:
        repeats = max(min_repeats, min(repeats, int(budget_s // round_s)))
    for index in range(repeats):
        one_round(round_index, timed=True, last=index == repeats - 1)
        round_index += 1
    return {
        name: Timing(tuple(seconds[name]), peaks.get(name), results.get(name)) for name in names
    }


def _timed_with_peak(fn: Callable[[], object], device: torch.device) -> tuple[int | None, object, float]:
    """(peak bytes above the resident baseline, result, seconds): the memory bookkeeping stays off the clock."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        return torch.cuda.max_memory_allocated(device) - before, result, elapsed
    _release_free_heap()
    before_kb = _read_proc_status_kb("VmRSS")
    tracked = before_kb is not None and _reset_peak_rss()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    if not tracked:
        return None, result, elapsed
    return max(0, (_read_proc_status_kb("VmHWM") - before_kb) * 1024), result, elapsed


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
    """Median over rounds of numerator / denominator, each pair timed back to back."""
    return statistics.median(a / b for a, b in zip(numerator.seconds, denominator.seconds))


def _read_proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current resident size (Linux >= 4.0)
        return True
    except OSError:
        return False


def _release_free_heap() -> None:
    """Give freed heap pages back to the OS, so the baseline resident size is what is in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> tuple[int | None, object]:
    """(bytes the call adds at its peak on top of what was resident before, fn's result).

    None where the platform cannot tell (no /proc on the CPU, say).
    """
    peak, result, _ = _timed_with_peak(fn, device)
    return peak, result


def process_peak_bytes(device: torch.device) -> int | None:
    """The process's own peak so far: allocated GPU memory, or the resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    kb = _read_proc_status_kb("VmHWM")
    return None if kb is None else kb * 1024


# ----------------------------------------------------------------------------- reference workloads


@dataclass(frozen=True)
class Reference:
    """A well-known workload timed in the same run, to place the results on this machine."""

    name: str
    fn: Callable[[], object]
    flops: int


def resnet18_reference(device: torch.device, size: int = 512, batch: int = 1) -> Reference:
    """torchvision's resnet18 (random weights), float32, eval, inference_mode, at size x size."""
    from torchvision.models import resnet18

    model = resnet18(weights=None).eval().to(device)
    images = torch.randn(batch, 3, size, size, device=device)
    flops = count_conv_flops(model, lambda m, d: m(torch.empty(batch, 3, size, size, device=d)))
    flops += 2 * batch * model.fc.in_features * model.fc.out_features

    def forward():
        with torch.inference_mode():
            return model(images)

    return Reference(f"resnet18 forward {size}x{size}, batch {batch}, float32", forward, flops)


def matmul_reference(device: torch.device, n: int, dtype: torch.dtype) -> Reference:
    """(n x n) @ (n x n) in ``dtype``: the device's dense matrix-product rate, its practical ceiling."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    name = str(dtype).replace("torch.", "")
    return Reference(f"matmul {n}x{n}x{n}, {name}", lambda: a @ b, 2 * n**3)


# ----------------------------------------------------------------------------- fitting and the machine


def linear_fit(x, y) -> dict[str, float]:
    """Least squares y = intercept + slope * x, with R^2 and the largest relative residual."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan"), "max_rel_residual": float("nan")}
    slope, intercept = np.polyfit(x, y, 1)
    predicted = intercept + slope * x
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - predicted) ** 2).sum()) / total if total > 0 else 1.0
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "r2": r2,
        "max_rel_residual": float(np.max(np.abs(y - predicted) / y)),
    }


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device) -> dict:
    """What the numbers were measured on, and how busy the machine was when the run began."""
    import torchvision

    info = {
        "device": str(device),
        "cpu": cpu_model_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cpu":
        from .inference import cpu_has_amx

        info["cpu_amx"] = cpu_has_amx()
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(
            gpu=properties.name,
            gpu_memory_gib=round(properties.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


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
    from .inference import FastMultiScale, FastPathOptions, labels_from_fused

    naive = NaiveMultiScale(model, mean, std, device)
    steps = [Step("naive baseline (loop, fp32, NCHW, fuse at full size)", lambda p: naive(p, scales, merge))]

    def grid_fusion(labels_fn):
        def run(pixels):
            with torch.no_grad():
                images = torch.as_tensor(pixels).to(device).permute(0, 3, 1, 2).contiguous().float() / 255.0
                images = (images - naive.mean) / naive.std
                fused = naive.model(images, scales=scales, merge=merge).fused  # Eq. 1-2 on the stride-8 grid
                return labels_fn(fused, tuple(images.shape[-2:]))

        return run

    steps.append(
        Step(
            "fuse on the stride-8 grid, upsample the fused map once",
            grid_fusion(lambda fused, size: resize_bilinear(fused, size).argmax(dim=1)),
        )
    )
    steps.append(Step("+ labels by max(dim=1).indices", grid_fusion(labels_from_fused)))

    has_batchnorm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    rungs: list[tuple[str, dict]] = [
        ("+ inference_mode, uint8 pixels normalised in one multiply-add", dict(channels_last=False, fold_batchnorm=False, autocast="off")),
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
