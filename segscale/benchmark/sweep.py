"""One model's measurements: the interleaved sweep over sizes and scale sets, the ladder, the largest input."""

from __future__ import annotations

import gc
import time

import numpy as np
import torch

from ..config import PAPER_SCALES
from ..devices import synchronize
from .baseline import optimisation_ladder
from .measure import Timing, multiscale_flops, paired_ratio, peak_memory_bytes, sum_of_squared_scales, time_interleaved
from .workloads import bench_image


def sweep_model(settings, workload, predictor, naive, sizes, scale_sets, merge, nominal, reference) -> list[dict]:
    """Every (size, scale set) of one model, naive and fast, in one interleaved loop.

    All points share the rounds, so a change of load during the sweep hits all of them and
    the latency fit compares like with like; each point's naive and fast calls (and, at the
    headline point, the reference workload) form a group that always runs back to back.
    """
    device = settings.device
    images = {size: bench_image(size) for size in sizes}
    points = [(size, scales) for size in sizes for scales in scale_sets]
    headline = (nominal, PAPER_SCALES) if PAPER_SCALES in scale_sets else (nominal, scale_sets[-1])
    groups = []
    for index, (size, scales) in enumerate(points):
        image = images[size]
        group = {
            f"{index}:naive": lambda image=image, scales=scales: naive(image[None], scales, merge).cpu().numpy(),
            f"{index}:fast": lambda image=image, scales=scales: predictor.predict(image, scales=scales, merge=merge),
        }
        if (size, scales) == headline:
            group[f"{index}:reference"] = reference.fn
        groups.append(group)
    timings = time_interleaved(
        groups, device, settings.warmup, settings.repeats, budget_s=settings.budget_s, measure_memory=True
    )

    runs = []
    for index, (size, scales) in enumerate(points):
        naive_t, fast_t = timings[f"{index}:naive"], timings[f"{index}:fast"]
        flops = multiscale_flops(workload.model, (size, size), scales, merge)
        entry = {
            "model": workload.name,
            "size": [size, size],
            "scales": list(scales),
            "sum_s2": sum_of_squared_scales(scales),
            "pixels_x_sum_s2": size * size * sum_of_squared_scales(scales),
            "flops_per_image": flops,
            "naive": _timing_entry(naive_t, flops),
            "fast": _timing_entry(fast_t, flops),
            "fast_over_naive": paired_ratio(fast_t, naive_t),
            "speedup": paired_ratio(naive_t, fast_t),
            "label_agreement": float((naive_t.result[0] == fast_t.result.labels).mean()),
            "fast_precision": predictor.precision,
            "reference": None,
            "throughput": None,
        }
        if f"{index}:reference" in timings:
            reference_t = timings[f"{index}:reference"]
            entry["reference"] = {
                "name": reference.name,
                "median_s": reference_t.median_s,
                "fast_over_reference": paired_ratio(fast_t, reference_t),
                "naive_over_reference": paired_ratio(naive_t, reference_t),
            }
        runs.append(entry)

    # Throughput: the fast path alone at a large batch, where it is asked for.
    wanted = [
        (index, size, scales)
        for index, (size, scales) in enumerate(points)
        if settings.device.type == "cuda" or settings.full or settings.quick or (size, scales) == headline
    ]
    if wanted:
        batches = {index: _throughput_batch(settings, size) for index, size, _ in wanted}
        candidates = {}
        for index, size, scales in wanted:
            pixels = torch.from_numpy(
                np.ascontiguousarray(np.broadcast_to(images[size], (batches[index], size, size, 3)))
            ).to(device)
            candidates[str(index)] = lambda pixels=pixels, scales=scales: predictor.run_pixels(pixels, scales, merge)
        timings = time_interleaved(
            candidates,
            device,
            max(1, settings.warmup // 2),
            max(1, settings.repeats // 2),
            budget_s=settings.budget_s,
            min_repeats=2 if not settings.quick else 1,
            measure_memory=True,
        )
        for index, _, _ in wanted:
            t, batch, run = timings[str(index)], batches[index], runs[index]
            run["throughput"] = {
                "batch": batch,
                "median_s": t.median_s,
                "seconds": list(t.seconds),
                "images_per_s": batch / t.median_s,
                "tflops": run["flops_per_image"] * batch / t.median_s / 1e12,
                "peak_memory_mb": None if t.peak_memory_bytes is None else t.peak_memory_bytes / 2**20,
            }
    return runs


def _throughput_batch(settings, size: int) -> int:
    """About the pixels of ``settings.batch`` 512x512 images, within 1/4x to 4x of that batch."""
    if settings.quick:
        return settings.batch
    scaled = round(settings.batch * 512 * 512 / (size * size))
    return max(1, min(4 * settings.batch, scaled))


def _timing_entry(timing: Timing, flops: int) -> dict:
    peak = timing.peak_memory_bytes
    return {
        "median_s": timing.median_s,
        "min_s": timing.min_s,
        "spread": timing.spread,
        "seconds": list(timing.seconds),
        "tflops": flops / timing.median_s / 1e12,
        "peak_memory_mb": None if peak is None else peak / 2**20,
    }


def ablation_ladder(settings, workload, image, scales, merge) -> dict:
    """The fast path built up one optimisation at a time on one image, each step timed against the one before."""
    device = settings.device
    metadata = workload.metadata
    pixels = image[None]
    steps = optimisation_ladder(
        workload.model, metadata.mean, metadata.std, device, scales, merge, pixels, compile=settings.options.compile
    )
    timings = time_interleaved(
        {s.name: (lambda s=s: s.run(pixels)) for s in steps},
        device,
        settings.warmup,
        settings.repeats,
        budget_s=settings.budget_s,
    )
    reference_labels = steps[0].run(pixels)
    rows, previous = [], None
    for step in steps:
        t = timings[step.name]
        labels = step.run(pixels)
        rows.append(
            {
                "step": step.name,
                "median_s": t.median_s,
                "min_s": t.min_s,
                "spread": t.spread,
                "speedup_vs_previous": None if previous is None else paired_ratio(previous, t),
                "speedup_vs_naive": paired_ratio(timings[steps[0].name], t),
                "label_agreement_vs_naive": float((labels == reference_labels).float().mean().item()),
                "setup_s": step.setup_s,
            }
        )
        previous = t
    del steps
    free_memory(device)
    return {"model": workload.name, "size": list(image.shape[:2]), "scales": list(scales), "steps": rows}


def largest_input(settings, predictor, naive, image, scales, merge, name) -> dict:
    """Peak memory and time of one call each of the fast and naive paths on a large image."""
    device = settings.device
    entry = {"model": name, "size": list(image.shape[:2]), "scales": list(scales)}
    for label, fn in (
        ("fast", lambda: predictor.predict(image, scales=scales, merge=merge)),
        ("naive", lambda: naive(image[None], scales, merge).cpu()),
    ):
        fn()  # warm: first-shape costs are not memory of the pass
        synchronize(device)
        start = time.perf_counter()
        peak, _ = peak_memory_bytes(fn, device)
        entry[label] = {
            "peak_memory_mb": None if peak is None else peak / 2**20,
            "seconds": time.perf_counter() - start,
        }
        free_memory(device)
    return entry


def free_memory(device: torch.device) -> None:
    """Release what the last model left behind, so the next one's memory is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
