"""scripts/results_tables.py turns evaluate JSON into the tables of docs/RESULTS.md; its figures must be the JSON's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "results_tables.py"
spec = importlib.util.spec_from_file_location("results_tables", SCRIPT)
results_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_tables)


def report(miou_by_merge: dict[str, float], scales=(1.0, 0.75, 0.5)) -> dict:
    bins = [{"extent_low": 12.0, "extent_high": 24.0, "objects": 3, "iou": 0.25, "recall": 0.3}]
    merges = {
        m: {"miou": v, "pixel_accuracy": 0.9, "class_iou": {"background": 0.95, "circle": None}, "iou_by_size": bins}
        for m, v in miou_by_merge.items()
    }
    attention = [
        {
            "extent_low": 12.0,
            "extent_high": 24.0,
            "objects": 3,
            "mean_weight": {f"{s}": w for s, w in zip(scales, (0.2, 0.3, 0.5))},
        }
    ]
    return {
        "dataset": "scaleshapes",
        "split": "val",
        "images": 7,
        "scales": list(scales),
        "merges": merges,
        "attention_by_size": attention,
        "checkpoint": "x.pt",
    }


@pytest.mark.parametrize(
    "name, expected",
    [
        ("attention_1_075_05_esupv", ("attention", "{1, 0.75, 0.5}", True)),
        ("max_1_05", ("max", "{1, 0.5}", False)),
        ("single_1", ("single", "{1}", False)),
        ("average_15_1_05_esupv", ("average", "{1.5, 1, 0.5}", True)),
    ],
)
def test_row_names_read_back_into_merge_scales_and_esupv(name, expected):
    assert results_tables.describe_row(name) == expected


def test_a_name_that_is_not_a_row_is_an_error():
    with pytest.raises(ValueError, match="table row"):
        results_tables.describe_row("best_model")


def test_the_comparison_prints_each_row_its_own_merge_score_and_orders_rows():
    reports = {
        "attention_1_075_05_esupv": report({"attention": 0.6123}),
        "single_1": report({"average": 0.4567}, scales=(1.0,)),
        "max_1_075_05_esupv": report({"max": 0.5561}),
    }
    lines = results_tables.comparison_table(reports).splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["single", "max", "attention"]
    assert "**0.457**" in lines[0] and "**0.556**" in lines[1] and "**0.612**" in lines[2]
    assert "| - |" in lines[0]  # a class with no IoU (never present) is a dash, not 0


def test_attention_by_size_names_the_scale_with_most_weight():
    table = results_tables.attention_by_size_table(report({"attention": 0.5}))
    assert table.splitlines()[-1] == "| 12-24 px | 3 | 0.20 | 0.30 | 0.50 | 0.5 |"


def test_main_fails_with_a_message_on_an_empty_folder(tmp_path, capsys):
    assert results_tables.main([str(tmp_path)]) == 1
    assert "no val_*.json" in capsys.readouterr().err


def test_scale_sets_are_one_table_ordered_by_set_size():
    reports = [
        report({"attention": 0.7, "average": 0.6}, scales=(2.0, 1.0, 0.5)),
        report({"attention": 0.8, "average": 0.5}, scales=(1.0, 0.5)),
    ]
    lines = results_tables.scale_sets_table(reports).splitlines()
    assert lines[0].startswith("| scales | images | attention mIoU | average mIoU |")
    assert lines[2] == "| {1, 0.5} | 7 | 0.800 | 0.500 | 0.250 | 0.250 |"
    assert lines[3].startswith("| {2, 1, 0.5} | 7 | 0.700 | 0.600 |")


def test_the_size_table_gives_each_row_its_bins_and_the_object_counts_once():
    reports = {
        "attention_1_075_05_esupv": report({"attention": 0.6}),
        "single_1": report({"average": 0.4}, scales=(1.0,)),
    }
    lines = results_tables.size_table(reports).splitlines()
    assert lines[0] == "| merge | scales | E-Supv | 12-24 px |"
    assert lines[2] == "| objects | | | 3 |"
    assert lines[3:] == ["| single | {1} | no | 0.250 |", "| attention | {1, 0.75, 0.5} | yes | 0.250 |"]


REPO = SCRIPT.parents[1]


def test_the_published_tables_are_the_committed_json_printed_again(capsys):
    """docs/RESULTS.md and the model card must not keep a table after its JSON changed (a new checkpoint)."""
    assert results_tables.main([str(REPO / "docs" / "results")]) == 0
    printed = capsys.readouterr().out
    published = {path: (REPO / path).read_text() for path in ("docs/RESULTS.md", "checkpoints/README.md")}
    sections = printed.split("\n## ")
    # The comparison, the size table, both shipped models (incl. their attention by size) and the scale sets;
    # the per-row attention-by-size tables of the val runs are printed for reference and not all published.
    kept = [s for s in sections if not s.startswith("Attention by object size: ")]
    rows = [line for s in kept for line in s.splitlines() if line.startswith("| ") and not line.startswith("| merge |")]
    assert len(rows) > 30
    missing = [row for row in rows if row not in published["docs/RESULTS.md"]]
    assert not missing, f"docs/RESULTS.md lacks {missing[:3]}; rerun scripts/results_tables.py and paste"
    demo = next(s for s in kept if s.startswith("test_demo (test"))
    demo_rows = [line for line in demo.splitlines() if line.startswith(("| attention", "| average", "| max"))]
    assert demo_rows and all(row in published["checkpoints/README.md"] for row in demo_rows)


def test_chen_beside_tao_prints_each_models_own_merge_per_set_and_reads_its_file_names(tmp_path):
    import json

    for model, merge, own in (("chen", "attention", 0.61), ("hierarchical", "hierarchical", 0.64)):
        for scales, name in (((1.0, 0.5), "1_05"), ((2.0, 1.0, 0.5), "2_1_05")):
            data = report({merge: own + len(scales) / 100, "average": 0.5}, scales=scales)
            (tmp_path / f"val_{model}_set_{name}.json").write_text(json.dumps(data))
    splits = results_tables.read_chen_vs_tao(tmp_path)
    assert set(splits) == {"val"} and ("hierarchical", (2.0, 1.0, 0.5)) in splits["val"]
    lines = results_tables.chen_vs_tao_table(splits["val"]).splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["{1, 0.5}", "{2, 1, 0.5}"]
    assert "| 0.640 | 0.500 | 0.670 | 0.500 | +0.030 |" in lines[1]  # 0.61 + 0.03 and 0.64 + 0.03
    sizes = results_tables.chen_vs_tao_size_table(splits["val"]).splitlines()
    assert [line.split("|")[2].strip() for line in sizes[3:]] == ["attention", "hierarchical"] * 2
    (tmp_path / "val_other_set_1.json").write_text("{}")
    with pytest.raises(ValueError, match="val_other_set_1.json"):
        results_tables.read_chen_vs_tao(tmp_path)


def test_the_published_chen_beside_tao_tables_are_the_committed_json_printed_again(capsys):
    """docs/RESULTS.md's Chen-beside-Tao section holds every row the script prints from docs/results/chen_vs_tao."""
    folder = REPO / "docs" / "results" / "chen_vs_tao"
    assert results_tables.main(["--chen-vs-tao", str(folder)]) == 0
    printed = capsys.readouterr().out
    rows = [
        line
        for line in printed.splitlines()
        if line.startswith("| ") and not line.startswith(("| scales |", "| object extent |"))
    ]
    splits = results_tables.read_chen_vs_tao(folder)
    assert set(splits) == {"val", "test"} and all(len(reports) == 8 for reports in splits.values())  # 4 sets x 2 models
    published = (REPO / "docs" / "RESULTS.md").read_text()
    missing = [row for row in rows if row not in published]
    assert not missing, f"docs/RESULTS.md lacks {missing[:3]}; rerun scripts/results_tables.py --chen-vs-tao and paste"
