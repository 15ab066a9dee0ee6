"""``python -m segscale bench``: the fast path against the naive baseline, on whatever device is here.

    python -m segscale bench                              # defaults for this device, a few minutes on a 2-core CPU
    python -m segscale bench --threads 1 --json docs/bench/cpu.json
    python -m segscale bench --quick --models vgg16_largefov --width 0.0625   # a smoke run

For every model, input size and scale set: median latency at batch 1 of the naive baseline
(:class:`segscale.benchmark.NaiveMultiScale`) and of :class:`segscale.Predictor` (the app's
path), timed interleaved; their paired ratio; the counted FLOPs and achieved TFLOP/s; peak
memory; throughput of the fast path at a large batch; whether their labels agree. Also, in
the same run: reference workloads (resnet18 at 512x512; a large matrix product), the fast
path built up one optimisation at a time, a linear fit of latency against pixels x sum(s^2),
and the peak memory at the app's largest input. It prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..benchmark import (
    NaiveMultiScale,
    Timing,
    linear_fit,
    machine_description,
    matmul_reference,
    multiscale_flops,
    optimisation_ladder,
    paired_ratio,
    peak_memory_bytes,
    resnet18_reference,
    sum_of_squared_scales,
    time_interleaved,
)
from ..config import PAPER_SCALES, HeadConfig, ModelConfig, TrunkConfig, normalize_scales
from ..images import DEFAULT_MAX_SIDE
from ..inference import FastPathOptions, bf16_pays_off, synchronize
from ..predictor import select_device

SCHEMA = "segscale-bench/1"
FIVE_SCALES = (1.0, 0.875, 0.75, 0.625, 0.5)
DEFAULT_SCALE_SETS = ((1.0,), (1.0, 0.5), PAPER_SCALES, FIVE_SCALES)
DEFAULT_CHECKPOINT = Path("checkpoints/scaleshapes_demo.pt")
MODEL_NAMES = ("vgg16_largefov", "demo")
# The paper evaluates the full-width net on 513x513 PASCAL crops; the demo was trained on ScaleShapes.
NOMINAL_SIZE = {"vgg16_largefov": 513, "demo": 512}
# Input sizes of the sweep when --sizes is not given. On a CPU the full-width net runs only at
# its nominal size (a 1024-pixel 5-scale pass takes half a minute there); --full sweeps it too.
SWEEP = {
    "cpu": {"vgg16_largefov": (513,), "demo": (256, 512, 768, 1024)},
    "cuda": {"vgg16_largefov": (256, 513, 1024, 2048), "demo": (256, 512, 1024, 2048)},
}
FULL_CPU_SWEEP = (256, 513, 768, 1024)
# Throughput batch: about this many 512x512 images' worth of pixels per batch.
LARGE_BATCH = {"cpu": 8, "cuda": 32}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the best available)")
    parser.add_argument(
        "--models", nargs="+", default=list(MODEL_NAMES), metavar="NAME",
        help="vgg16_largefov (random weights, --width), demo (--checkpoint); default: both",
    )
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help=f"the demo model (default: {DEFAULT_CHECKPOINT})")
    parser.add_argument("--width", type=float, default=1.0, help="channel width of the random vgg16_largefov (default: 1, the paper's)")
    parser.add_argument("--classes", type=int, default=21, help="classes of the random vgg16_largefov (default: 21, PASCAL VOC)")
    parser.add_argument("--sizes", type=int, nargs="+", help="square input sizes for every model (default: per device and model)")
    parser.add_argument(
        "--scale-sets", nargs="+", metavar="S1,S2,...",
        help="scale sets, e.g. 1 1,0.5 1,0.75,0.5 (default: those four and 1,0.875,0.75,0.625,0.5)",
    )
    parser.add_argument("--batch", type=int, help="throughput batch at 512x512, scaled by pixels (default: 32 on GPU, 8 on CPU)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds; medians over these (default: 7)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--budget", type=float, default=90.0,
        help="seconds of timed rounds per interleaved group; fewer repeats (at least 3) when a round is long (default: 90; 0: no limit)",
    )
    parser.add_argument(
        "--largest", type=int, default=DEFAULT_MAX_SIDE,
        help=f"side of the memory check at the app's largest input (default: {DEFAULT_MAX_SIDE}; 0 skips it)",
    )
    parser.add_argument("--precision", choices=("auto", "bf16", "float32"), default="auto",
                        help="fast path precision: auto = the Predictor's rule for checkpoints, bf16 where it pays "
                             "for random weights (whose near-ties make a label check meaningless)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path (and add it to the ladder)")
    parser.add_argument("--cuda-graphs", action="store_true", help="CUDA graphs in the fast path (CUDA only)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="cuDNN algorithm search in the fast path (CUDA only)")
    parser.add_argument("--ablation", choices=("headline", "all", "none"), default="headline",
                        help="the one-optimisation-at-a-time ladder for: the device's headline model (default), all, none")
    parser.add_argument("--full", action="store_true", help="on a CPU, sweep every size for every model (slow)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, two scale sets, one round")
    parser.add_argument("--json", type=Path, help="write the report here (default: runs/bench/<time>-<device>.json)")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    parser.add_argument("--from-json", type=Path, help="run nothing: print (and --markdown) the tables of an earlier report")


@dataclass
class Settings:
    device: torch.device
    models: tuple[str, ...]
    checkpoint: Path
    width: float
    classes: int
    sizes: tuple[int, ...] | None
    scale_sets: tuple[tuple[float, ...], ...]
    batch: int
    warmup: int
    repeats: int
    largest: int
    budget_s: float | None
    precision: str
    options: FastPathOptions
    ablation: str
    full: bool
    quick: bool
    notes: list[str] = field(default_factory=list)


def settings_from_args(args: argparse.Namespace) -> Settings:
    device = select_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid: {', '.join(MODEL_NAMES)}")
    scale_sets = DEFAULT_SCALE_SETS
    if args.scale_sets:
        scale_sets = tuple(normalize_scales(text.split(",")) for text in args.scale_sets)
    if args.warmup < 0 or args.repeats < 1:
        raise ValueError("--warmup must be >= 0 and --repeats >= 1")
    kind = "cuda" if device.type == "cuda" else "cpu"
    settings = Settings(
        device=device,
        models=tuple(dict.fromkeys(args.models)),
        checkpoint=args.checkpoint,
        width=args.width,
        classes=args.classes,
        sizes=tuple(args.sizes) if args.sizes else None,
        scale_sets=scale_sets,
        batch=args.batch or LARGE_BATCH[kind],
        warmup=args.warmup,
        repeats=args.repeats,
        largest=args.largest,
        budget_s=args.budget or None,
        precision=args.precision,
        options=FastPathOptions(compile=args.compile, cuda_graphs=args.cuda_graphs, cudnn_benchmark=args.cudnn_benchmark),
        ablation=args.ablation,
        full=args.full,
        quick=args.quick,
    )
    if args.quick:
        settings.sizes = settings.sizes or (64,)
        settings.scale_sets = scale_sets if args.scale_sets else ((1.0,), (1.0, 0.5))
        settings.batch = args.batch or 2
        settings.warmup = min(args.warmup, 1)
        settings.repeats = 1
        settings.largest = min(args.largest, 96)
        settings.budget_s = None
    if any(size < 16 for size in settings.sizes or ()):
        raise ValueError("input sizes must be at least 16 pixels")
    return settings


# ----------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    """A model to bench, with what the Predictor needs to run it."""

    name: str
    model: torch.nn.Module
    metadata: object
    description: str
    random_weights: bool


def load_workloads(settings: Settings) -> list[Workload]:
    from ..checkpoint import CheckpointError, CheckpointMetadata, model_from_checkpoint
    from ..modeling import build_model

    workloads = []
    for name in settings.models:
        if name == "vgg16_largefov":
            torch.manual_seed(0)
            config = ModelConfig(num_classes=settings.classes, trunk=TrunkConfig(width=settings.width), head=HeadConfig(kind="shared"))
            model = build_model(config).eval()
            metadata = CheckpointMetadata(
                model=config,
                classes=tuple(f"class_{i}" for i in range(settings.classes)),
                palette=tuple((i * 37 % 256, i * 91 % 256, i * 53 % 256) for i in range(settings.classes)),
                name="random weights",
            )
            width = "full width" if settings.width == 1 else f"width {settings.width:g}"
            description = f"vgg16_largefov, {width}, {_parameters(model)} parameters, random weights, shared head"
            workloads.append(Workload(name, model, metadata, description, random_weights=True))
        else:
            try:
                model, metadata = model_from_checkpoint(settings.checkpoint)
            except CheckpointError as error:
                message = f"demo checkpoint not benched: {error}"
                print(f"bench: {message}", file=sys.stderr)
                settings.notes.append(message)
                continue
            trunk = metadata.model.trunk
            description = (
                f"{settings.checkpoint} ({metadata.name or 'demo'}): vgg16_largefov width {trunk.width:g}, "
                f"norm {trunk.norm}, {metadata.model.head.kind} head, {_parameters(model)} parameters"
            )
            workloads.append(Workload(name, model, metadata, description, random_weights=False))
    return workloads


def _parameters(model: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def bench_image(size: int) -> np.ndarray:
    """A ScaleShapes validation image of size x size: real edges and textures, not noise."""
    from ..data.scaleshapes import ScaleShapesConfig, generate_sample

    return generate_sample("val", 0, ScaleShapesConfig(min_side=size, max_side=size)).image


def fast_options(settings: Settings, workload: Workload) -> FastPathOptions:
    autocast = {"auto": "auto", "bf16": "bf16", "float32": "off"}[settings.precision]
    if settings.precision == "auto" and workload.random_weights:
        autocast = "bf16" if bf16_pays_off(settings.device) else "off"
    return FastPathOptions(**{**asdict(settings.options), "autocast": autocast})


# ----------------------------------------------------------------------------- the suite


def run_suite(settings: Settings, log=lambda text: print(text, file=sys.stderr, flush=True)) -> dict:
    from ..predictor import Predictor

    device, kind = settings.device, ("cuda" if settings.device.type == "cuda" else "cpu")
    report: dict = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
    timings = time_interleaved({r.name: r.fn for r in references}, device, settings.warmup, max(settings.repeats, 5), budget_s=settings.budget_s)
    for ref in references:
        t = timings[ref.name]
        report["references"].append(
            {"name": ref.name, "median_s": t.median_s, "min_s": t.min_s, "spread": t.spread, "flops": ref.flops,
             "tflops": ref.flops / t.median_s / 1e12}
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
        for scales in settings.scale_sets:
            try:
                predictor.check_request(scales, merge)
                scale_sets.append(scales)
            except ValueError as error:
                settings.notes.append(f"{workload.name}: scale set {list(scales)} skipped: {error}")
        if not scale_sets:  # e.g. a 'paper' head, which fuses only the set it was trained on
            scale_sets = [metadata.model.scales]
            settings.notes.append(f"{workload.name}: benched on its trained scale set {list(metadata.model.scales)} only")
        model_entry = {
            "name": workload.name,
            "description": workload.description,
            "merge": merge,
            "random_weights": workload.random_weights,
            "fast_path_options": asdict(options),
            "nominal_size": nominal,
        }
        report["models"].append(model_entry)

        log(f"bench: {workload.name}: sizes {sizes}, scale sets {[list(x) for x in scale_sets]}, naive and fast interleaved")
        model_runs = _sweep(settings, workload, predictor, naive, sizes, scale_sets, merge, nominal, resnet)
        report["runs"] += model_runs
        model_entry["precision"] = predictor.precision
        model_entry["bf16_label_agreement_first_image"] = predictor.fast.autocast_agreement

        points = [(r["pixels_x_sum_s2"], r["fast"]["median_s"]) for r in model_runs]
        if len({x for x, _ in points}) >= 2:
            fit = linear_fit([x / 1e6 for x, _ in points], [y for _, y in points])
            flops_fit = linear_fit([r["pixels_x_sum_s2"] / 1e6 for r in model_runs], [r["flops_per_image"] / 1e9 for r in model_runs])
            report["fits"].append(
                {"model": workload.name, "x": "megapixels x sum(s^2)", "y": "fast-path latency at batch 1 (s)",
                 "points": len(points), **fit, "flops_r2": flops_fit["r2"], "gflops_per_unit": flops_fit["slope"]}
            )

        if settings.ablation == "all" or (settings.ablation == "headline" and workload is headline):
            scales = PAPER_SCALES if PAPER_SCALES in scale_sets else scale_sets[-1]
            report["ablation"].append(_ladder(settings, workload, bench_image(nominal), scales, merge))

        if settings.largest and workload is headline:
            image = bench_image(settings.largest)
            for scales in dict.fromkeys([metadata.model.scales if metadata.model.scales in scale_sets else scale_sets[-1], scale_sets[-1]]):
                log(f"bench: {workload.name} largest input {settings.largest}x{settings.largest} scales {list(scales)}")
                report["largest_input"].append(_largest(settings, predictor, naive, image, scales, merge, workload.name))
        del predictor, naive
        _free(device)

    report["targets"] = _targets(report, kind)
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


def _sweep(settings, workload, predictor, naive, sizes, scale_sets, merge, nominal, reference) -> list[dict]:
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
        (index, size, scales) for index, (size, scales) in enumerate(points)
        if settings.device.type == "cuda" or settings.full or settings.quick or (size, scales) == headline
    ]
    if wanted:
        batches = {index: _throughput_batch(settings, size) for index, size, _ in wanted}
        candidates = {}
        for index, size, scales in wanted:
            pixels = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(images[size], (batches[index], size, size, 3)))).to(device)
            candidates[str(index)] = lambda pixels=pixels, scales=scales: predictor.fast.run(pixels, scales, merge)
        timings = time_interleaved(
            candidates, device, max(1, settings.warmup // 2), max(1, settings.repeats // 2),
            budget_s=settings.budget_s, min_repeats=2 if not settings.quick else 1, measure_memory=True,
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


def _ladder(settings, workload, image, scales, merge) -> dict:
    device = settings.device
    metadata = workload.metadata
    pixels = image[None]
    steps = optimisation_ladder(
        workload.model, metadata.mean, metadata.std, device, scales, merge, pixels, compile=settings.options.compile
    )
    timings = time_interleaved(
        {s.name: (lambda s=s: s.run(pixels)) for s in steps}, device, settings.warmup, settings.repeats,
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
    _free(device)
    return {"model": workload.name, "size": list(image.shape[:2]), "scales": list(scales), "steps": rows}


def _largest(settings, predictor, naive, image, scales, merge, name) -> dict:
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
        entry[label] = {"peak_memory_mb": None if peak is None else peak / 2**20, "seconds": time.perf_counter() - start}
        _free(device)
    return entry


def _free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _jsonable_settings(settings: Settings) -> dict:
    return {
        "models": list(settings.models),
        "checkpoint": str(settings.checkpoint),
        "width": settings.width,
        "sizes": None if settings.sizes is None else list(settings.sizes),
        "scale_sets": [list(s) for s in settings.scale_sets],
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


# ----------------------------------------------------------------------------- targets (issue 6)


def _find_run(report, model, size, scales):
    return next(
        (r for r in report["runs"] if r["model"] == model and r["size"] == [size, size] and tuple(r["scales"]) == tuple(scales)),
        None,
    )


def _targets(report: dict, kind: str) -> list[dict]:
    targets = []

    def add(name, value, threshold, met, detail=""):
        targets.append({"target": name, "value": value, "threshold": threshold, "met": met, "detail": detail})

    if kind == "cuda":
        run = _find_run(report, "vgg16_largefov", 513, PAPER_SCALES)
        matmul = next((r for r in report["references"] if r["name"].startswith("matmul") and "bfloat16" in r["name"]), None)
        if run:
            add("GPU: full-width 513x513 {1,0.75,0.5}, speedup over naive at batch 1", run["speedup"], ">= 4", run["speedup"] >= 4)
            if run["throughput"] and matmul:
                share = run["throughput"]["tflops"] / matmul["tflops"]
                add("GPU: achieved TFLOP/s at a large batch / bf16 matmul TFLOP/s", share, ">= 0.40", share >= 0.4,
                    f"{run['throughput']['tflops']:.1f} of {matmul['tflops']:.1f} TFLOP/s at batch {run['throughput']['batch']}")
    else:
        run = _find_run(report, "demo", 512, PAPER_SCALES)
        if run:
            add("CPU: demo 512x512 {1,0.75,0.5}, speedup over naive", run["speedup"], ">= 1.5", run["speedup"] >= 1.5)
            if run["reference"]:
                ratio = run["reference"]["fast_over_reference"]
                add("CPU: demo 512x512 {1,0.75,0.5} time / resnet18@512 time", ratio, "<= 3", ratio <= 3)
    for fit in report["fits"]:
        add(f"{fit['model']}: latency linear in pixels x sum(s^2), R^2", fit["r2"], "close to 1", None,
            f"{fit['slope'] * 1e3:.1f} ms per Mpx*sum(s^2) + {fit['intercept'] * 1e3:.1f} ms over {fit['points']} points")
    for row in report["largest_input"]:
        add(f"{row['model']}: peak memory at {row['size'][0]}x{row['size'][1]} {row['scales']}", row["fast"]["peak_memory_mb"],
            "bounded", None, f"naive: {_mb(row['naive']['peak_memory_mb'])} MB")
    return targets


# ----------------------------------------------------------------------------- output


def report_sections(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables, for the terminal and for Markdown alike."""
    sections = [
        ("Reference workloads (same run)", ["workload", "median ms", "TFLOP/s"],
         [[r["name"], f"{r['median_s'] * 1e3:.1f}", f"{r['tflops']:.3f}"] for r in report["references"]]),
        ("Models", ["model", "what", "fast path precision"],
         [[m["name"], m["description"], str(m.get("precision"))] for m in report["models"]]),
        (
            "Batch 1: naive baseline vs the Predictor (medians; speedup = median of paired naive/fast ratios)",
            ["model", "size", "scales", "sum s^2", "GFLOP", "naive ms", "fast ms", "speedup", "fast TFLOP/s",
             "naive MB", "fast MB", "agree %", "batch", "img/s", "batch TFLOP/s"],
            [
                [r["model"], f"{r['size'][0]}", ",".join(f"{s:g}" for s in r["scales"]), f"{r['sum_s2']:.2f}",
                 f"{r['flops_per_image'] / 1e9:.1f}", f"{r['naive']['median_s'] * 1e3:.1f}", f"{r['fast']['median_s'] * 1e3:.1f}",
                 f"{r['speedup']:.2f}x", f"{r['fast']['tflops']:.3f}", _mb(r["naive"]["peak_memory_mb"]), _mb(r["fast"]["peak_memory_mb"]),
                 f"{100 * r['label_agreement']:.2f}",
                 *(["-", "-", "-"] if not r["throughput"] else
                   [str(r["throughput"]["batch"]), f"{r['throughput']['images_per_s']:.2f}", f"{r['throughput']['tflops']:.3f}"])]
                for r in report["runs"]
            ],
        ),
    ]
    with_reference = [r for r in report["runs"] if r["reference"]]
    if with_reference:
        sections.append((
            "Against the reference workload, in the same rounds (paired ratios of times)",
            ["model", "size", "scales", "reference", "reference ms", "fast/reference", "naive/reference"],
            [[r["model"], str(r["size"][0]), ",".join(f"{s:g}" for s in r["scales"]), r["reference"]["name"],
              f"{r['reference']['median_s'] * 1e3:.1f}", f"{r['reference']['fast_over_reference']:.2f}",
              f"{r['reference']['naive_over_reference']:.2f}"] for r in with_reference],
        ))
    for ladder in report["ablation"]:
        sections.append((
            f"One optimisation at a time: {ladder['model']} {ladder['size'][0]}x{ladder['size'][1]} scales {ladder['scales']}",
            ["step", "median ms", "vs previous", "vs naive", "agree %", "setup s"],
            [[s["step"], f"{s['median_s'] * 1e3:.1f}", "-" if s["speedup_vs_previous"] is None else f"{s['speedup_vs_previous']:.2f}x",
              f"{s['speedup_vs_naive']:.2f}x", f"{100 * s['label_agreement_vs_naive']:.2f}", f"{s['setup_s']:.1f}" if s["setup_s"] else "-"]
             for s in ladder["steps"]],
        ))
    if report["fits"]:
        sections.append((
            "Latency against pixels x sum(s^2) (fast path, batch 1, least squares)",
            ["model", "points", "ms per Mpx*sum(s^2)", "intercept ms", "R^2", "max residual", "FLOPs R^2"],
            [[f["model"], str(f["points"]), f"{f['slope'] * 1e3:.1f}", f"{f['intercept'] * 1e3:.1f}", f"{f['r2']:.4f}",
              f"{100 * f['max_rel_residual']:.0f}%", f"{f['flops_r2']:.5f}"] for f in report["fits"]],
        ))
    if report["largest_input"]:
        sections.append((
            "Largest input (peak memory above the resident baseline; one call each)",
            ["model", "size", "scales", "fast MB", "fast s", "naive MB", "naive s"],
            [[r["model"], f"{r['size'][0]}x{r['size'][1]}", ",".join(f"{s:g}" for s in r["scales"]), _mb(r["fast"]["peak_memory_mb"]),
              f"{r['fast']['seconds']:.2f}", _mb(r["naive"]["peak_memory_mb"]), f"{r['naive']['seconds']:.2f}"]
             for r in report["largest_input"]],
        ))
    if report["targets"]:
        sections.append((
            "Targets",
            ["target", "value", "needs", "met", "detail"],
            [[t["target"], "-" if t["value"] is None else f"{t['value']:.3f}", t["threshold"],
              {True: "yes", False: "NO", None: "-"}[t["met"]], t["detail"]] for t in report["targets"]],
        ))
    return sections


def machine_line(report: dict) -> str:
    m = report["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} torch threads"
    load = ", ".join(f"{v:.2f}" for v in m["load_average_at_start"] or [])
    return f"{m['device']} ({where}); torch {m['torch']}; load average at start {load}"


def format_report(report: dict) -> str:
    lines = [f"segscale bench on {machine_line(report)}"]
    for title, header, rows in report_sections(report):
        lines += ["", title, _table(header, rows)]
    lines += [f"note: {note}" for note in report["notes"]]
    lines.append(f"wall time {report['wall_time_s']:.0f} s")
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    """The same tables as Markdown, to paste into docs/PERFORMANCE.md."""
    lines = [f"Measured on {machine_line(report)}.", "", f"Command: `{report['command']}`"]
    for title, header, rows in report_sections(report):
        lines += ["", f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    lines += [f"\nNote: {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def _mb(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]

    def numeric(column: int) -> bool:  # right-align columns of numbers
        return all(re.fullmatch(r"[-+0-9.,x%e]+", str(row[column])) for row in rows) if rows else False

    right = [numeric(i) for i in range(len(header))]

    def line(cells):
        return "  " + "  ".join(str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        try:
            report = json.loads(args.from_json.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read the report {args.from_json}: {error}") from error
        if report.get("schema") != SCHEMA:
            raise ValueError(f"{args.from_json} is not a {SCHEMA} report")
        print(format_report(report))
        if args.markdown:
            args.markdown.write_text(format_markdown(report))
            print(f"wrote {args.markdown}")
        return 0
    settings = settings_from_args(args)
    report = run_suite(settings)
    print(format_report(report))
    path = args.json or Path("runs/bench") / f"{datetime.now():%Y%m%d-%H%M%S}-{settings.device.type}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    print(f"wrote {path}")
    if args.markdown:
        try:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(format_markdown(report))
        except OSError as error:
            raise ValueError(f"cannot write {args.markdown}: {error.strerror or error}") from error
        print(f"wrote {args.markdown}")
    return 0
