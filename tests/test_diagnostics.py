"""Diagnostics: one pixel's Eq. 1-2, merges side by side, scales over many images, and their figures.

Every number is checked against the prediction's own arrays or an independent computation
(torch's softmax and interpolation, a hand-counted IoU, the generator's own object metadata).
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle

import numpy as np
import pytest
import torch

from segscale.checkpoint import model_from_checkpoint, save_checkpoint
from segscale.diagnostics import (
    cell_center,
    cell_footprint,
    cell_mean_colours,
    compare_merges,
    image_diagnostics,
    nearest_cell,
    nearest_cells,
    pixel_at_cell,
    pixel_breakdown,
    salient_pixel,
    scale_diagnostics,
)
from segscale.diagnostics.grid import bilinear_at
from segscale.evaluation import evaluate_scaleshapes, score_scaleshapes, size_bin_index
from segscale.inference import FastPathOptions
from segscale.modeling import build_model
from segscale.palette import colorize_labels
from segscale.predictor import Prediction, Predictor, StageTimings

from .conftest import tiny_config, tiny_metadata

FLOAT32 = FastPathOptions(autocast="off")  # the reference precision, whatever the CPU


def _sharpen(model, seed: int = 1):
    """Spread a fresh model's logits and scores (its heads start near zero) so weights are far from 1/S."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fc8 = model.score_head.fc8
        weight = torch.randn(fc8.weight.shape, generator=generator)
        # Zero-sum over features: fc7 is non-negative with a strong common mode, which would
        # otherwise make one class win everywhere at every scale.
        fc8.weight.copy_((weight - weight.mean(dim=1, keepdim=True)) * 0.5)
        if model.attention_head is not None:
            score = model.attention_head.layers.score
            score.weight.copy_(torch.randn(score.weight.shape, generator=generator) * 3.0)
            score.bias.copy_(torch.randn(score.bias.shape, generator=generator))
    return model


def _predictor(path) -> Predictor:
    model, metadata = model_from_checkpoint(path)
    return Predictor(_sharpen(model), metadata, device="cpu", options=FLOAT32)


@pytest.fixture
def rgb():
    return np.random.default_rng(3).integers(0, 256, size=(45, 70, 3), dtype=np.uint8)


def _synthetic(score_maps, logits=None, merge="attention", size=(9, 5)) -> Prediction:
    """A Prediction built from hand-chosen grid arrays, fused and labelled by the model's own functions."""
    from segscale.modeling.fusion import merge_score_maps
    from segscale.modeling.geometry import resize_bilinear

    score_maps = np.asarray(score_maps, np.float32)
    logits_t = None if logits is None else torch.from_numpy(np.asarray(logits, np.float32))[None]
    fused, weights = merge_score_maps(torch.from_numpy(score_maps)[None], merge, logits_t)
    labels = resize_bilinear(fused, size).argmax(dim=1)[0].numpy()
    return Prediction(
        scales=tuple(1.0 / (k + 1) for k in range(score_maps.shape[0])),
        merge=merge,
        image=np.zeros((*size, 3), np.uint8),
        score_maps=score_maps,
        attention_logits=None if logits is None else np.asarray(logits, np.float32),
        attention=None if weights is None else weights[0].numpy(),
        fused=fused[0].numpy(),
        labels=labels,
        original_size=size,
        device="CPU",
        timings=StageTimings(0, 0, 0),
    )


# ------------------------------------------------------------------ pixel -> cell


@pytest.mark.parametrize("pixels, cells", [(45, 6), (70, 9), (16, 2), (513, 65), (100, 100), (37, 1)])
def test_nearest_cell_is_the_closest_cell_centre(pixels, cells):
    centres = np.linspace(0, pixels - 1, cells) if cells > 1 else np.zeros(1)
    for r in range(pixels):
        k = nearest_cell(r, 0, (pixels, 1), (cells, 1))[0]
        assert abs(centres[k] - r) <= np.abs(centres - r).min() + 1e-9, (r, k)
        assert cell_center((k, 0), (pixels, 1), (cells, 1))[0] == pytest.approx(centres[k])


def test_corners_and_centre_map_to_the_corner_and_centre_cells():
    size, grid = (65, 81), (9, 11)  # cell k sits on pixel 8k exactly
    assert nearest_cell(0, 0, size, grid) == (0, 0)
    assert nearest_cell(64, 80, size, grid) == (8, 10)
    assert nearest_cell(0, 80, size, grid) == (0, 10)
    assert nearest_cell(32, 40, size, grid) == (4, 5)
    assert cell_center((4, 5), size, grid) == (32.0, 40.0)
    assert nearest_cell(35, 43, size, grid) == (4, 5) and nearest_cell(36, 44, size, grid) == (5, 6)  # halves round up


@pytest.mark.parametrize("size, grid", [((45, 70), (6, 9)), ((65, 81), (9, 11)), ((37, 16), (1, 2))])
def test_footprints_tile_the_image_and_clicking_a_cell_picks_a_pixel_inside_it(size, grid):
    """What the pixel inspector relies on: every pixel belongs to exactly the footprint of its nearest cell."""
    for axis in (0, 1):
        expected = [
            nearest_cell(k, k, (size[axis], size[axis]), (grid[axis], grid[axis]))[0] for k in range(size[axis])
        ]
        assert nearest_cells(size[axis], grid[axis]).tolist() == expected
    owner = np.full(size, -1)
    for i in range(grid[0]):
        for j in range(grid[1]):
            top, left, bottom, right = cell_footprint((i, j), size, grid)
            assert (owner[top : bottom + 1, left : right + 1] == -1).all(), "footprints overlap"
            owner[top : bottom + 1, left : right + 1] = i * grid[1] + j
            row, col = pixel_at_cell((i, j), size, grid)
            assert top <= row <= bottom and left <= col <= right
            assert nearest_cell(row, col, size, grid) == (i, j)
    assert (owner >= 0).all(), "a pixel belongs to no footprint"
    with pytest.raises(ValueError, match="outside"):
        cell_footprint(grid, size, grid)


# A library network's grid: stride 4 (SegFormer's), a side that is not a whole number of cells, upsampled to the
# image with align_corners=False; and torchvision's stride 8 on odd sides, the same convention.
NOT_ALIGNED = [((37, 53), (10, 14)), ((45, 70), (6, 9)), ((16, 16), (4, 4)), ((9, 5), (3, 1))]


@pytest.mark.parametrize("size, grid", NOT_ALIGNED)
def test_without_aligned_corners_a_pixel_maps_to_the_cell_the_upsample_centres_it_on(size, grid):
    for axis in (0, 1):
        pixels, cells = size[axis], grid[axis]
        centres = (np.arange(cells) + 0.5) * pixels / cells - 0.5  # F.interpolate's cell centres (align_corners=False)
        for r in range(pixels):
            where = (r, 0) if axis == 0 else (0, r)
            k = nearest_cell(*where, size, grid, align_corners=False)[axis]
            assert abs(centres[k] - r) <= np.abs(centres - r).min() + 1e-9, (r, k)
            assert k == min(cells - 1, int((r + 0.5) * cells / pixels))  # the cell whose span holds the pixel
        assert nearest_cells(pixels, cells, align_corners=False).tolist() == [
            nearest_cell(*((r, 0) if axis == 0 else (0, r)), size, grid, align_corners=False)[axis]
            for r in range(pixels)
        ]
        for k in range(cells):
            cell = (k, 0) if axis == 0 else (0, k)
            assert cell_center(cell, size, grid, align_corners=False)[axis] == pytest.approx(centres[k])
    owner = np.full(size, -1)
    for i in range(grid[0]):
        for j in range(grid[1]):
            top, left, bottom, right = cell_footprint((i, j), size, grid, align_corners=False)
            assert (owner[top : bottom + 1, left : right + 1] == -1).all(), "footprints overlap"
            owner[top : bottom + 1, left : right + 1] = i * grid[1] + j
            row, col = pixel_at_cell((i, j), size, grid, align_corners=False)
            assert top <= row <= bottom and left <= col <= right
            assert nearest_cell(row, col, size, grid, align_corners=False) == (i, j)
    assert (owner >= 0).all(), "a pixel belongs to no footprint"


@pytest.mark.parametrize("size, grid", NOT_ALIGNED)
def test_without_aligned_corners_bilinear_at_is_torchs_upsample(size, grid):
    maps = np.random.default_rng(0).normal(size=(3, *grid))
    upsampled = torch.nn.functional.interpolate(
        torch.from_numpy(maps)[None], size=size, mode="bilinear", align_corners=False
    )[0].numpy()
    for row in range(size[0]):
        for col in range(size[1]):
            values, _ = bilinear_at(maps, row, col, size, align_corners=False)
            np.testing.assert_allclose(values, upsampled[:, row, col], rtol=1e-12, atol=1e-12)


def test_a_breakdown_of_a_prediction_upsampled_without_aligned_corners_follows_its_labels():
    from dataclasses import replace

    from segscale.modeling.geometry import resize_bilinear

    scores = np.random.default_rng(1).normal(size=(2, 4, 10, 14)).astype(np.float32)
    aligned = _synthetic(scores, logits=np.zeros((2, 10, 14)), size=(37, 53))
    fused = torch.from_numpy(aligned.fused)[None]
    labels = resize_bilinear(fused, (37, 53), align_corners=False).argmax(dim=1)[0].numpy()
    prediction = replace(aligned, labels=labels, align_corners=False)
    upsampled = resize_bilinear(fused.double(), (37, 53), align_corners=False)[0].numpy()
    for row, col in [(0, 0), (36, 52), (1, 2), (18, 26), (35, 3)]:
        b = pixel_breakdown(prediction, row, col, ("a", "b", "c", "d"))
        np.testing.assert_allclose(b.pixel_scores, upsampled[:, row, col], rtol=1e-6, atol=1e-6)
        assert b.pixel_label == labels[row, col] == upsampled[:, row, col].argmax()
        assert b.cell == (min(9, int((row + 0.5) * 10 / 37)), min(13, int((col + 0.5) * 14 / 53)))


def test_cell_mean_colours_average_each_footprint(rgb):
    grid = (6, 9)
    colours = cell_mean_colours(rgb, grid)
    assert colours.shape == (6, 9, 3) and colours.dtype == np.uint8
    top, left, bottom, right = cell_footprint((2, 5), rgb.shape[:2], grid)
    expected = rgb[top : bottom + 1, left : right + 1].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(colours[2, 5], expected, atol=0.5)
    assert (cell_mean_colours(np.full((20, 30, 3), 77, np.uint8), (3, 4)) == 77).all()


def test_salient_pixel_is_where_the_most_frequent_object_class_wins_most_clearly():
    scores = np.zeros((1, 3, 3, 3), np.float32)
    scores[0, 0] = 1.0  # background everywhere...
    scores[0, 2, :, :2] = 2.0  # ...but class 2 on the left two columns
    scores[0, 2, 1, 0] = 5.0  # most clearly at cell (1, 0)
    prediction = _synthetic(scores, merge="average", size=(9, 5))
    row, col = salient_pixel(prediction)
    assert nearest_cell(row, col, (9, 5), (3, 3)) == (1, 0)


# ------------------------------------------------------------------ Eq. 1 and Eq. 2 at a pixel


@pytest.mark.parametrize("head", ["shared", "paper"])
def test_breakdown_satisfies_eq2_and_eq1_against_the_prediction(make_checkpoint, rgb, head):
    predictor = _predictor(make_checkpoint(head=head))
    prediction = predictor.predict(rgb, merge="attention")
    torch_weights = torch.softmax(torch.from_numpy(prediction.attention_logits).double(), dim=0).numpy()
    assert torch_weights.max() > 0.6, "the test model's attention should be far from uniform"
    for row, col in [(0, 0), (44, 69), (22, 35), (7, 61)]:
        b = pixel_breakdown(prediction, row, col, predictor.classes, top_k=3)
        i, j = b.cell
        sm = b.softmax
        np.testing.assert_array_equal(sm.logits, prediction.attention_logits[:, i, j].astype(np.float64))
        assert sm.max_logit == max(sm.logits)
        np.testing.assert_allclose(sm.shifted, np.array(sm.logits) - sm.max_logit, rtol=0, atol=0)
        np.testing.assert_allclose(sm.exps, np.exp(sm.shifted), rtol=1e-15)
        assert sm.exp_sum == pytest.approx(sum(sm.exps), rel=1e-15)
        np.testing.assert_allclose(sm.weights, torch_weights[:, i, j], rtol=1e-12)
        np.testing.assert_allclose(sm.weights, prediction.attention[:, i, j], atol=2e-7)  # the model's own w^s
        attention = b.fusion("attention")
        f = prediction.score_maps[:, :, i, j].astype(np.float64)
        np.testing.assert_allclose(attention.terms, torch_weights[:, i, j, None] * f, rtol=1e-12)
        np.testing.assert_allclose(np.sum(attention.terms, axis=0), attention.fused, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            attention.fused, prediction.fused[:, i, j], rtol=1e-5, atol=1e-6
        )  # the model's own g
        assert attention.winner == int(np.argmax(prediction.fused[:, i, j]))
        assert b.scale_winners == tuple(int(c) for c in f.argmax(axis=1))


def test_average_and_max_at_the_cell_match_the_model_run_with_those_merges(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint())
    runs = {merge: predictor.predict(rgb, merge=merge) for merge in ("attention", "average", "max")}
    b = pixel_breakdown(runs["attention"], 30, 12, predictor.classes)
    i, j = b.cell
    f = runs["attention"].score_maps[:, :, i, j].astype(np.float64)
    average, maximum = b.fusion("average"), b.fusion("max")
    assert average.weights == pytest.approx((1 / 3,) * 3)
    np.testing.assert_allclose(average.fused, runs["average"].fused[:, i, j], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maximum.fused, runs["max"].fused[:, i, j], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(maximum.source_scales, f.argmax(axis=0))
    assert maximum.weights is None and maximum.terms is None
    assert average.winner == int(runs["average"].fused[:, i, j].argmax())
    assert maximum.winner == int(runs["max"].fused[:, i, j].argmax())
    # A max-merged prediction has no logits: no Eq. 2, but the same average and max numbers.
    b_max = pixel_breakdown(runs["max"], 30, 12, predictor.classes)
    assert b_max.softmax is None and b_max.methods == ("average", "max") and b_max.merge == "max"
    np.testing.assert_allclose(b_max.fusion("max").fused, maximum.fused, rtol=1e-6)
    assert b_max.latex_eq2() is None and len(b_max.latex_blocks()) == 1
    assert "not shown" in b_max.to_text()
    with pytest.raises(ValueError, match="available: average, max"):
        b_max.fusion("attention")


def test_model_without_attention_head(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint(merge="average"))
    prediction = predictor.predict(rgb)
    b = pixel_breakdown(prediction, 10, 10, predictor.classes)
    assert b.softmax is None and b.merge == "average"
    np.testing.assert_allclose(b.own.fused, prediction.fused[:, b.cell[0], b.cell[1]], rtol=1e-5, atol=1e-6)


def test_shown_classes_are_the_top_k_of_the_fusion_then_the_chosen_one():
    scores = np.zeros((2, 5, 2, 2))
    scores[0, :, 0, 0] = [0.0, 4.0, 1.0, 3.0, -2.0]
    scores[1, :, 0, 0] = [1.0, 0.0, 5.0, 1.0, -1.0]
    prediction = _synthetic(scores, logits=np.zeros((2, 2, 2)), size=(9, 9))
    names = ("a", "b", "c", "d", "e")
    b = pixel_breakdown(prediction, 0, 0, names, top_k=2)  # g = (0.5, 2, 3, 2, -1.5): c, then b (first of the tie)
    assert b.shown_classes == (2, 1)
    assert pixel_breakdown(prediction, 0, 0, names, top_k=2, chosen_class="e").shown_classes == (2, 1, 4)
    assert pixel_breakdown(prediction, 0, 0, names, top_k=2, chosen_class=1).shown_classes == (2, 1)
    assert b.scale_winners == (1, 2)
    with pytest.raises(ValueError, match="unknown class"):
        pixel_breakdown(prediction, 0, 0, names, chosen_class="zebra")
    with pytest.raises(ValueError, match="outside"):
        pixel_breakdown(prediction, 9, 0, names)
    with pytest.raises(ValueError, match="outside"):
        pixel_breakdown(prediction, 0, -1, names)


@pytest.mark.parametrize("count", [3, 5])
@pytest.mark.parametrize("merge", ["attention", "average", "max"])
def test_eq1_is_written_at_most_two_terms_a_line_with_a_plain_negative_result(count, merge):
    """Eq. 1 must fit the inspector's numbers column, and "= −0.640" reads better than "=(−0.640)"."""
    scores = np.zeros((count, 2, 2, 2))
    scores[:, 0, 0, 0] = -np.arange(1, count + 1) / 4  # class a: negative at every scale, so g_a < 0
    scores[:, 1, 0, 0] = -2.0
    prediction = _synthetic(scores, logits=np.zeros((count, 2, 2)), size=(9, 9))
    b = pixel_breakdown(prediction, 0, 0, ("a", "b"), top_k=2)
    block = b.latex_eq1(merge)
    lines = block.split("\\\\\n")
    assert all(line.count("\\cdot") <= 2 and line.count(",") <= 2 for line in lines), block
    fused_a = b.fusion(merge).fused[0]
    assert fused_a < 0 and f" = {fused_a:.3f}" in block, block
    assert "= (" not in block and "=(" not in block
    # Every scale's score of class a is still written, in order, across the lines.
    for s in range(count):
        assert f"{scores[s, 0, 0, 0]:.3f}" in block
    # Eq. 2 as narrow: past three scales the sum of exponentials is written once (Z), three powers a line
    # (at most four powers a line: a numerator over three, or Z's sum symbol and three).
    eq2_lines = b.latex_eq2().split("\\\\\n")
    assert all(line.count("e^{") <= 4 for line in eq2_lines), eq2_lines
    assert "e^{(" not in b.latex_eq2()  # an exponent is written plainly, negative or not


def test_label_between_cells_can_differ_from_the_nearest_cell_and_says_so():
    # Two cells along the rows: cell 0 (pixel row 0) mildly class 0, cell 1 (row 8) strongly class 1.
    scores = np.zeros((1, 2, 2, 1))
    scores[0, :, 0, 0] = [1.0, 0.0]
    scores[0, :, 1, 0] = [0.0, 10.0]
    prediction = _synthetic(scores, logits=np.zeros((1, 2, 1)), size=(9, 1))
    b = pixel_breakdown(prediction, 3, 0, ("near", "far"))
    assert b.cell == (0, 0) and b.cell_winner == 0
    # g at row 3 is 5/8 of cell 0 and 3/8 of cell 1: (0.625, 3.75).
    np.testing.assert_allclose(b.pixel_scores, [0.625, 3.75])
    assert b.pixel_label == 1 == prediction.labels[3, 0]
    assert b.note is not None and "far" in b.note and "near" in b.note
    # Row 0 sits on cell 0 itself: g = (1, 0), the cell's own winner, no note.
    on_cell = pixel_breakdown(prediction, 0, 0, ("near", "far"))
    assert on_cell.pixel_label == 0 and on_cell.note is None


def test_pixel_scores_are_the_upsampled_fused_map(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint())
    prediction = predictor.predict(rgb)
    upsampled = torch.nn.functional.interpolate(
        torch.from_numpy(prediction.fused)[None].double(), size=rgb.shape[:2], mode="bilinear", align_corners=True
    )[0].numpy()
    for row, col in [(0, 0), (44, 69), (13, 27), (40, 3)]:
        b = pixel_breakdown(prediction, row, col, predictor.classes)
        np.testing.assert_allclose(b.pixel_scores, upsampled[:, row, col], rtol=1e-12, atol=1e-12)
        assert b.pixel_label == prediction.labels[row, col] == upsampled[:, row, col].argmax()
        assert (b.note is None) == (b.pixel_label == b.cell_winner)


def test_text_latex_and_json_carry_the_numbers(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint())
    b = pixel_breakdown(predictor.predict(rgb), 20, 30, predictor.classes, top_k=2)
    text = b.to_text()
    assert "Eq. 2" in text and "Eq. 1" in text and "average pooling" in text and "max pooling" in text
    for w in b.softmax.weights:
        assert f"{w:.4f}" in text
    assert f"{b.softmax.exp_sum:.6f}" in text
    winner = b.classes[b.own.winner]
    assert f"winner: {winner}" in text
    eq2, eq1 = b.latex_blocks()
    for block in (eq2, eq1):
        assert block.count("{") == block.count("}") and block.startswith("\\begin{aligned}")
    assert f"{b.softmax.weights[0]:.4f}" in eq2
    assert all(f"\\text{{{b.classes[c]}}}" in eq1 for c in b.shown_classes)
    whole = b.to_latex()
    assert eq2 in whole and eq1 in whole and whole.count("{") == whole.count("}")
    data = json.loads(json.dumps(b.to_dict()))
    assert data["cell"]["row"] == b.cell[0] and data["fusions"]["attention"]["winner"] == winner
    assert data["softmax"]["weights"] == list(b.softmax.weights)
    assert [r["scale"] for r in b.scale_rows()] == list(b.scales)
    assert [r["merge"] for r in b.merge_rows()] == ["attention", "average", "max"]


# ------------------------------------------------------------------ merge comparison


def _iou_by_hand(truth, predicted, num_classes):
    keep = truth != 255
    ious = []
    for c in range(num_classes):
        tp = np.sum(keep & (truth == c) & (predicted == c))
        fp = np.sum(keep & (truth != c) & (predicted == c))
        fn = np.sum(keep & (truth == c) & (predicted != c))
        ious.append(tp / (tp + fp + fn) if tp + fp + fn else np.nan)
    return np.array(ious)


def test_compare_merges_against_independent_computations(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint())
    prediction = predictor.predict(rgb, merge="attention")
    truth = np.random.default_rng(0).integers(0, 3, size=rgb.shape[:2])
    truth[:5] = 255
    comparison = compare_merges(prediction, truth, predictor.classes)
    assert comparison.methods == ("attention", "average", "max")

    scores = torch.from_numpy(prediction.score_maps).double()  # (S, C, h, w)
    weights = torch.softmax(torch.from_numpy(prediction.attention_logits).double(), dim=0)
    fused = {"attention": (weights[:, None] * scores).sum(0), "average": scores.mean(0), "max": scores.amax(0)}
    for method, g in fused.items():
        up = torch.nn.functional.interpolate(g[None], size=rgb.shape[:2], mode="bilinear", align_corners=True)[0]
        expected = up.argmax(0).numpy()
        result = comparison.result(method)
        assert (result.labels == expected).mean() > 0.999
        np.testing.assert_array_equal(result.errors, (truth != 255) & (result.labels != truth))
        np.testing.assert_allclose(result.scores.class_iou, _iou_by_hand(truth, result.labels, 3), equal_nan=True)
        assert result.scores.pixel_accuracy == pytest.approx(
            np.mean(result.labels[truth != 255] == truth[truth != 255])
        )
    assert (comparison.result("attention").labels == prediction.labels).mean() > 0.999

    stack = np.stack([comparison.result(m).labels for m in comparison.methods])
    brute = np.array([[len(set(stack[:, r, c])) > 1 for c in range(stack.shape[2])] for r in range(stack.shape[1])])
    np.testing.assert_array_equal(comparison.disagreement, brute)
    assert comparison.disagreement.any(), "a sharpened random model should make the merges disagree somewhere"
    assert comparison.disagreement_share == pytest.approx(brute.mean())
    pairs = {(a, b): share for a, b, share in comparison.agreement}
    assert set(pairs) == {("attention", "average"), ("attention", "max"), ("average", "max")}
    assert pairs[("average", "max")] == pytest.approx((stack[1] == stack[2]).mean())
    contested = brute & (truth != 255)
    assert comparison.result("max").correct_where_disagree == pytest.approx(
        np.mean(stack[2][contested] == truth[contested])
    )
    json.dumps(comparison.to_dict())
    assert [row["merge"] for row in comparison.summary_rows()] == ["attention", "average", "max"]


def test_compare_text_writes_every_class_name_whole_with_its_iou_per_merge():
    """A terminal table that cut "background" to "backgroun" (and VOC's "pottedplant") hid which class a column was."""
    classes = ("background", "pottedplant", "tvmonitor")
    scores = np.random.default_rng(2).normal(size=(2, 3, 3, 3))
    prediction = _synthetic(scores, logits=np.zeros((2, 3, 3)), size=(9, 9))
    truth = np.random.default_rng(3).integers(0, 3, size=(9, 9))
    comparison = compare_merges(prediction, truth, classes)
    text = comparison.to_text()
    lines = text.splitlines()
    for c, name in enumerate(classes):
        row = next(line for line in lines if line.startswith(name + " "))
        values = [comparison.result(m).scores.class_iou[c] for m in comparison.methods]
        assert row.split()[1:] == ["-" if np.isnan(v) else f"{v:.3f}" for v in values], row
    assert max(len(line) for line in lines) <= 100


def test_compare_without_ground_truth_or_attention_head(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint(merge="average"))
    prediction = predictor.predict(rgb)
    comparison = compare_merges(prediction, classes=predictor.classes)
    assert comparison.methods == ("average", "max") and not comparison.has_ground_truth
    assert all(r.scores is None and r.errors is None for r in comparison.results)
    assert [a[:2] for a in comparison.agreement] == [("average", "max")]
    with pytest.raises(ValueError, match="must match"):
        compare_merges(prediction, np.zeros((10, 10), np.int64), predictor.classes)
    with pytest.raises(ValueError, match="outside"):
        compare_merges(prediction, np.full(rgb.shape[:2], 7), predictor.classes)


# ------------------------------------------------------------------ scales over many images


@pytest.fixture(scope="module")
def shapes_predictor(tmp_path_factory):
    """A sharpened tiny model with ScaleShapes' classes (module-wide: its runs are the slow part)."""
    from segscale.data.scaleshapes import CLASSES, PALETTE

    torch.manual_seed(0)
    config = tiny_config(num_classes=len(CLASSES))
    path = save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "shapes.pt", build_model(config), tiny_metadata(config, CLASSES, PALETTE)
    )
    return _predictor(path)


FIRST = 14  # val 14 and 15 are among the smallest ScaleShapes images (268x467, 283x357): quick to run


@pytest.fixture(scope="module")
def two_images(shapes_predictor):
    return scale_diagnostics(shapes_predictor, "val", 2, merges=("attention", "average", "max"), start=FIRST)


def test_object_table_matches_the_generator_and_the_aggregates_match_the_table(shapes_predictor, two_images):
    from segscale.data.scaleshapes import generate_sample

    d = two_images
    samples = [generate_sample("val", FIRST + k) for k in range(2)]
    visible = [(FIRST + k, o) for k, s in enumerate(samples) for o in s.objects if o.visible_pixels > 0]
    assert [(r.image_index, r.instance_id) for r in d.objects] == [(k, o.instance_id) for k, o in visible]
    assert [r.visible_pixels for r in d.objects] == [o.visible_pixels for _, o in visible]
    assert [r.extent for r in d.objects] == [o.extent for _, o in visible]
    for r in d.objects:
        assert sum(r.weights) == pytest.approx(1.0, abs=1e-5)
        assert r.dominant_scale == d.scales[int(np.argmax(r.weights))]
    # Bin and class means are the means of the table's rows (computed separately from the accumulators).
    for b in range(len(d.bin_edges) - 1):
        rows = [r.weights for r in d.objects if size_bin_index(r.extent) == b]
        assert d.objects_per_bin[b] == len(rows)
        if rows:
            np.testing.assert_allclose(d.weight_by_extent[b], np.mean(rows, axis=0), rtol=1e-9)
        else:
            assert np.isnan(d.weight_by_extent[b]).all()
    for c in range(len(d.classes)):
        rows = [r.weights for r in d.objects if r.class_index == c]
        if rows:
            np.testing.assert_allclose(d.weight_by_class[c], np.mean(rows, axis=0), rtol=1e-9)
    # One object's recall and its image's dominant shares, recomputed here.
    sample = samples[0]
    prediction = shapes_predictor.predict(sample.image, merge="max")
    first = d.objects[0]
    mask = sample.instances == first.instance_id
    assert first.recall[d.merges.index("max")] == pytest.approx(
        np.mean(prediction.labels[mask] == first.class_index), abs=2e-3
    )
    assert d.dominant_share.sum() == pytest.approx(1.0)


def test_the_scoring_pass_is_per_image_and_deterministic(shapes_predictor, two_images):
    """The second image alone gives the rows it has in the two-image run, and a rerun the same report."""
    merges = two_images.merges
    alone = score_scaleshapes(shapes_predictor, "val", 1, merges=merges, start=FIRST + 1)
    assert alone.objects == tuple(r for r in two_images.objects if r.image_index == FIRST + 1)
    assert (alone.split, alone.start, alone.count, alone.merges) == ("val", FIRST + 1, 1, merges)
    assert evaluate_scaleshapes(shapes_predictor, "val", 1, None, merges, start=FIRST + 1) == alone.to_report()


def test_the_scoring_pass_scores_each_merge_as_its_own_prediction_would(shapes_predictor):
    """Scores from the one forward pass match each merge predicted on its own, counted here by hand."""
    from segscale.data.scaleshapes import generate_sample

    scoring = score_scaleshapes(shapes_predictor, "val", 1, merges=("max", "attention", "max"), start=FIRST)
    assert scoring.merges == ("max", "attention")  # repeats dropped, order kept
    sample = generate_sample("val", FIRST)
    for merge, scores, by_size in zip(scoring.merges, scoring.scores(), scoring.by_size):
        labels = shapes_predictor.predict(sample.image, merge=merge).labels
        assert scores.pixel_accuracy == pytest.approx(np.mean(labels == sample.label), abs=2e-3)
        assert scores.pixels == sample.label.size
        assert sum(row["objects"] for row in by_size.rows()) == len(scoring.objects)
    attention = scoring.attention_by_size
    assert attention is not None and attention.dominant_pixels.sum() == sample.label.size
    assert attention.counts.sum() == len(scoring.objects)
    np.testing.assert_allclose(
        attention.sums.sum(axis=0), np.sum([r.weights for r in scoring.objects], axis=0), rtol=1e-9
    )


def test_evaluate_and_diagnose_report_one_pass(shapes_predictor, two_images):
    """Both reports are views of one ScaleShapesScoring, not two loops."""
    from segscale.diagnostics.scales import ScaleDiagnostics

    scoring = score_scaleshapes(shapes_predictor, "val", 2, merges=two_images.merges, start=FIRST)
    report, tables = scoring.to_report(), ScaleDiagnostics.from_scoring(scoring)
    assert tables.to_csv() == two_images.to_csv()
    assert report["images"] == tables.count == 2 and report["scales"] == list(tables.scales)
    for merge in tables.merges:
        assert report["merges"][merge]["miou"] == tables.miou(merge)
    assert [row["objects"] for row in report["attention_by_size"]] == tables.objects_per_bin.tolist()
    without = score_scaleshapes(shapes_predictor, "val", 1, merges=("average",), start=FIRST)
    assert without.attention_by_size is None and "attention_by_size" not in without.to_report()
    assert all(r.weights is None and r.dominant_scale is None for r in without.objects)


def test_csv_json_and_pickle(two_images):
    rows = list(csv.DictReader(io.StringIO(two_images.to_csv())))
    assert len(rows) == len(two_images.objects)
    assert set(rows[0]) >= {
        "image_index",
        "class",
        "extent_px",
        "visible_pixels",
        "weight_s1",
        "weight_s0.5",
        "dominant_scale",
        "recall_max",
    }
    assert float(rows[0]["weight_s0.75"]) == pytest.approx(two_images.objects[0].weights[1], abs=1e-6)
    data = json.loads(json.dumps(two_images.to_dict()))
    assert data["images"] == 2 and data["start"] == FIRST and set(data["merges"]) == {"attention", "average", "max"}
    assert sum(data["dominant_share"].values()) == pytest.approx(1.0)
    again = pickle.loads(pickle.dumps(two_images))
    assert again.to_csv() == two_images.to_csv()


def test_scale_diagnostics_without_attention_head(make_checkpoint):
    from segscale import plots

    predictor = _predictor(make_checkpoint(scaleshapes=True, merge="average"))
    d = scale_diagnostics(predictor, "val", 1, start=8)  # val 8: the smallest image of the first 40
    assert d.merges == ("average", "max") and not d.has_attention
    assert d.weight_by_extent is None and d.dominant_share is None and all(r.weights is None for r in d.objects)
    # No weights to draw, but what each scale decides needs none.
    assert set(plots.diagnostics_figures(d)) == {"miou_by_merge", "decided_by_extent"}
    with pytest.raises(ValueError, match="no attention weights"):
        plots.weight_by_extent_figure(d)
    assert "weight_s1" in d.to_csv().splitlines()[0] and d.to_dict()["weight_by_extent"] is None
    with pytest.raises(ValueError, match="no attention head"):
        scale_diagnostics(predictor, "val", 1, merges=("attention",), start=8)


def test_scale_diagnostics_refuse_other_classes_and_bad_counts(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu")
    with pytest.raises(ValueError, match="ScaleShapes"):
        scale_diagnostics(predictor, "val", 1)
    shapes = Predictor.from_checkpoint(make_checkpoint(scaleshapes=True), device="cpu")
    with pytest.raises(ValueError, match="count"):
        scale_diagnostics(shapes, "val", 0)
    with pytest.raises(ValueError, match="unknown merge"):
        scale_diagnostics(shapes, "val", 1, merges=("median",))


def test_image_set_diagnostics(make_checkpoint, rgb):
    from segscale.modeling.geometry import resize_bilinear

    predictor = _predictor(make_checkpoint())
    other = np.random.default_rng(9).integers(0, 256, size=(33, 20, 3), dtype=np.uint8)
    result = image_diagnostics(predictor, [rgb, other], ["a.png", "b.jpg"])
    for record, image in zip(result.images, (rgb, other)):
        prediction = predictor.predict(image)
        up = resize_bilinear(torch.from_numpy(prediction.attention)[None].double(), image.shape[:2])[0].numpy()
        np.testing.assert_allclose(record.mean_weights, up.mean(axis=(1, 2)), rtol=1e-5)
        np.testing.assert_allclose(
            record.dominant_share, np.bincount(up.argmax(0).ravel(), minlength=3) / up[0].size, atol=2e-3
        )
        assert record.mean_entropy_bits == pytest.approx(np.mean(-(up * np.log2(up)).sum(0)), rel=1e-4)
    assert result.max_entropy_bits == pytest.approx(math.log2(3))
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["image"] for r in rows] == ["a.png", "b.jpg"]
    json.dumps(result.to_dict())
    assert result.merge == "attention" and "attention weights" in result.to_text()
    with pytest.raises(ValueError, match="neither an attention head nor a gate head"):
        image_diagnostics(_predictor(make_checkpoint(merge="max")), [rgb])


def test_image_set_diagnostics_of_a_hierarchical_model_summarise_its_effective_weights(make_checkpoint, rgb):
    predictor = _predictor(make_checkpoint("gates.pt", merge="hierarchical", scales=(1.0, 0.5)))
    result = image_diagnostics(predictor, [rgb], ["a.png"])
    prediction = predictor.predict(rgb, merge="hierarchical")
    assert result.merge == "hierarchical" and result.to_dict()["merge"] == "hierarchical"
    assert "hierarchical weights" in result.to_text().splitlines()[0]
    np.testing.assert_allclose(sum(result.images[0].mean_weights), 1.0, atol=1e-5)  # effective weights sum to 1
    # The weights are the prediction's effective weights (upsampled), not average pooling's 1/S.
    assert result.images[0].mean_weights[0] == pytest.approx(float(prediction.attention[0].mean()), abs=0.02)


def test_figures(two_images, make_checkpoint, rgb):
    from matplotlib.text import Text

    from segscale import plots
    from segscale import visualize as viz

    figures = plots.diagnostics_figures(two_images)
    assert set(figures) == {
        "miou_by_merge",
        "weight_by_extent",
        "weight_by_class",
        "dominant_share",
        "decided_by_extent",
    }
    axes = figures["weight_by_extent"].axes[0]
    assert axes.get_xscale() == "log"
    assert [line.get_label() for line in axes.get_lines()][:3] == ["s = 1", "s = 0.75", "s = 0.5"]
    assert len(axes.collections) == 3  # one scatter of objects per scale
    assert axes.get_ylim() == (0, 1)
    low, high = plots.weight_by_extent_figure(two_images, zoom=True).axes[0].get_ylim()
    means = two_images.weight_by_extent[~np.isnan(two_images.weight_by_extent)]
    assert 0 <= low <= means.min() and means.max() <= high <= 1 and (low, high) != (0, 1)
    bars = figures["miou_by_merge"].axes[0].patches
    assert [b.get_height() for b in bars[:3]] == pytest.approx([s.miou for s in two_images.scores])
    assert plots.figure_png(figures["dominant_share"]).startswith(b"\x89PNG")
    texts = [text.get_text() for figure in figures.values() for text in figure.findobj(Text)]
    assert not [
        text for text in texts if "^" in "".join(text.split("$")[::2])
    ]  # w^s as mathtext, never a literal caret
    assert axes.get_ylabel() == "mean attention weight $w^s$" and "the attention trusts" in axes.get_title()

    predictor = _predictor(make_checkpoint())
    prediction = predictor.predict(rgb)
    comparison = compare_merges(prediction, np.zeros(rgb.shape[:2], np.int64), predictor.classes)
    figure = plots.merge_comparison_figure(comparison, prediction.image, predictor.palette)
    assert len(figure.axes) == 10  # image, 3 labels, disagreement; truth, 3 error maps, a blank
    colours = colorize_labels(np.array([[0, 1], [2, 255]]), predictor.palette)
    assert colours[1, 1].tolist() == [255, 255, 255] and colours[0, 1].tolist() == list(predictor.palette[1])
    errors = viz.error_image(np.array([[True, False], [False, True]]), np.array([[1, 1], [0, 255]]))
    assert errors[0, 0].tolist() == list(viz.WRONG_COLOUR) and errors[0, 1].tolist() == list(viz.RIGHT_COLOUR)
    assert errors[1, 1].tolist() == list(viz.IGNORED_COLOUR)  # "ignore" wins over a flagged error
    zoom = viz.pixel_zoom(rgb, 0, 0, (0, 0, 3, 3), radius=4, factor=3)
    assert zoom.shape == (27, 27, 3) and (zoom[:12, :12] == 128).all()  # beyond the image corner: grey padding
    assert (zoom[12:24, 12] == viz.MARK_COLOUR).all()  # the cell's outline starts at the pixel


def test_figures_of_a_hierarchical_model_name_its_weights_effective_weights(make_checkpoint):
    from dataclasses import replace

    from segscale import plots

    predictor = _predictor(make_checkpoint("gates.pt", merge="hierarchical", scaleshapes=True, scales=(1.0, 0.5)))
    diagnostics = scale_diagnostics(predictor, "val", 1, merges=("hierarchical", "average"), start=FIRST)
    axes = plots.weight_by_extent_figure(diagnostics).axes[0]
    assert axes.get_ylabel() == "mean effective weight $w^s$ (gates)" and "the gates trust" in axes.get_title()
    assert plots.weight_by_class_figure(diagnostics).axes[0].get_ylabel() == "mean effective weight $w^s$ (gates)"
    # The same numbers read as a softmax's when attention is among the merges.
    assert (
        plots.weight_by_extent_figure(replace(diagnostics, merges=("attention",))).axes[0].get_ylabel()
        == "mean attention weight $w^s$"
    )


@pytest.mark.parametrize("scores", [(0.97, 0.96, 0.95), (0.2, 0.5, 1.0)])
def test_the_legend_of_a_bar_chart_covers_no_bar_and_no_value_label(scores):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from segscale import plots

    figure = plots.merge_scores_figure(["attention", "average", "max"], [0.75, 0.74, 0.76], list(scores))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent(renderer)
    covered = [
        artist
        for artist in list(axes.patches) + list(axes.texts)
        if artist.get_window_extent(renderer).overlaps(legend)
    ]
    assert not covered, f"the legend covers {covered}"
    assert max(axes.get_yticks()) <= 1.0  # scores are 0-1; the headroom carries no tick


@pytest.mark.parametrize("head", ["shared", "paper", None])
def test_the_model_diagram_names_each_scale_and_the_fusion(head):
    from segscale import plots

    figure = plots.model_diagram_figure((1.0, 0.75, 0.5), head)
    text = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert all(f"s = {s:g}" in text for s in (1.0, 0.75, 0.5))
    assert ("Eq. 2" in text) == (head is not None) and ("max over s" in text) == (head is None)
    assert plots.figure_png(figure).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "trunk, name", [("vgg16_largefov", "DeepLab\nLargeFOV"), ("lraspp_mobilenet_v3_large", "LR-ASPP\nMobileNetV3")]
)
def test_the_model_diagram_names_the_share_net_it_draws(trunk, name):
    from segscale import plots
    from segscale.config import TORCHVISION_TRUNKS

    assert set(TORCHVISION_TRUNKS) <= set(plots.SHARE_NET_NAMES), "every trunk kind needs a name in the diagram"
    text = " ".join(t.get_text() for t in plots.model_diagram_figure((1.0, 0.5), None, trunk=trunk).axes[0].texts)
    assert name in text and all(other not in text for other in plots.SHARE_NET_NAMES.values() if other != name)
