"""``python -m segscale bench --quick`` and the benchmark's parts: structure and labels, never timings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from segscale.benchmark import (
    NaiveMultiScale,
    Timing,
    bench_targets,
    count_conv_flops,
    linear_fit,
    multiscale_flops,
    optimisation_ladder,
    paired_ratio,
    peak_memory_bytes,
    time_interleaved,
)
from segscale.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from segscale.cli import main
from segscale.config import PAPER_SCALES
from segscale.inference import FastMultiScale, FastPathOptions
from segscale.modeling import build_model

from .conftest import tiny_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One quick run over both models (the demo given as a tiny checkpoint), in float32."""
    from segscale.checkpoint import save_checkpoint

    from .conftest import tiny_metadata

    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    config = tiny_config()
    checkpoint = save_checkpoint(folder / "tiny.pt", build_model(config), tiny_metadata(config))
    path = folder / "report.json"
    code = main(
        [
            "bench",
            "--quick",
            "--models",
            "vgg16_largefov",
            "demo",
            "--width",
            "0.0625",
            "--classes",
            "3",
            "--checkpoint",
            str(checkpoint),
            "--precision",
            "float32",
            "--json",
            str(path),
        ]
    )
    assert code == 0
    return json.loads(path.read_text())


@pytest.mark.slow
def test_quick_report_has_every_section(quick_report):
    report = quick_report
    assert report["schema"] == "segscale-bench/1"
    for key in (
        "machine",
        "settings",
        "references",
        "models",
        "runs",
        "ablation",
        "fits",
        "largest_input",
        "targets",
        "notes",
    ):
        assert key in report, key
    assert report["machine"]["torch"] == torch.__version__ and report["machine"]["cpu_cores"] >= 1
    assert {r["name"].split()[0] for r in report["references"]} >= {"resnet18", "matmul"}
    assert all(r["median_s"] > 0 and r["flops"] > 0 for r in report["references"])
    assert [m["name"] for m in report["models"]] == ["vgg16_largefov", "demo"]
    assert len(report["runs"]) == 2 * 2  # two models x two scale sets at one size


@pytest.mark.slow
def test_quick_runs_carry_latency_memory_flops_and_throughput(quick_report):
    for run in quick_report["runs"]:
        assert run["size"] == [64, 64] and run["scales"] in ([1.0], [1.0, 0.5])
        assert run["sum_s2"] == pytest.approx(sum(s * s for s in run["scales"]))
        assert run["flops_per_image"] > 0
        for path in ("naive", "fast"):
            timing = run[path]
            assert timing["median_s"] > 0 and len(timing["seconds"]) == 1
            assert timing["tflops"] == pytest.approx(run["flops_per_image"] / timing["median_s"] / 1e12)
            assert "peak_memory_mb" in timing
        assert run["speedup"] > 0 and run["fast_over_naive"] > 0
        assert run["throughput"]["batch"] >= 1 and run["throughput"]["images_per_s"] > 0
        assert run["fast_precision"] == "float32"
    two_scales = [r for r in quick_report["runs"] if len(r["scales"]) == 2]
    assert all(r["flops_per_image"] > o["flops_per_image"] for r, o in zip(two_scales, quick_report["runs"][::2]))


@pytest.mark.slow
def test_naive_and_fast_paths_agree_on_labels(quick_report):
    # They resize in a different order (each map to full size, or the fused map once), which
    # moves a few boundary pixels of a random model's near-ties; single-scale they coincide.
    for run in quick_report["runs"]:
        assert run["label_agreement"] >= (0.999 if run["scales"] == [1.0] else 0.97), run
    for ladder in quick_report["ablation"]:
        assert ladder["steps"][0]["step"].startswith("naive")
        assert all(step["label_agreement_vs_naive"] >= 0.97 for step in ladder["steps"])


@pytest.mark.slow
def test_quick_report_fits_and_largest_input(quick_report):
    assert quick_report["ablation"] and quick_report["largest_input"]
    largest = quick_report["largest_input"][0]
    assert largest["size"] == [96, 96] and "peak_memory_mb" in largest["fast"] and "peak_memory_mb" in largest["naive"]
    # At 64x64 on a CPU no run is the demo at 512x512, so only the thresholdless rows are there:
    # one latency fit per model and one peak-memory row per largest input, none judged.
    targets = quick_report["targets"]
    assert len(targets) == len(quick_report["fits"]) + len(quick_report["largest_input"]) == 3
    assert [t["target"].split(":")[0] for t in targets] == ["vgg16_largefov", "demo", "demo"]
    assert all(t["met"] is None and isinstance(t["value"], float) for t in targets)


@pytest.mark.slow
def test_an_earlier_report_prints_as_text_and_markdown(quick_report, tmp_path, capsys):
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(quick_report))
    markdown = tmp_path / "tables.md"
    assert main(["bench", "--from-json", str(saved), "--markdown", str(markdown)]) == 0
    text = capsys.readouterr().out
    assert "naive baseline" in text and "Reference workloads" in text
    tables = markdown.read_text()
    assert "| model | size | scales |" in tables and "**Batch 1: naive baseline" in tables


@pytest.mark.slow
def test_missing_checkpoint_is_reported_and_the_rest_benched(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = main(
        [
            "bench",
            "--quick",
            "--models",
            "vgg16_largefov",
            "demo",
            "--width",
            "0.0625",
            "--scale-sets",
            "1",
            "--checkpoint",
            str(tmp_path / "missing.pt"),
            "--ablation",
            "none",
            "--largest",
            "0",
            "--json",
            str(path),
        ]
    )
    assert code == 0
    report = json.loads(path.read_text())
    assert [m["name"] for m in report["models"]] == ["vgg16_largefov"]
    assert any("missing.pt" in note and "no such file" in note for note in report["notes"])
    assert "no such file" in capsys.readouterr().err


def test_bad_arguments_name_the_valid_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--models", "resnet50"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown model(s) ['resnet50']" in error and "valid: vgg16_largefov, demo" in error
    assert "Traceback" not in error
    with pytest.raises(SystemExit):
        main(["bench", "--precision", "fp8"])
    error = capsys.readouterr().err
    assert "invalid choice: 'fp8'" in error and "'auto', 'bf16', 'float32'" in error


def test_a_file_that_is_not_a_report_is_refused_with_a_message(tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else/1"}))
    with pytest.raises(SystemExit):
        main(["bench", "--from-json", str(other)])
    assert f"{other} is not a segscale-bench/1 report" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--from-json", str(tmp_path / "missing.json")])
    assert "cannot read the report" in capsys.readouterr().err


# ----------------------------------------------------------------------------- targets


def _report_with(runs=(), references=()):
    return {"runs": list(runs), "references": list(references), "fits": [], "largest_input": []}


def _run(model, size, speedup, reference_ratio=None, throughput_tflops=None):
    return {
        "model": model,
        "size": [size, size],
        "scales": list(PAPER_SCALES),
        "speedup": speedup,
        "reference": None if reference_ratio is None else {"fast_over_reference": reference_ratio},
        "throughput": None if throughput_tflops is None else {"tflops": throughput_tflops, "batch": 32},
    }


@pytest.mark.parametrize(("speedup", "ratio", "met"), [(1.6, 2.5, True), (1.4, 3.5, False)])
def test_cpu_targets_are_met_or_not_by_their_thresholds(speedup, ratio, met):
    targets = bench_targets(_report_with([_run("demo", 512, speedup, reference_ratio=ratio)]), "cpu")
    assert [(t["value"], t["met"]) for t in targets] == [(speedup, met), (ratio, met)]
    assert [t["threshold"] for t in targets] == [">= 1.5", "<= 3"]


@pytest.mark.parametrize(("speedup", "tflops", "met"), [(4.5, 50.0, True), (3.5, 30.0, False)])
def test_gpu_targets_are_met_or_not_by_their_thresholds(speedup, tflops, met):
    matmul = {"name": "matmul 8192x8192x8192, bfloat16", "tflops": 100.0}
    report = _report_with([_run("vgg16_largefov", 513, speedup, throughput_tflops=tflops)], [matmul])
    targets = bench_targets(report, "cuda")
    assert [(t["value"], t["met"]) for t in targets] == [(speedup, met), (pytest.approx(tflops / 100), met)]
    assert "of 100.0 TFLOP/s at batch 32" in targets[1]["detail"]


def test_targets_need_their_run_at_the_paper_scales_and_nominal_size():
    other_size = _run("demo", 256, 9.0, reference_ratio=0.1)
    other_scales = {**_run("demo", 512, 9.0, reference_ratio=0.1), "scales": [1.0, 0.5]}
    assert bench_targets(_report_with([other_size, other_scales]), "cpu") == []
    assert bench_targets(_report_with([_run("demo", 512, 9.0, reference_ratio=0.1)]), "cuda") == []


# ----------------------------------------------------------------------------- the parts


def test_flop_count_matches_the_conv_formula_and_torch_counter():
    conv = nn.Conv2d(4, 6, 3, padding=2, dilation=2)
    flops = count_conv_flops(conv, lambda m, d: m(torch.empty(2, 4, 10, 12, device=d)))
    assert flops == 2 * (2 * 6 * 10 * 12) * 4 * 3 * 3
    model = build_model(tiny_config())
    counted = multiscale_flops(model, (65, 81), (1.0, 0.5), "attention")
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    mode = flop_counter.FlopCounterMode(display=False)
    with mode, torch.no_grad():
        model.eval()(torch.randn(1, 3, 65, 81), scales=(1.0, 0.5), merge="attention")
    assert counted == mode.get_total_flops()


def test_flops_grow_with_pixels_times_sum_of_squared_scales():
    model = build_model(tiny_config())
    one = multiscale_flops(model, (257, 257), (1.0,), "attention")
    three = multiscale_flops(model, (257, 257), (1.0, 0.75, 0.5), "attention")
    assert three / one == pytest.approx(1 + 0.75**2 + 0.5**2, rel=0.03)  # grids round up


def test_naive_baseline_fuses_at_full_size_with_the_same_layers():
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    naive = NaiveMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, CPU)
    rgb = np.random.default_rng(0).integers(0, 256, size=(1, 40, 56, 3), dtype=np.uint8)
    fast = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, CPU, FastPathOptions(autocast="off"))
    for merge in ("attention", "average", "max"):
        labels = naive(rgb, (1.0,), merge)
        assert labels.shape == (1, 40, 56) and labels.dtype == torch.int64
        torch.testing.assert_close(labels, fast.run(rgb, (1.0,), merge)[1])  # one scale: the same function


def test_ladder_steps_each_add_one_thing():
    model = build_model(tiny_config(norm="batch")).eval()
    pixels = np.zeros((1, 33, 33, 3), np.uint8)
    steps = optimisation_ladder(model, IMAGENET_MEAN, IMAGENET_STD, CPU, (1.0, 0.5), "attention", pixels)
    names = [s.name for s in steps]
    assert names[0].startswith("naive") and any("batch norm" in n for n in names) and any("bf16" in n for n in names)
    assert not any("CUDA" in n or "compile" in n for n in names)
    for step in steps:
        assert step.run(pixels).shape == (1, 33, 33)
    no_norm = optimisation_ladder(
        build_model(tiny_config()).eval(), IMAGENET_MEAN, IMAGENET_STD, CPU, (1.0,), "attention", pixels
    )
    assert not any("batch norm" in s.name for s in no_norm)


def test_interleaved_timing_and_paired_ratios():
    calls = []
    timings = time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, CPU, warmup=1, repeats=3
    )
    assert len(calls) == 8 and calls[:2] == ["a", "b"] and calls[2:4] == ["b", "a"]  # rotated each round
    assert all(len(t.seconds) == 3 for t in timings.values())
    assert paired_ratio(Timing((2.0, 4.0, 9.0)), Timing((1.0, 1.0, 3.0))) == 3.0


def test_groups_run_back_to_back_and_the_budget_cuts_rounds():
    calls = []
    groups = [{"a1": lambda: calls.append("a1"), "a2": lambda: calls.append("a2")}, {"b": lambda: calls.append("b")}]
    time_interleaved(groups, CPU, warmup=0, repeats=2)
    assert calls == ["a1", "a2", "b", "b", "a2", "a1"]
    slow = time_interleaved({"slow": lambda: __import__("time").sleep(0.02)}, CPU, warmup=1, repeats=50, budget_s=0.05)
    assert len(slow["slow"].seconds) == 3  # the budget allows 2 rounds; never fewer than 3
    kept = time_interleaved({"x": lambda: 42}, CPU, warmup=0, repeats=2, measure_memory=True)["x"]
    assert kept.result == 42 and len(kept.seconds) == 2


def test_peak_memory_sees_a_large_temporary():
    peak, result = peak_memory_bytes(lambda: float(torch.ones(16 * 2**20).sum()), CPU)  # 64 MiB
    assert result == 16 * 2**20
    if peak is not None:  # None where there is no /proc
        assert peak >= 48 * 2**20


def test_linear_fit_of_a_line():
    fit = linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert fit["slope"] == pytest.approx(2) and fit["intercept"] == pytest.approx(1) and fit["r2"] == pytest.approx(1)


def test_the_torchvision_workload_is_benched_at_the_paper_scales_with_random_weights():
    import argparse

    from segscale.benchmark.settings import MODEL_NAMES, MODEL_SCALE_SETS, NOMINAL_SIZE, TORCHVISION_BENCH_KIND
    from segscale.benchmark.workloads import torchvision_workload
    from segscale.commands.bench import add_arguments

    assert TORCHVISION_BENCH_KIND == "deeplabv3_mobilenet_v3_large" and TORCHVISION_BENCH_KIND in MODEL_NAMES
    assert NOMINAL_SIZE[TORCHVISION_BENCH_KIND] == 512 and MODEL_SCALE_SETS[TORCHVISION_BENCH_KIND] == (PAPER_SCALES,)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).models == list(MODEL_NAMES)  # benched in the same run as the others by default

    workload = torchvision_workload(TORCHVISION_BENCH_KIND)
    assert workload.random_weights and "random weights" in workload.description
    assert workload.metadata.model.merge == "average" and len(workload.metadata.classes) == 21
    # The naive baseline runs torchvision's trunk (a dict of features) and classifier like the share-net does.
    naive = NaiveMultiScale(workload.model, workload.metadata.mean, workload.metadata.std, CPU)
    rgb = np.random.default_rng(0).integers(0, 256, size=(1, 37, 45, 3), dtype=np.uint8)
    fast = FastMultiScale(
        workload.model, workload.metadata.mean, workload.metadata.std, CPU, FastPathOptions(autocast="off")
    )
    torch.testing.assert_close(naive(rgb, (1.0,), "average"), fast.run(rgb, (1.0,), "average")[1])
