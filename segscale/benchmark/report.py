"""A bench report read back: the targets it meets, and its tables as text or Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..config import PAPER_SCALES

SCHEMA = "segscale-bench/1"


# ----------------------------------------------------------------------------- targets


def _find_run(report, model, size, scales):
    return next(
        (
            r
            for r in report["runs"]
            if r["model"] == model and r["size"] == [size, size] and tuple(r["scales"]) == tuple(scales)
        ),
        None,
    )


def bench_targets(report: dict, kind: str) -> list[dict]:
    """The device's performance targets, each with its value,
    its threshold and whether it is met (None: no threshold)."""
    targets = []

    def add(name, value, threshold, met, detail=""):
        targets.append({"target": name, "value": value, "threshold": threshold, "met": met, "detail": detail})

    if kind == "cuda":
        run = _find_run(report, "vgg16_largefov", 513, PAPER_SCALES)
        matmul = next(
            (r for r in report["references"] if r["name"].startswith("matmul") and "bfloat16" in r["name"]), None
        )
        if run:
            add(
                "GPU: full-width 513x513 {1,0.75,0.5}, speedup over naive at batch 1",
                run["speedup"],
                ">= 4",
                run["speedup"] >= 4,
            )
            if run["throughput"] and matmul:
                share = run["throughput"]["tflops"] / matmul["tflops"]
                add(
                    "GPU: achieved TFLOP/s at a large batch / bf16 matmul TFLOP/s",
                    share,
                    ">= 0.40",
                    share >= 0.4,
                    (
                        f"{run['throughput']['tflops']:.1f} of {matmul['tflops']:.1f} "
                        f"TFLOP/s at batch {run['throughput']['batch']}"
                    ),
                )
    else:
        run = _find_run(report, "demo", 512, PAPER_SCALES)
        if run:
            add("CPU: demo 512x512 {1,0.75,0.5}, speedup over naive", run["speedup"], ">= 1.5", run["speedup"] >= 1.5)
            if run["reference"]:
                ratio = run["reference"]["fast_over_reference"]
                add("CPU: demo 512x512 {1,0.75,0.5} time / resnet18@512 time", ratio, "<= 3", ratio <= 3)
    for fit in report["fits"]:
        add(
            f"{fit['model']}: latency linear in pixels x sum(s^2), R^2",
            fit["r2"],
            "close to 1",
            None,
            (
                f"{fit['slope'] * 1e3:.1f} ms per Mpx*sum(s^2) + "
                f"{fit['intercept'] * 1e3:.1f} ms over {fit['points']} points"
            ),
        )
    for row in report["largest_input"]:
        add(
            f"{row['model']}: peak memory at {row['size'][0]}x{row['size'][1]} {row['scales']}",
            row["fast"]["peak_memory_mb"],
            "bounded",
            None,
            f"naive: {_mb(row['naive']['peak_memory_mb'])} MB",
        )
    return targets


# ----------------------------------------------------------------------------- output


def report_sections(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables, for the terminal and for Markdown alike."""
    sections = [
        (
            "Reference workloads (same run)",
            ["workload", "median ms", "TFLOP/s"],
            [[r["name"], f"{r['median_s'] * 1e3:.1f}", f"{r['tflops']:.3f}"] for r in report["references"]],
        ),
        (
            "Models",
            ["model", "what", "fast path precision"],
            [[m["name"], m["description"], str(m.get("precision"))] for m in report["models"]],
        ),
        (
            "Batch 1: naive baseline vs the Predictor (medians; speedup = median of paired naive/fast ratios)",
            [
                "model",
                "size",
                "scales",
                "sum s^2",
                "GFLOP",
                "naive ms",
                "fast ms",
                "speedup",
                "fast TFLOP/s",
                "naive MB",
                "fast MB",
                "agree %",
                "batch",
                "img/s",
                "batch TFLOP/s",
            ],
            [
                [
                    r["model"],
                    f"{r['size'][0]}",
                    ",".join(f"{s:g}" for s in r["scales"]),
                    f"{r['sum_s2']:.2f}",
                    f"{r['flops_per_image'] / 1e9:.1f}",
                    f"{r['naive']['median_s'] * 1e3:.1f}",
                    f"{r['fast']['median_s'] * 1e3:.1f}",
                    f"{r['speedup']:.2f}x",
                    f"{r['fast']['tflops']:.3f}",
                    _mb(r["naive"]["peak_memory_mb"]),
                    _mb(r["fast"]["peak_memory_mb"]),
                    f"{100 * r['label_agreement']:.2f}",
                    *(
                        ["-", "-", "-"]
                        if not r["throughput"]
                        else [
                            str(r["throughput"]["batch"]),
                            f"{r['throughput']['images_per_s']:.2f}",
                            f"{r['throughput']['tflops']:.3f}",
                        ]
                    ),
                ]
                for r in report["runs"]
            ],
        ),
    ]
    with_reference = [r for r in report["runs"] if r["reference"]]
    if with_reference:
        sections.append(
            (
                "Against the reference workload, in the same rounds (paired ratios of times)",
                ["model", "size", "scales", "reference", "reference ms", "fast/reference", "naive/reference"],
                [
                    [
                        r["model"],
                        str(r["size"][0]),
                        ",".join(f"{s:g}" for s in r["scales"]),
                        r["reference"]["name"],
                        f"{r['reference']['median_s'] * 1e3:.1f}",
                        f"{r['reference']['fast_over_reference']:.2f}",
                        f"{r['reference']['naive_over_reference']:.2f}",
                    ]
                    for r in with_reference
                ],
            )
        )
    for ladder in report["ablation"]:
        sections.append(
            (
                (
                    f"One optimisation at a time: {ladder['model']} "
                    f"{ladder['size'][0]}x{ladder['size'][1]} scales {ladder['scales']}"
                ),
                ["step", "median ms", "vs previous", "vs naive", "agree %", "setup s"],
                [
                    [
                        s["step"],
                        f"{s['median_s'] * 1e3:.1f}",
                        "-" if s["speedup_vs_previous"] is None else f"{s['speedup_vs_previous']:.2f}x",
                        f"{s['speedup_vs_naive']:.2f}x",
                        f"{100 * s['label_agreement_vs_naive']:.2f}",
                        f"{s['setup_s']:.1f}" if s["setup_s"] else "-",
                    ]
                    for s in ladder["steps"]
                ],
            )
        )
    if report["fits"]:
        sections.append(
            (
                "Latency against pixels x sum(s^2) (fast path, batch 1, least squares)",
                ["model", "points", "ms per Mpx*sum(s^2)", "intercept ms", "R^2", "max residual", "FLOPs R^2"],
                [
                    [
                        f["model"],
                        str(f["points"]),
                        f"{f['slope'] * 1e3:.1f}",
                        f"{f['intercept'] * 1e3:.1f}",
                        f"{f['r2']:.4f}",
                        f"{100 * f['max_rel_residual']:.0f}%",
                        f"{f['flops_r2']:.5f}",
                    ]
                    for f in report["fits"]
                ],
            )
        )
    if report["largest_input"]:
        sections.append(
            (
                "Largest input (peak memory above the resident baseline; one call each)",
                ["model", "size", "scales", "fast MB", "fast s", "naive MB", "naive s"],
                [
                    [
                        r["model"],
                        f"{r['size'][0]}x{r['size'][1]}",
                        ",".join(f"{s:g}" for s in r["scales"]),
                        _mb(r["fast"]["peak_memory_mb"]),
                        f"{r['fast']['seconds']:.2f}",
                        _mb(r["naive"]["peak_memory_mb"]),
                        f"{r['naive']['seconds']:.2f}",
                    ]
                    for r in report["largest_input"]
                ],
            )
        )
    if report["targets"]:
        sections.append(
            (
                "Targets",
                ["target", "value", "needs", "met", "detail"],
                [
                    [
                        t["target"],
                        "-" if t["value"] is None else f"{t['value']:.3f}",
                        t["threshold"],
                        {True: "yes", False: "NO", None: "-"}[t["met"]],
                        t["detail"],
                    ]
                    for t in report["targets"]
                ],
            )
        )
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


# ----------------------------------------------------------------------------- files


def read_report(path: Path) -> dict:
    """An earlier report, checked to be one; ValueError (one line) when it cannot be read or is something else."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the report {path}: {error}") from error
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a {SCHEMA} report")
    return report


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, making its folder; ValueError (one line) when the file cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
