"""Metrics and the ScaleShapes diagnostics: hand-counted cases and one-pass merge scoring."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from segscale import Predictor
from segscale.evaluation import AttentionBySize, SizeBinnedIoU, evaluate_scaleshapes, labels_for_merge, size_bin_index
from segscale.metrics import ConfusionMatrix


def test_confusion_matrix_iou_by_hand():
    labels = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 0, 0]])
    matrix = ConfusionMatrix(3)
    matrix.update(labels, predicted)
    scores = matrix.scores()
    # class 0: TP 1, FP 2 (a 2 and a 1 predicted 0), FN 1 -> 1/4; class 1: TP 2, FP 1, FN 1 -> 2/4; class 2: 1/2
    assert scores.class_iou == pytest.approx((0.25, 0.5, 0.5))
    assert scores.miou == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert scores.pixel_accuracy == pytest.approx(4 / 7) and scores.pixels == 7


def test_absent_classes_do_not_count_in_the_mean():
    matrix = ConfusionMatrix(4)
    matrix.update(np.array([0, 1]), np.array([0, 1]))
    scores = matrix.scores()
    assert np.isnan(scores.class_iou[3]) and scores.miou == 1.0


def test_size_bins():
    assert size_bin_index(12) == 0 and size_bin_index(23.9) == 0 and size_bin_index(24) == 1
    assert size_bin_index(5) == 0 and size_bin_index(10_000) == 5


def _object(instance_id, class_index, extent, center):
    return SimpleNamespace(
        instance_id=instance_id, class_index=class_index, class_name=f"c{class_index}", extent=extent, center=center
    )


def test_size_binned_iou_counts_spill_inside_the_disc_only():
    label = np.zeros((40, 40), np.uint8)
    instances = np.zeros((40, 40), np.uint8)
    label[10:14, 10:14] = 1  # a 4x4 square of class 1 (extent ~5.7 -> first bin)
    instances[10:14, 10:14] = 1
    predicted = label.copy()
    predicted[10, 10] = 0  # one missed pixel
    predicted[12, 14] = 1  # spill right next to it, inside its disc
    predicted[35, 35] = 1  # far away: not this object's false positive
    iou = SizeBinnedIoU()
    iou.update([_object(1, 1, 2 * 8**0.5, (12.0, 12.0))], instances, label, predicted)
    row = iou.rows()[0]
    assert (
        row["objects"] == 1
        and row["iou"] == pytest.approx(15 / (15 + 1 + 1))
        and row["recall"] == pytest.approx(15 / 16)
    )
    assert all(r["iou"] is None for r in iou.rows()[1:])


def test_attention_by_size_averages_objects_not_pixels():
    instances = np.zeros((10, 10), np.uint8)
    instances[:5] = 1  # 50 pixels, extent 100 -> bin 3
    instances[9, 9] = 2  # 1 pixel, extent 100 -> bin 3
    attention = np.zeros((2, 10, 10))
    attention[0] = 1.0
    attention[:, 9, 9] = (0.0, 1.0)
    stats = AttentionBySize((1.0, 0.5), ("bg", "a", "b"))
    stats.update([_object(1, 1, 100, (5, 2)), _object(2, 2, 100, (9, 9))], instances, attention)
    row = stats.rows()[3]
    assert row["objects"] == 2 and row["mean_weight"] == {"1.0": 0.5, "0.5": 0.5}
    assert stats.class_rows() == {"a": {"1.0": 1.0, "0.5": 0.0}, "b": {"1.0": 0.0, "0.5": 1.0}}
    assert stats.dominant_share() == {"1.0": 0.99, "0.5": 0.01}


def test_one_pass_scores_every_merge_like_separate_runs(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu")
    rgb = np.random.default_rng(1).integers(0, 256, (45, 70, 3), np.uint8)
    base = predictor.predict(rgb, merge="attention")
    for merge in ("attention", "average", "max"):
        np.testing.assert_array_equal(
            labels_for_merge(base.score_maps, base.attention_logits, merge, rgb.shape[:2]),
            predictor.predict(rgb, merge=merge).labels,
        )


def test_evaluate_scaleshapes_report(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint(scaleshapes=True), device="cpu")
    report = evaluate_scaleshapes(predictor, "val", 2, (1.0, 0.5), ("attention", "max"))
    assert report["scales"] == [1.0, 0.5] and set(report["merges"]) == {"attention", "max"}
    for scores in report["merges"].values():
        assert 0 <= scores["miou"] <= 1 and len(scores["iou_by_size"]) == 6
    assert sum(row["objects"] for row in report["attention_by_size"]) == sum(
        row["objects"] for row in report["merges"]["max"]["iou_by_size"]
    )
    assert sum(report["dominant_scale_share"].values()) == pytest.approx(1.0)


def test_evaluate_command_writes_json_and_refuses_bad_requests(make_checkpoint, tmp_path):
    checkpoint = make_checkpoint(head="paper", scaleshapes=True)
    out = tmp_path / "report.json"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "segscale",
            "evaluate",
            "--checkpoint",
            str(checkpoint),
            "--count",
            "1",
            "--merge",
            "attention",
            "average",
            "--json",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "IoU by object extent" in ok.stdout and set(json.loads(out.read_text())["merges"]) == {
        "attention",
        "average",
    }
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "segscale",
            "evaluate",
            "--checkpoint",
            str(checkpoint),
            "--count",
            "1",
            "--scales",
            "1",
            "0.5",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "trained for scales [1.0, 0.75, 0.5]" in bad.stderr and "Traceback" not in bad.stderr
    foreign = subprocess.run(
        [
            sys.executable,
            "-m",
            "segscale",
            "evaluate",
            "--checkpoint",
            str(make_checkpoint(name="other.pt")),
            "--count",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert foreign.returncode == 2 and "not ScaleShapes' classes" in foreign.stderr
