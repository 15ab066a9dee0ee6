"""The whole bench run: reference workloads, then every model's
sweep, ladder and largest input, as one JSON-ready report."""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

import torch

from ..config import PAPER_SCALES
from ..predictor import Predictor
from .baseline import NaiveMultiScale
from .machine import linear_fit, machine_description, matmul_reference, resnet18_reference
from .measure import time_interleaved
from .report import SCHEMA, bench_targets
from .settings import FULL_CPU_SWEEP, MODEL_SCALE_SETS, NOMINAL_SIZE, SWEEP, Settings
from .sweep import ablation_ladder, free_memory, largest_input, sweep_model
from .workloads import Workload, bench_image, fast_options, load_workloads


def run_suite(settings: Settings, log=lambda text: print(text, file=sys.stderr, flush=True)) -> dict:
    """Run everything ``settings`` asks for and return the report (schema :data:`SCHEMA`); ``log`` hears what starts."""
    device, kind = settings.device, ("cuda" if settings.device.type == "cuda" else "cpu")
    report: dict = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": _command_line(),
        "machine": machine_description(device),
        "settings": _jsonable_settings(settings),
        "references": [],
        "models": [],
        "runs": [],
        "ablation": [],
        "fits": [],
        "largest_input": [],
        "targets": [],
        "notes": settings.notes,
    }
    started = time.perf_counter()

    # Reference workloads, with their own interleaved rounds.
    ref_size = 64 if settings.quick else 512
    resnet = resnet18_reference(device, size=ref_size)
    references = [resnet]
    if kind == "cuda":
        references.append(matmul_reference(device, 1024 if settings.quick else 8192, torch.bfloat16))
    else:
        n = 256 if settings.quick else 2048
        references += [matmul_reference(device, n, torch.float32), matmul_reference(device, n, torch.bfloat16)]
    log(f"bench: reference workloads on {device}")
    timings = time_interleaved(
        {r.name: r.fn for r in references},
        device,
        settings.warmup,
        max(settings.repeats, 5),
        budget_s=settings.budget_s,
    )
    for ref in references:
        t = timings[ref.name]
        report["references"].append(
            {
                "name": ref.name,
                "median_s": t.median_s,
                "min_s": t.min_s,
                "spread": t.spread,
                "flops": ref.flops,
                "tflops": ref.flops / t.median_s / 1e12,
            }
        )

    workloads = load_workloads(settings)
    headline = _headline(workloads, kind)
    for workload in workloads:
        metadata = workload.metadata
        merge = metadata.model.merge
        options = fast_options(settings, workload)
        predictor = Predictor(workload.model, metadata, device=device, max_side=None, options=options)
        naive = NaiveMultiScale(workload.model, metadata.mean, metadata.std, device)
        nominal = settings.sizes[0] if settings.quick and settings.sizes else NOMINAL_SIZE[workload.name]
        sizes = _sizes_for(settings, workload.name, kind, nominal)
        scale_sets = []
        asked = (
            settings.scale_sets
            if settings.scale_sets_given
            else MODEL_SCALE_SETS.get(workload.name, settings.scale_sets)
        )
        for scales in asked:
            try:
                predictor.check_request(scales, merge)
                scale_sets.append(scales)
            except ValueError as error:
                settings.notes.append(f"{workload.name}: scale set {list(scales)} skipped: {error}")
        if not scale_sets:  # e.g. a 'paper' head, which fuses only the set it was trained on
            scale_sets = [metadata.model.scales]
            settings.notes.append(
                f"{workload.name}: benched on its trained scale set {list(metadata.model.scales)} only"
            )
        model_entry = {
            "name": workload.name,
            "description": workload.description,
            "merge": merge,
            "random_weights": workload.random_weights,
            "fast_path_options": asdict(options),
            "nominal_size": nominal,
        }
        report["models"].append(model_entry)

        log(
            f"bench: {workload.name}: sizes {sizes}, scale sets "
            f"{[list(x) for x in scale_sets]}, naive and fast interleaved"
        )
        model_runs = sweep_model(settings, workload, predictor, naive, sizes, scale_sets, merge, nominal, resnet)
        report["runs"] += model_runs
        model_entry["precision"] = predictor.precision
        model_entry["bf16_label_agreement_first_image"] = predictor.autocast_agreement

        points = [(r["pixels_x_sum_s2"], r["fast"]["median_s"]) for r in model_runs]
        if len({x for x, _ in points}) >= 2:
            fit = linear_fit([x / 1e6 for x, _ in points], [y for _, y in points])
            flops_fit = linear_fit(
                [r["pixels_x_sum_s2"] / 1e6 for r in model_runs], [r["flops_per_image"] / 1e9 for r in model_runs]
            )
            report["fits"].append(
                {
                    "model": workload.name,
                    "x": "megapixels x sum(s^2)",
                    "y": "fast-path latency at batch 1 (s)",
                    "points": len(points),
                    **fit,
                    "flops_r2": flops_fit["r2"],
                    "gflops_per_unit": flops_fit["slope"],
                }
            )

        if settings.ablation == "all" or (settings.ablation == "headline" and workload is headline):
            scales = PAPER_SCALES if PAPER_SCALES in scale_sets else scale_sets[-1]
            report["ablation"].append(ablation_ladder(settings, workload, bench_image(nominal), scales, merge))

        if settings.largest and workload is headline:
            image = bench_image(settings.largest)
            for scales in dict.fromkeys(
                [metadata.model.scales if metadata.model.scales in scale_sets else scale_sets[-1], scale_sets[-1]]
            ):
                log(f"bench: {workload.name} largest input {settings.largest}x{settings.largest} scales {list(scales)}")
                report["largest_input"].append(
                    largest_input(settings, predictor, naive, image, scales, merge, workload.name)
                )
        del predictor, naive
        free_memory(device)

    report["targets"] = bench_targets(report, kind)
    report["wall_time_s"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return report


def _command_line() -> str:
    """How this run was started, as it would be typed (when it came through the command line)."""
    if "bench" not in sys.argv[1:]:
        return "segscale.cli.main(['bench', ...]) in-process"
    arguments = sys.argv[sys.argv.index("bench") + 1 :]
    return " ".join(["python -m segscale bench", *(shlex.quote(a) for a in arguments)])


def _headline(workloads: list[Workload], kind: str) -> Workload | None:
    """The model the device's targets are about: the full-width net on a GPU, the demo on a CPU."""
    preferred = "vgg16_largefov" if kind == "cuda" else "demo"
    return next((w for w in workloads if w.name == preferred), workloads[0] if workloads else None)


def _sizes_for(settings: Settings, name: str, kind: str, nominal: int) -> list[int]:
    if settings.sizes:
        sizes = list(settings.sizes)
    elif kind == "cpu" and settings.full:
        sizes = list(FULL_CPU_SWEEP if name == "vgg16_largefov" else SWEEP["cpu"][name])
    else:
        sizes = list(SWEEP[kind][name])
    if nominal not in sizes and not settings.sizes:
        sizes.append(nominal)
    return sorted(set(sizes))


def _jsonable_settings(settings: Settings) -> dict:
    return {
        "models": list(settings.models),
        "checkpoint": str(settings.checkpoint),
        "width": settings.width,
        "sizes": None if settings.sizes is None else list(settings.sizes),
        "scale_sets": [list(s) for s in settings.scale_sets],
        "model_scale_sets": {}
        if settings.scale_sets_given
        else {name: [list(s) for s in sets] for name, sets in MODEL_SCALE_SETS.items()},
        "batch": settings.batch,
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "largest": settings.largest,
        "budget_s": settings.budget_s,
        "precision": settings.precision,
        "options": asdict(settings.options),
        "ablation": settings.ablation,
        "full": settings.full,
        "quick": settings.quick,
    }
