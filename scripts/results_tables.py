"""Markdown tables for docs/RESULTS.md and checkpoints/README.md from `segscale evaluate --json` files.

    python scripts/results_tables.py docs/results          # every table, to stdout
    python scripts/results_tables.py --chen-vs-tao docs/results/chen_vs_tao   # Chen beside Tao

The figures in those documents are pasted from this script's output, so they are the
evaluation runs' numbers, rounded, and nothing else. ``test_<model>.json`` files are printed
per merge, ``test_<model>_set_<scales>.json`` together as one table of scale sets. A
comparison row's name is its JSON file's name as scripts/reproduce_results.sh writes it:
``val_<merge>_<scales>[_esupv].json`` (scales with the dot dropped: ``1_075_05`` is
{1, 0.75, 0.5}) or ``val_single_1.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from segscale.formatting import format_scale_set

ROW_ORDER = ("single", "max", "average", "attention")


def describe_row(name: str) -> tuple[str, str, bool]:
    """'attention_1_075_05_esupv' -> ('attention', '{1, 0.75, 0.5}', True)."""
    match = re.fullmatch(r"(single|max|average|attention)_([0-9_]+?)(_esupv)?", name)
    if not match:
        raise ValueError(f"cannot read a table row from the name {name!r}")
    merge, digits, esupv = match.groups()
    scales = [float(f"{d[0]}.{d[1:]}") if len(d) > 1 else float(d) for d in digits.split("_")]
    return merge, format_scale_set(scales), esupv is not None


def comparison_rows(reports: dict[str, dict]) -> list[tuple[str, str, bool, dict, int]]:
    """(merge, scales, E-Supv, the row's own merge scores, images) per run, ordered as printed:
    by number of scales, then single < max < average < attention, then without E-Supv first."""
    rows = []
    for name, report in reports.items():
        merge, scales, esupv = describe_row(name)
        # A single-scale run is scored with whatever merge it was trained with (any is the same).
        scores = report["merges"][merge if merge != "single" else next(iter(report["merges"]))]
        rows.append(
            (len(report["scales"]), ROW_ORDER.index(merge), esupv, (merge, scales, esupv, scores, report["images"]))
        )
    return [row for *_, row in sorted(rows, key=lambda r: r[:3])]


def comparison_table(reports: dict[str, dict]) -> str:
    """One row per training run: merge, scale set, E-Supv, mIoU, pixel accuracy, IoU per class."""
    rows = comparison_rows(reports)
    classes = list(rows[0][3]["class_iou"])
    lines = [
        "| merge | scales | E-Supv | mIoU | pixel acc. | " + " | ".join(classes) + " | images |",
        "|---|---|---|---|---|" + "---|" * len(classes) + "---|",
    ]
    for merge, scales, esupv, scores, images in rows:
        ious = " | ".join(f"{v:.3f}" if v is not None else "-" for v in scores["class_iou"].values())
        lines.append(
            f"| {merge} | {scales} | {'yes' if esupv else 'no'} | **{scores['miou']:.3f}** | "
            f"{scores['pixel_accuracy']:.3f} | {ious} | {images} |"
        )
    return "\n".join(lines)


def size_table(reports: dict[str, dict]) -> str:
    """The comparison's rows again, as IoU by object-size bin (pooled over each bin's objects)."""
    rows = comparison_rows(reports)
    bins = rows[0][3]["iou_by_size"]
    lines = [
        "| merge | scales | E-Supv | "
        + " | ".join(f"{int(b['extent_low'])}-{int(b['extent_high'])} px" for b in bins)
        + " |",
        "|---|---|---|" + "---|" * len(bins),
        "| objects | | | " + " | ".join(str(b["objects"]) for b in bins) + " |",
    ]
    for merge, scales, esupv, scores, _ in rows:
        by_size = " | ".join(f"{b['iou']:.3f}" for b in scores["iou_by_size"])
        lines.append(f"| {merge} | {scales} | {'yes' if esupv else 'no'} | {by_size} |")
    return "\n".join(lines)


def merges_table(report: dict) -> str:
    """One checkpoint, every merge it was scored with: mIoU, pixel accuracy, IoU by object size."""
    first = next(iter(report["merges"].values()))
    bins = [f"{int(b['extent_low'])}-{int(b['extent_high'])} px" for b in first.get("iou_by_size", [])]
    lines = [
        "| merge | mIoU | pixel acc. | " + " | ".join(f"IoU {b}" for b in bins) + " |",
        "|---|---|---|" + "---|" * len(bins),
    ]
    for merge, scores in report["merges"].items():
        by_size = " | ".join(f"{b['iou']:.3f}" for b in scores.get("iou_by_size", []))
        lines.append(f"| {merge} | **{scores['miou']:.3f}** | {scores['pixel_accuracy']:.3f} | {by_size} |")
    objects = " | ".join(str(b["objects"]) for b in first.get("iou_by_size", []))
    if objects:
        lines.append(f"| objects | | | {objects} |")
    return "\n".join(lines)


def attention_by_size_table(report: dict) -> str:
    """Mean attention weight on each scale over the pixels of objects binned by extent."""
    scales = [f"{s:g}" for s in report["scales"]]
    lines = [
        "| object extent | objects | " + " | ".join(f"w(s={s})" for s in scales) + " | scale with most weight |",
        "|---|---|" + "---|" * len(scales) + "---|",
    ]
    for row in report.get("attention_by_size", []):
        weights = [row["mean_weight"][key] for key in row["mean_weight"]]
        if not row["objects"]:
            continue
        best = scales[max(range(len(weights)), key=weights.__getitem__)]
        lines.append(
            f"| {int(row['extent_low'])}-{int(row['extent_high'])} px | {row['objects']} | "
            + " | ".join(f"{w:.2f}" for w in weights)
            + f" | {best} |"
        )
    return "\n".join(lines)


def scale_sets_table(reports: list[dict]) -> str:
    """One checkpoint at several scale sets: mIoU per merge, and attention's IoU on the smallest and largest objects."""
    merges = list(reports[0]["merges"])
    lines = [
        "| scales | images | "
        + " | ".join(f"{m} mIoU" for m in merges)
        + " | attention IoU, objects < 24 px | attention IoU, objects > 384 px |",
        "|---|---|" + "---|" * len(merges) + "---|---|",
    ]
    for report in sorted(reports, key=lambda r: (len(r["scales"]), sorted(r["scales"], reverse=True))):
        scores = " | ".join(f"{report['merges'][m]['miou']:.3f}" for m in merges)
        bins = report["merges"].get("attention", {}).get("iou_by_size") or [{"iou": float("nan")}]
        lines.append(
            f"| {format_scale_set(report['scales'])} | {report['images']} "
            f"| {scores} | {bins[0]['iou']:.3f} | {bins[-1]['iou']:.3f} |"
        )
    return "\n".join(lines)


CHEN_VS_TAO_MODELS = {"chen": "attention", "hierarchical": "hierarchical"}  # file name part -> its learned merge


def read_chen_vs_tao(folder: Path) -> dict[str, dict[tuple[str, tuple[float, ...]], dict]]:
    """``<split>_<chen|hierarchical>_set_<scales>.json`` -> {split: {(model, scales): report}}."""
    found: dict[str, dict[tuple[str, tuple[float, ...]], dict]] = {}
    for path in sorted(folder.glob("*_set_*.json")):
        match = re.fullmatch(r"(val|test)_(chen|hierarchical)_set_[0-9_]+", path.stem)
        if not match:
            raise ValueError(f"{path.name}: not a <split>_<chen|hierarchical>_set_<scales>.json file")
        report = json.loads(path.read_text())
        found.setdefault(match.group(1), {})[(match.group(2), tuple(report["scales"]))] = report
    return found


def _by_set(reports: dict[tuple[str, tuple[float, ...]], dict]) -> list[tuple[float, ...]]:
    return sorted({scales for _, scales in reports}, key=lambda s: (len(s), sorted(s, reverse=True)))


def chen_vs_tao_table(reports: dict[tuple[str, tuple[float, ...]], dict]) -> str:
    """One split: per scale set, each model's mIoU with its own learned merge and with average pooling."""
    lines = [
        (
            "| scales | images | Chen attention | Chen, average | "
            "hierarchical | hierarchical, average | hierarchical - Chen |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for scales in _by_set(reports):
        chen, tao = reports.get(("chen", scales)), reports.get(("hierarchical", scales))
        if chen is None or tao is None:
            continue
        own_chen, own_tao = chen["merges"]["attention"]["miou"], tao["merges"]["hierarchical"]["miou"]
        lines.append(
            f"| {format_scale_set(scales)} | {tao['images']} | {own_chen:.3f} | "
            f"{chen['merges']['average']['miou']:.3f} | {own_tao:.3f} | "
            f"{tao['merges']['average']['miou']:.3f} | {own_tao - own_chen:+.3f} |"
        )
    return "\n".join(lines)


def chen_vs_tao_size_table(reports: dict[tuple[str, tuple[float, ...]], dict]) -> str:
    """One split: IoU by object size of each model's learned merge, per scale set."""
    first = next(iter(reports.values()))
    bins = first["merges"]["average"]["iou_by_size"]
    lines = [
        "| scales | merge | " + " | ".join(f"{int(b['extent_low'])}-{int(b['extent_high'])} px" for b in bins) + " |",
        "|---|---|" + "---|" * len(bins),
        "| objects | | " + " | ".join(str(b["objects"]) for b in bins) + " |",
    ]
    for scales in _by_set(reports):
        for model, merge in CHEN_VS_TAO_MODELS.items():
            report = reports.get((model, scales))
            if report is not None:
                by_size = " | ".join(f"{b['iou']:.3f}" for b in report["merges"][merge]["iou_by_size"])
                lines.append(f"| {format_scale_set(scales)} | {merge} | {by_size} |")
    return "\n".join(lines)


def chen_vs_tao_main(folder: Path) -> int:
    splits = read_chen_vs_tao(folder)
    if not splits:
        print(f"no <split>_<chen|hierarchical>_set_<scales>.json in {folder}", file=sys.stderr)
        return 1
    for split, reports in sorted(splits.items(), key=lambda item: item[0] != "val"):  # val first, as the other tables
        print(f"## Chen beside Tao on ScaleShapes {split}: mIoU\n")
        print(chen_vs_tao_table(reports) + "\n")
        print(f"## Chen beside Tao on ScaleShapes {split}: IoU by object size\n")
        print(chen_vs_tao_size_table(reports) + "\n")
        for (model, scales), report in sorted(reports.items(), key=lambda item: (item[0][0], len(item[0][1]))):
            if len(scales) == max(len(s) for _, s in reports) and report.get("attention_by_size"):
                weights = "effective weight" if model == "hierarchical" else "attention weight w^s"
                print(
                    f"## {split}, {CHEN_VS_TAO_MODELS[model]} at {format_scale_set(scales)}: {weights} by object size\n"
                )
                print(attention_by_size_table(report) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where reproduce_results.sh wrote the JSON files (docs/results)")
    parser.add_argument(
        "--chen-vs-tao",
        action="store_true",
        help="the folder holds the Chen-beside-Tao <split>_<chen|hierarchical>_set_<scales>.json files",
    )
    args = parser.parse_args(argv)
    if args.chen_vs_tao:
        return chen_vs_tao_main(args.folder)
    val = {
        path.stem.removeprefix("val_"): json.loads(path.read_text()) for path in sorted(args.folder.glob("val_*.json"))
    }
    if val:
        print("## Comparison on ScaleShapes val\n")
        print(comparison_table(val) + "\n")
        print("## IoU by object size on ScaleShapes val\n")
        print(size_table(val) + "\n")
        for name, report in val.items():
            if report.get("attention_by_size"):
                print(f"## Attention by object size: {name}\n")
                print(attention_by_size_table(report) + "\n")
    tests = sorted(path for path in args.folder.glob("test_*.json") if "_set_" not in path.stem)
    for path in tests:
        report = json.loads(path.read_text())
        print(f"## {path.stem} ({report['split']}, {report['images']} images, {report['checkpoint']})\n")
        print(merges_table(report) + "\n")
        if report.get("attention_by_size"):
            print(attention_by_size_table(report) + "\n")
    sets: dict[str, list[dict]] = {}
    for path in sorted(args.folder.glob("test_*_set_*.json")):
        sets.setdefault(path.stem.split("_set_")[0], []).append(json.loads(path.read_text()))
    for name, reports in sets.items():
        print(f"## {name} at other scale sets ({reports[0]['split']})\n")
        print(scale_sets_table(reports) + "\n")
    if not val and not any(args.folder.glob("test_*.json")):
        print(f"no val_*.json or test_*.json in {args.folder}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
