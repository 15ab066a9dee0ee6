"""What each scale decides: leave one scale out (every merge) against float64 references, max pooling's
deciding scale, per-scale confidence, and the Prediction methods that expose them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from segscale.diagnostics import ablation, image_labels
from segscale.modeling import build_model, fusion
from segscale.modeling.geometry import resize_bilinear
from segscale.predictor import Predictor

from .conftest import tiny_config, tiny_metadata

C, GRID, SIZE = 5, (6, 7), (21, 25)


def fake_prediction(scales, merge="attention", seed=0, *, gates=False):
    generator = np.random.default_rng(seed)
    count = len(scales)
    return SimpleNamespace(
        scales=tuple(scales),
        merge=merge,
        score_maps=(generator.normal(size=(count, C, *GRID)) * 3).astype(np.float32),
        attention_logits=(generator.normal(size=(count, *GRID)) * 2).astype(np.float32),
        gate_logits=(generator.normal(size=(count, *GRID)) * 2).astype(np.float32) if gates else None,
        labels=np.zeros(SIZE, np.int64),
    )


def labels64(fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, h, w) float64 -> labels (H, W) and the top-two margin, upsampled like the model does."""
    up = resize_bilinear(torch.from_numpy(fused)[None], SIZE)[0].numpy()
    ordered = np.sort(up, axis=0)
    return up.argmax(axis=0), ordered[-1] - ordered[-2]


def reference_fused(p, keep, merge, direction=1):
    """Float64 numpy: each merge over the scales in ``keep``, written out independently of fusion.py."""
    scores = p.score_maps[keep].astype(np.float64)
    if merge == "attention":
        logits = p.attention_logits[keep].astype(np.float64)
        weights = np.exp(logits - logits.max(axis=0))
        weights /= weights.sum(axis=0)
        return (weights[:, None] * scores).sum(axis=0)
    if merge == "average":
        return scores.mean(axis=0)
    if merge == "max":
        return scores.max(axis=0)
    # hierarchical: start from one end of the sorted scales, each next scale's gate weighs it against the rest
    scales = np.asarray(p.scales)[keep]
    gates = 1.0 / (1.0 + np.exp(-p.gate_logits[keep].astype(np.float64)))
    order = np.argsort(scales)[::direction]
    running = scores[order[0]]
    for k in order[1:]:
        running = gates[k][None] * scores[k] + (1 - gates[k][None]) * running
    return running


def assert_matches(result, p, merge, direction=1):
    everything = list(range(len(p.scales)))
    expected, margin = labels64(reference_fused(p, everything, merge, direction))
    clear = margin > 1e-4
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(result.labels[clear], expected[clear])
    for s in everything:
        expected, margin = labels64(reference_fused(p, [k for k in everything if k != s], merge, direction))
        clear = margin > 1e-4
        np.testing.assert_array_equal(result.without[s][clear], expected[clear])
        np.testing.assert_array_equal(result.changed[s], result.without[s] != result.labels)


@pytest.mark.parametrize("merge", ["attention", "average", "max"])
@pytest.mark.parametrize("scales", [(1.0, 0.75, 0.5), (1.0, 0.5, 0.25, 0.75, 1.5)])
def test_leave_one_out_matches_a_float64_reference(merge, scales):
    p = fake_prediction(scales, merge)
    result = ablation.scale_ablation(p)
    assert result.without.shape == (len(scales), *SIZE)
    assert_matches(result, p, merge)
    assert max(result.shares) > 0  # random maps: some scale decides something


def chain_direction(p) -> int:
    """Which end the installed chain starts from: +1 coarsest first, -1 finest first."""
    fused, _ = fusion.hierarchical_chain(
        torch.from_numpy(p.score_maps.astype(np.float64))[None],
        torch.from_numpy(p.gate_logits.astype(np.float64))[None],
        p.scales,
    )
    for direction in (1, -1):
        if np.allclose(fused[0].numpy(), reference_fused(p, list(range(len(p.scales))), "hierarchical", direction)):
            return direction
    raise AssertionError("the chain matches neither direction of the reference")


def test_hierarchical_leaves_the_scale_out_of_the_chain_in_whatever_direction_it_runs(monkeypatch):
    p = fake_prediction((1.0, 0.5, 2.0, 0.75), "hierarchical", seed=3, gates=True)
    direction = chain_direction(p)
    assert_matches(ablation.scale_ablation(p), p, "hierarchical", direction)
    # Run the chain the other way (reciprocal scales reverse its order): the leave-one-out follows it,
    # because it calls the chain rather than writing its own.
    original = fusion.hierarchical_chain
    monkeypatch.setattr(fusion, "hierarchical_chain", lambda m, g, s: original(m, g, [1.0 / v for v in s]))
    assert_matches(ablation.scale_ablation(p), p, "hierarchical", -direction)


def test_two_scales_without_one_is_the_other_scales_own_labels():
    p = fake_prediction((1.0, 0.5), seed=5)
    result = ablation.scale_ablation(p)
    for s, other in ((0, 1), (1, 0)):
        expected = resize_bilinear(torch.from_numpy(p.score_maps[other])[None], SIZE)[0].argmax(dim=0).numpy()
        np.testing.assert_array_equal(result.without[s], expected)


def test_one_scale_has_nothing_to_leave_out():
    with pytest.raises(ValueError, match="nothing to leave out"):
        ablation.scale_ablation(fake_prediction((1.0,)))


def test_a_merge_without_its_logits_is_refused_by_name():
    p = fake_prediction((1.0, 0.5), "average")
    p.attention_logits = None
    with pytest.raises(ValueError, match="use one of: average, max"):
        ablation.scale_ablation(p, "attention")


def test_decision_map_shares_add_up_to_the_pixels_any_one_scale_decides():
    result = ablation.scale_ablation(fake_prediction((1.0, 0.75, 0.5), seed=7))
    decision = result.decision_map
    assert sum(result.sole_shares) <= result.any_share + 1e-12
    assert sum(result.sole_shares) + result.several_share == pytest.approx(result.any_share)
    count = result.changed.sum(axis=0)
    np.testing.assert_array_equal(decision == ablation.NO_SCALE, count == 0)
    np.testing.assert_array_equal(decision == ablation.SEVERAL_SCALES, count > 1)
    alone = count == 1
    np.testing.assert_array_equal(result.changed[decision[alone], alone], True)
    assert result.sole_shares == pytest.approx(tuple((decision == k).mean() for k in range(3)))
    assert result.several_share == pytest.approx((decision == ablation.SEVERAL_SCALES).mean())
    assert result.shares == pytest.approx(tuple(result.changed.mean(axis=(1, 2))))
    for k, row in enumerate(result.rows([f"c{c}" for c in range(C)])):
        values, counts = np.unique(result.without[k][result.changed[k]], return_counts=True)
        assert row["most common label without it"] == f"c{values[counts.argmax()]}"
    assert "any one scale decides" in result.to_text()
    assert result.to_dict()["any_share"] == result.any_share


def test_max_deciding_scale_is_where_the_winning_class_score_came_from():
    p = fake_prediction((1.0, 0.75, 0.5), seed=11)
    deciding = ablation.max_deciding_scale(p.score_maps)
    for i in range(GRID[0]):
        for j in range(GRID[1]):
            cell = p.score_maps[:, :, i, j].astype(np.float64)  # (S, C)
            winner = cell.max(axis=0).argmax()
            assert deciding[i, j] == cell[:, winner].argmax()
    weights = ablation.max_deciding_weights(p.score_maps)
    np.testing.assert_array_equal(weights.sum(axis=0), 1.0)
    fused = (weights[:, None] * p.score_maps).sum(axis=0)  # Eq. 1 with the one-hot weights
    winner = p.score_maps.max(axis=0).argmax(axis=0)
    np.testing.assert_array_equal(
        np.take_along_axis(fused, winner[None], 0), np.take_along_axis(p.score_maps.max(axis=0), winner[None], 0)
    )


def test_scale_confidence_against_an_explicit_softmax():
    p = fake_prediction((1.0, 0.75, 0.5), seed=13)
    result = ablation.scale_confidence(p.score_maps, p.scales)
    scores = p.score_maps.astype(np.float64)
    probabilities = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.top_probability, probabilities.max(axis=1), rtol=1e-6)
    own = scores.argmax(axis=1)
    agree = (own == own[0]).all(axis=0)
    np.testing.assert_array_equal(result.disagree, ~agree)
    np.testing.assert_array_equal(result.most_confident[agree], ablation.NO_SCALE)
    np.testing.assert_array_equal(result.most_confident[~agree], probabilities.max(axis=1).argmax(axis=0)[~agree])
    assert 0 < result.disagree_share < 1
    assert sum(result.most_confident_shares) == pytest.approx(result.disagree_share)
    with pytest.raises(ValueError, match="2 scales for 3 score maps"):
        ablation.scale_confidence(p.score_maps, (1.0, 0.5))


def test_prediction_exposes_the_views():
    torch.manual_seed(0)
    config = tiny_config()
    predictor = Predictor(build_model(config), tiny_metadata(config), device="cpu")
    image = (np.random.default_rng(0).random((37, 45, 3)) * 255).astype(np.uint8)
    prediction = predictor.predict(image, scales=(1.0, 0.75, 0.5), merge="attention")
    result = prediction.scale_ablation()
    assert result.merge == "attention" and result.without.shape == (3, 37, 45)
    # The label with every scale, recomputed from the score maps, is the prediction's own.
    assert (result.labels == prediction.labels).mean() > 0.999
    assert prediction.scale_ablation("max").merge == "max"
    assert prediction.max_deciding_scale().shape == prediction.grid
    assert prediction.scale_confidence().top_probability.shape == (3, *prediction.grid)
    single = predictor.predict(image, scales=(1.0,), merge="average")
    with pytest.raises(ValueError, match="nothing to leave out"):
        single.scale_ablation()


def test_predict_writes_the_ablation_figure_and_its_shares(make_checkpoint, tmp_path, capsys):
    from PIL import Image

    from segscale.cli import main

    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(1).random((40, 52, 3)) * 255).astype(np.uint8)).save(photo)
    checkpoint = str(make_checkpoint())
    out = tmp_path / "out"
    args = ["predict", str(photo), "--checkpoint", checkpoint, "--merge", "average", "--out", str(out)]
    assert main([*args, "--scales", "1", "0.75", "0.5", "--outputs", "ablation"]) == 0
    assert [p.name for p in out.iterdir()] == ["photo_average_1-0.75-0.5_ablation.png"]
    assert Image.open(out / "photo_average_1-0.75-0.5_ablation.png").format == "PNG"
    printed = capsys.readouterr().out
    assert "leave one scale out (average, scales {1, 0.75, 0.5})" in printed and "any one scale decides" in printed
    with pytest.raises(SystemExit) as refused:
        main([*args, "--scales", "1", "--outputs", "ablation"])
    assert refused.value.code == 2
    assert "nothing to leave out" in capsys.readouterr().err
    assert not (out / "photo_average_1_ablation.png").exists()


def test_diagnose_tabulates_what_each_scale_decides_by_size_and_the_miou_without_it(make_checkpoint, tmp_path, capsys):
    from segscale.cli import main
    from segscale.data.scaleshapes import generate_sample
    from segscale.diagnostics import scale_diagnostics
    from segscale.evaluation import SIZE_BIN_EDGES, size_bin_index
    from segscale.metrics import ConfusionMatrix

    checkpoint = make_checkpoint(scaleshapes=True)
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    scales = (1.0, 0.75, 0.5)
    result = scale_diagnostics(predictor, "val", 2, scales, ("attention", "average"), start=14)
    assert result.ablation_merge == "attention"
    # The same sums, image by image, from the Prediction API.
    changed, pixels = np.zeros(3), 0
    decided, object_pixels = np.zeros((len(SIZE_BIN_EDGES) - 1, 3)), np.zeros(len(SIZE_BIN_EDGES) - 1)
    matrices = [ConfusionMatrix(len(predictor.classes)) for _ in scales]
    for index in (14, 15):
        sample = generate_sample("val", index)
        ablated = predictor.predict(sample.image, scales=scales, merge="attention").scale_ablation()
        changed += ablated.changed.reshape(3, -1).sum(axis=1)
        pixels += sample.label.size
        for k in range(3):
            matrices[k].update(sample.label, ablated.without[k])
        for obj in sample.objects:
            visible = sample.instances == obj.instance_id
            b = size_bin_index(obj.extent)
            object_pixels[b] += visible.sum()
            decided[b] += ablated.changed[:, visible].sum(axis=1)
    np.testing.assert_allclose(result.decided_share, changed / pixels)
    np.testing.assert_allclose(result.miou_without, [m.scores().miou for m in matrices])
    full = object_pixels > 0
    np.testing.assert_allclose(result.decided_by_extent[full], decided[full] / object_pixels[full, None])
    assert np.isnan(result.decided_by_extent[~full]).all()
    assert result.to_dict()["leave_one_scale_out"]["per_scale"][0]["scale"] == 1.0

    out = tmp_path / "diag"
    args = ["diagnose", "--count", "1", "--checkpoint", str(checkpoint), "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(out), "--scales", "1", "0.5"]) == 0
    assert "leave one scale out (attention)" in capsys.readouterr().out
    assert (out / "decided_by_extent.png").read_bytes().startswith(b"\x89PNG")
    assert main([*args, "--scales", "1"]) == 0
    assert "nothing to leave out" in capsys.readouterr().out


def test_compare_writes_and_prints_max_poolings_deciding_scale(make_checkpoint, tmp_path, capsys):
    from PIL import Image

    from segscale.cli import main
    from segscale.palette import scale_colour

    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(2).random((40, 48, 3)) * 255).astype(np.uint8)).save(photo)
    checkpoint = make_checkpoint(merge="max")
    out = tmp_path / "out"
    args = ["compare", str(photo), "--checkpoint", str(checkpoint), "--device", "cpu", "--scales", "1", "0.75", "0.5"]
    assert main([*args, "--out", str(out)]) == 0
    assert "max pooling's deciding scale" in capsys.readouterr().out
    written = Image.open(out / "photo_max_deciding_scale.png")
    assert written.mode == "P" and written.size == (48, 40)
    assert written.getpalette()[:9] == [v for k in range(3) for v in scale_colour(k)]
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    prediction = predictor.predict(np.asarray(Image.open(photo)), scales=(1.0, 0.75, 0.5), merge="max")
    grid = prediction.max_deciding_scale()
    indices = np.asarray(written)
    assert set(np.unique(indices)) <= {0, 1, 2}
    # Nearest-cell upsampling keeps each cell's index: the grid's corners are the image's corners.
    assert indices[0, 0] == grid[0, 0] and indices[-1, -1] == grid[-1, -1]
    assert main([*args, "--json"]) == 0
    shares = __import__("json").loads(capsys.readouterr().out)["max_deciding_scale_share"]
    assert sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("merge", ["attention", "max"])
def test_the_label_without_each_scale_at_a_pixel_is_the_ablation_maps_label_there(merge):
    p = fake_prediction((1.0, 0.75, 0.5), merge, seed=17)
    whole = ablation.scale_ablation(p)
    for row, col in ((0, 0), (10, 13), (20, 24), (7, 3)):
        at = ablation.pixel_without(p, row, col, merges=(merge,))
        assert at.labels[merge] == whole.labels[row, col]
        assert at.without[merge] == tuple(int(w[row, col]) for w in whole.without)
        changed = {s for s, c in zip(p.scales, whole.changed[:, row, col]) if c}
        assert set(at.deciding_scales(merge)) == changed
    rows = at.rows([f"c{k}" for k in range(C)])
    assert [r["scale"] for r in rows] == [1.0, 0.75, 0.5] and f"{merge} without it" in rows[0]


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("grid, size", [((6, 7), (21, 25)), ((1, 5), (3, 40)), ((4, 4), (4, 4)), ((9, 8), (65, 57))])
def test_labels_between_cells_are_those_of_the_full_upsampling(grid, size, align_corners):
    # Either resize convention: segscale's own trunk aligns corners, torchvision's and the libraries' do not.
    # Smooth maps with large regions of one class, as a network's are, and noisy ones.
    generator = np.random.default_rng(sum(grid) + sum(size))
    for scores in (generator.normal(size=(C, *grid)) * 3, np.cumsum(generator.normal(size=(C, *grid)), axis=1)):
        fused = torch.from_numpy(scores.astype(np.float32))[None]
        full = resize_bilinear(fused.double(), size, align_corners)[0].numpy()
        ordered = np.sort(full, axis=0)
        clear = ordered[-1] - ordered[-2] > 1e-6
        got = image_labels.labels_at_image(fused, size, align_corners)
        assert got.shape == size and clear.mean() > 0.95
        np.testing.assert_array_equal(got[clear], full.argmax(axis=0)[clear])


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("classes", [6, 300])
def test_leave_one_out_on_smooth_maps_matches_the_full_upsampling(align_corners, classes):
    # Maps with regions of one label, as a network's are: most 4-cell blocks share their winner with and
    # without a scale, the path that copies the labels of every scale instead of working them out again.
    generator = np.random.default_rng(classes + align_corners)
    grid, size, scales = (16, 18), (70, 75), (1.0, 0.75, 0.5)
    noise = generator.normal(size=(len(scales) + 1, classes, *grid))
    smooth = np.cumsum(np.cumsum(noise, axis=2), axis=3) * 0.4
    smooth = smooth[:1] + 0.3 * smooth[1:]  # the scales mostly agree, as a network's do
    p = SimpleNamespace(
        scales=scales,
        merge="attention",
        score_maps=smooth.astype(np.float32),
        attention_logits=(np.cumsum(generator.normal(size=(len(scales), *grid)), axis=1)).astype(np.float32),
        gate_logits=None,
        labels=np.zeros(size, np.int64),
        align_corners=align_corners,
    )
    everything = [0, 1, 2]
    for merge in ("attention", "average", "max"):
        result = ablation.scale_ablation(p, merge)
        assert result.without.dtype == result.labels.dtype == (np.uint8 if classes <= 256 else np.int64)
        assert 0 < result.changed.mean() < 0.5  # some pixels change, most do not: both paths run
        for keep, got in [(everything, result.labels)] + [
            ([k for k in everything if k != s], result.without[s]) for s in everything
        ]:
            fused = torch.from_numpy(reference_fused(p, keep, merge))[None]
            full = resize_bilinear(fused, size, align_corners)[0].numpy()
            ordered = np.sort(full, axis=0)
            clear = ordered[-1] - ordered[-2] > 1e-6
            assert clear.mean() > 0.95
            np.testing.assert_array_equal(got[clear], full.argmax(axis=0)[clear])
        np.testing.assert_array_equal(result.changed, result.without != result.labels[None])


def test_the_argmax_over_rows_is_numpys_argmax_ties_included():
    values = np.random.default_rng(3).integers(0, 4, size=(7, 500)).astype(np.float64)  # many ties
    np.testing.assert_array_equal(image_labels.argmax_over_rows(values), values.argmax(axis=0))
    np.testing.assert_array_equal(image_labels.argmax_over_rows(values[:1]), np.zeros(500, np.int64))


def test_the_main_views_pictures_follow_the_ablation(make_checkpoint):
    from segscale.ablation_view import build_ablation_view
    from segscale.modeling.geometry import resize_labels
    from segscale.palette import scale_colour

    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu")
    image = (np.random.default_rng(4).random((50, 64, 3)) * 255).astype(np.uint8)
    prediction = predictor.predict(image, scales=(1.0, 0.75, 0.5), merge="attention")
    view = build_ablation_view(prediction, predictor.palette, width=80)
    ablation = prediction.scale_ablation()
    assert view.size == (62, 80) and len(view.without) == 3 and view.shares == ablation.shares
    changed = resize_labels(torch.from_numpy(ablation.changed), view.size).numpy()
    without = resize_labels(torch.from_numpy(ablation.without), view.size).numpy()
    palette = np.asarray(predictor.palette, np.uint8)
    for k in range(3):  # full palette colour exactly where the label changes
        np.testing.assert_array_equal(view.without[k][changed[k]], palette[without[k][changed[k]]])
    decision = resize_labels(torch.from_numpy(ablation.decision_map)[None], view.size)[0].numpy()
    for k in range(3):
        mine = decision == k
        np.testing.assert_array_equal(view.decision[mine], np.broadcast_to(scale_colour(k), (mine.sum(), 3)))
    single = build_ablation_view(predictor.predict(image, scales=(1.0,), merge="average"), predictor.palette, width=80)
    assert single.without is None and single.decision is None and len(single.confidence) == 1


@pytest.mark.parametrize("align_corners", [True, False])
def test_the_views_resize_with_the_models_convention(align_corners):
    """segscale's own trunk aligns corners; torchvision's and the libraries' do not. The all-scales labels the
    views compare against are the prediction's own labels, upsampled with the model's convention."""
    p = fake_prediction((1.0, 0.5), merge="average", seed=3)
    p.align_corners = align_corners
    fused = torch.from_numpy(p.score_maps.astype(np.float64).mean(axis=0))[None]
    own = resize_bilinear(fused, SIZE, align_corners)[0].numpy()
    other = resize_bilinear(fused, SIZE, not align_corners)[0].numpy()
    ordered = np.sort(own, axis=0)
    clear = ordered[-1] - ordered[-2] > 1e-6
    labels = ablation.scale_ablation(p).labels
    np.testing.assert_array_equal(labels[clear], own.argmax(axis=0)[clear])
    assert (labels != other.argmax(axis=0)).any()  # the two conventions differ on this map


def test_a_torchvision_prediction_carries_its_trunks_convention():
    from segscale.checkpoint import CheckpointMetadata
    from segscale.inference import FastPathOptions
    from segscale.modeling.torchvision_trunks import build_torchvision_model
    from segscale.predictor import Predictor
    from segscale.torchvision_import import imported_model

    reference = build_torchvision_model("lraspp_mobilenet_v3_large", 21).eval()
    model = imported_model("lraspp_mobilenet_v3_large", reference.state_dict(), scales=(1.0, 0.5))
    metadata = CheckpointMetadata(
        model=model.config, classes=tuple(f"c{k}" for k in range(21)), palette=((0, 0, 0),) * 21, scale_range=(0.5, 2)
    )
    options = FastPathOptions(autocast="off", fold_batchnorm=False, channels_last=False)
    predictor = Predictor(model, metadata, device="cpu", max_side=None, options=options)
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    assert predictor.predict(image, scales=(1.0, 0.5), merge="average").align_corners is False
    config = tiny_config()
    assert Predictor(build_model(config), tiny_metadata(config)).predict(image).align_corners is True
