"""One prediction scored against its ground truth (the main view's caption under a sample's ground truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segscale.losses import IGNORE_INDEX
from segscale.metrics import segmentation_scores


def test_scores_of_one_image_are_counted_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    predicted = np.array([[0, 1, 1, 1], [0, 0, 1, 2]])
    scores = segmentation_scores(truth, predicted, 3)
    # background: TP 3, FP 0, FN 1 -> 3/4; disc: TP 3, FP 1, FN 1 -> 3/5; bar: TP 0, FP 1 -> 0
    assert scores.class_iou == pytest.approx((3 / 4, 3 / 5, 0.0))
    assert scores.miou == pytest.approx((3 / 4 + 3 / 5 + 0) / 3)
    assert scores.pixel_accuracy == pytest.approx(6 / 8) and scores.pixels == 8


def test_ignored_pixels_are_not_counted_and_an_absent_class_has_no_iou():
    truth = np.array([[0, IGNORE_INDEX], [0, 1]])
    predicted = np.array([[0, 1], [0, 1]])
    scores = segmentation_scores(truth, predicted, 3)
    assert scores.pixels == 3 and scores.pixel_accuracy == 1.0 and scores.miou == 1.0
    assert math.isnan(scores.class_iou[2])  # bar: neither present nor predicted


def test_a_prediction_of_another_size_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        segmentation_scores(np.zeros((2, 2)), np.zeros((2, 3)), 3)
