"""Tao et al.'s hierarchical attention: the chain of gates against an independent loop, its
effective weights, its limits, and the model and Predictor that offer it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segscale.modeling import build_model
from segscale.modeling.attention_heads import ScaleSetError
from segscale.modeling.fusion import hierarchical_chain, merge_score_maps, weighted_sum_over_scales
from segscale.predictor import Predictor

from .conftest import tiny_config, tiny_metadata

B, C, H, W = 2, 4, 5, 6


def random_inputs(num_scales: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    score_maps = torch.randn(B, num_scales, C, H, W, generator=generator, dtype=torch.float64) * 3
    gate_logits = torch.randn(B, num_scales, H, W, generator=generator, dtype=torch.float64) * 2
    return score_maps, gate_logits


def tao_nscale_loop(score_maps: np.ndarray, gate_logits: np.ndarray, scales) -> np.ndarray:
    """Tao et al.'s recurrence transcribed on its own, pixel by pixel, from their paper and the
    published ``nscale_forward``: the scales sorted high to low ("lower resolution provides
    attention for higher rez predictions, so we evaluate in order: high to low"); the first,
    finest prediction starts the chain; each next, coarser scale's own sigmoid gate weighs it,
    ``pred = attn * p + (1 - attn) * pred``. The finest scale's gate is never read."""
    high_to_low = sorted(range(len(scales)), key=lambda k: scales[k], reverse=True)
    fused = np.empty(score_maps.shape[:1] + score_maps.shape[2:])
    for b in range(score_maps.shape[0]):
        for i in range(score_maps.shape[3]):
            for j in range(score_maps.shape[4]):
                pred = None
                for k in high_to_low:
                    p = score_maps[b, k, :, i, j]
                    if pred is None:
                        pred = p.copy()
                    else:
                        attn = 1.0 / (1.0 + np.exp(-gate_logits[b, k, i, j]))
                        pred = attn * p + (1.0 - attn) * pred
                fused[b, :, i, j] = pred
    return fused


# S = 2 to 5, each in a shuffled order of the S axis, so the chain has to sort them itself.
TAO_SETS = [(1.0, 0.5), (0.5, 1.0), (1.0, 2.0, 0.5), (0.5, 2.0, 0.25, 1.0), (0.75, 2.0, 0.25, 1.5, 0.5)]


@pytest.mark.parametrize("scales", TAO_SETS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("seed", [0, 1])
def test_chain_matches_tao_et_al_recurrence_for_any_axis_order(scales, seed):
    score_maps, gate_logits = random_inputs(len(scales), seed=seed)
    fused, weights = hierarchical_chain(score_maps, gate_logits, scales)
    expected = tao_nscale_loop(score_maps.numpy(), gate_logits.numpy(), scales)
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-12, atol=1e-12)
    # The finest scale's gate is never used: changing it changes nothing.
    finest = int(np.argmax(scales))
    changed = gate_logits.clone()
    changed[:, finest] = torch.randn_like(changed[:, finest]) * 5
    torch.testing.assert_close(hierarchical_chain(score_maps, changed, scales)[0], fused, rtol=0, atol=0)
    # The coarsest scale's effective weight is its own gate (it has the last word).
    coarsest = int(np.argmin(scales))
    torch.testing.assert_close(weights[:, coarsest], torch.sigmoid(gate_logits[:, coarsest]), rtol=0, atol=1e-15)
    # merge_score_maps routes "hierarchical" to the same chain.
    routed, _ = merge_score_maps(score_maps, "hierarchical", gate_logits=gate_logits, scales=scales)
    torch.testing.assert_close(routed, fused)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("axis_order", [(1.0, 0.5), (0.5, 1.0)])
def test_two_scales_are_tao_et_als_two_scale_forward_exactly(dtype, axis_order):
    """joint = attn_05x * pred_05x + (1 - attn_05x) * p_1x, bit for bit."""
    score_maps, gate_logits = (t.to(dtype) for t in random_inputs(2, seed=11))
    low, high = axis_order.index(0.5), axis_order.index(1.0)
    # The sigmoid over the whole (B, S, h, w) tensor, as the chain takes it: torch's vectorised and
    # scalar sigmoid may differ in the last float32 bit, and this test is about the formula.
    a_low = torch.sigmoid(gate_logits)[:, low].unsqueeze(1)
    expected = a_low * score_maps[:, low] + (1 - a_low) * score_maps[:, high]
    fused, _ = hierarchical_chain(score_maps, gate_logits, axis_order)
    torch.testing.assert_close(fused, expected, rtol=0, atol=0)


@pytest.mark.parametrize("scales", TAO_SETS, ids=lambda s: "-".join(map(str, s)))
def test_effective_weights_reproduce_the_fused_map_in_float32(scales):
    score_maps, gate_logits = (t.float() for t in random_inputs(len(scales), seed=7))
    fused, weights = hierarchical_chain(score_maps, gate_logits, scales)
    assert weights.shape == (B, len(scales), H, W) and weights.dtype == torch.float32
    torch.testing.assert_close(weighted_sum_over_scales(score_maps, weights), fused, rtol=1e-5, atol=1e-5)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(B, H, W), rtol=0, atol=1e-6)


def test_effective_weights_are_the_products_of_gates():
    """Written out for {2, 1, 0.5}, finest first: w^0.5 = a^0.5, w^1 = a^1 (1 - a^0.5), w^2 = (1 - a^1)(1 - a^0.5)."""
    scales = (2.0, 0.5, 1.0)
    score_maps, gate_logits = random_inputs(3, seed=3)
    _, weights = hierarchical_chain(score_maps, gate_logits, scales)
    _, a05, a1 = torch.sigmoid(gate_logits).unbind(dim=1)
    torch.testing.assert_close(weights[:, 1], a05)
    torch.testing.assert_close(weights[:, 2], a1 * (1 - a05))
    torch.testing.assert_close(weights[:, 0], (1 - a1) * (1 - a05))


@pytest.mark.parametrize("closed_or_open, expected_scale", [(-torch.inf, 1.0), (torch.inf, 0.5)])
def test_a_closed_coarse_gate_keeps_the_fine_prediction_an_open_one_takes_the_coarse(closed_or_open, expected_scale):
    scales = (1.0, 0.5)
    score_maps, _ = random_inputs(2, seed=5)
    score_maps = score_maps.float()
    gate_logits = torch.full((B, 2, H, W), closed_or_open)  # sigmoid: exactly 0 or exactly 1
    fused, weights = hierarchical_chain(score_maps, gate_logits, scales)
    picked = scales.index(expected_scale)
    torch.testing.assert_close(fused, score_maps[:, picked], rtol=0, atol=0)
    torch.testing.assert_close(weights[:, picked], torch.ones(B, H, W), rtol=0, atol=0)
    torch.testing.assert_close(weights[:, 1 - picked], torch.zeros(B, H, W), rtol=0, atol=0)


def test_one_scale_is_its_own_prediction():
    score_maps, gate_logits = random_inputs(1)
    fused, weights = hierarchical_chain(score_maps, gate_logits, (1.0,))
    torch.testing.assert_close(fused, score_maps[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(weights, torch.ones(B, 1, H, W, dtype=weights.dtype))


def test_chain_errors_name_the_problem():
    score_maps, gate_logits = random_inputs(3)
    with pytest.raises(ValueError, match="needs gate logits"):
        merge_score_maps(score_maps, "hierarchical")
    with pytest.raises(ValueError, match="do not match"):
        hierarchical_chain(score_maps, gate_logits[:, :2], (1.0, 0.5, 0.25))
    with pytest.raises(ValueError, match="2 scales given for 3"):
        hierarchical_chain(score_maps, gate_logits, (1.0, 0.5))


# ----------------------------------------------------------------------------- the model


def test_hierarchical_model_has_a_gate_head_and_no_softmax_head():
    model = build_model(tiny_config(merge="hierarchical"))
    assert model.gate_head is not None and model.attention_head is None
    assert build_model(tiny_config()).gate_head is None


def test_tiny_hierarchical_model_forward_backward_on_an_unseen_scale_set():
    torch.manual_seed(0)
    model = build_model(tiny_config(merge="hierarchical", scales=(1.0, 0.5)))
    images = torch.randn(2, 3, 41, 35)
    for scales in ((1.0, 0.5), (2.0, 1.0, 0.5, 0.25)):  # the trained pair, then a set never trained on
        output = model(images, scales=scales)
        grid = output.grid
        assert output.merge == "hierarchical" and output.scales == scales
        assert output.gate_logits.shape == (2, len(scales), *grid) and output.attention_logits is None
        torch.testing.assert_close(output.attention.sum(dim=1), torch.ones(2, *grid), rtol=0, atol=1e-6)
        torch.testing.assert_close(
            weighted_sum_over_scales(output.score_maps, output.attention), output.fused, rtol=1e-5, atol=1e-5
        )
    model.zero_grad()
    output.fused.square().mean().backward()
    for part in (model.gate_head, model.trunk, model.score_head):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_models_without_the_gate_head_refuse_hierarchical():
    model = build_model(tiny_config())
    with pytest.raises(ScaleSetError, match="no gate head"):
        model(torch.randn(1, 3, 24, 24), merge="hierarchical")
    # ... and the hierarchical model refuses Chen's softmax, which needs the other head.
    with pytest.raises(ScaleSetError, match="no attention head"):
        build_model(tiny_config(merge="hierarchical"))(torch.randn(1, 3, 24, 24), merge="attention")


# ----------------------------------------------------------------------------- the Predictor


def _predictor(**config_kwargs) -> Predictor:
    torch.manual_seed(0)
    config = tiny_config(**config_kwargs)
    return Predictor(build_model(config), tiny_metadata(config), device="cpu")


def test_predictor_offers_hierarchical_only_with_the_gate_head():
    gated = _predictor(merge="hierarchical")
    assert gated.has_gate_head and not gated.has_attention_head
    assert gated.offered_merges == ("average", "max", "hierarchical")
    chen = _predictor()
    assert chen.has_attention_head and not chen.has_gate_head
    assert chen.offered_merges == ("attention", "average", "max")
    headless = _predictor(merge="average")
    assert headless.offered_merges == ("average", "max")
    for predictor in (chen, headless):
        assert not predictor.accepts_scales((1.0, 0.5), "hierarchical")
        with pytest.raises(ValueError, match="no gate head for hierarchical attention.*use one of"):
            predictor.check_request((1.0, 0.5), "hierarchical")
    with pytest.raises(ValueError, match="no attention head"):
        gated.check_request((1.0, 0.5), "attention")


def test_predictor_predicts_hierarchical_on_any_scale_set():
    predictor = _predictor(merge="hierarchical", scales=(1.0, 0.5))
    rgb = np.random.default_rng(0).integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    prediction = predictor.predict(rgb, scales=(2.0, 1.0, 0.5), merge="hierarchical")
    assert prediction.merge == "hierarchical" and prediction.attention_logits is None
    assert prediction.gate_logits.shape == prediction.attention.shape == (3, *prediction.grid)
    np.testing.assert_allclose(prediction.attention.sum(axis=0), 1.0, atol=1e-6)
    fused = np.einsum("shw,schw->chw", prediction.attention, prediction.score_maps)
    np.testing.assert_allclose(fused, prediction.fused, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- the command line


def test_every_command_twin_accepts_merge_hierarchical(make_checkpoint, tmp_path, capsys):
    """predict, inspect, compare, evaluate and diagnose run a hierarchical checkpoint with --merge hierarchical."""
    from PIL import Image

    from segscale.cli import main

    checkpoint = str(make_checkpoint("gated.pt", scaleshapes=True, merge="hierarchical", scales=(1.0, 0.5)))
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)).save(photo)
    common = ["--checkpoint", checkpoint, "--device", "cpu"]
    runs = {
        "predict": [
            "predict",
            str(photo),
            "--out",
            str(tmp_path / "p"),
            "--merge",
            "hierarchical",
            "--scales",
            "2",
            "1",
            "0.5",
        ],
        "inspect": ["inspect", str(photo), "--pixel", "5", "7", "--merge", "hierarchical", "--json"],
        "compare": ["compare", str(photo), "--out", str(tmp_path / "c")],
        "evaluate": ["evaluate", "--count", "1", "--merge", "hierarchical", "average", "--quiet"],
        "diagnose": [
            "diagnose",
            "--count",
            "1",
            "--merge",
            "hierarchical",
            "max",
            "--out",
            str(tmp_path / "d"),
            "--quiet",
        ],
    }
    for name, argv in runs.items():
        assert main(argv + common) == 0, name
        printed = capsys.readouterr().out
        if name in ("inspect", "compare"):
            assert "hierarchical" in printed, (name, printed)
    assert any("hierarchical" in p.name for p in (tmp_path / "p").iterdir())
    assert (tmp_path / "c" / "photo_labels_hierarchical.png").exists()


def test_the_summary_counts_the_gate_head():
    from segscale.architecture import architecture_summary

    model = build_model(tiny_config(merge="hierarchical"))
    parameters = architecture_summary(model).parameters
    assert parameters["gate head"] == sum(p.numel() for p in model.gate_head.parameters()) > 0
    assert "gate head" not in architecture_summary(build_model(tiny_config())).parameters
