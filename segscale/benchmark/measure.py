"""FLOPs counted from layer shapes, interleaved timing, and peak memory.

Rules the measurements follow, because the machines they run on are often shared:

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
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..devices import synchronize

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
    return {name: Timing(tuple(seconds[name]), peaks.get(name), results.get(name)) for name in names}


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
