"""Eq. 1 and Eq. 2 against independent computations, and average/max pooling as special cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segscale.modeling.fusion import merge_score_maps, scale_attention_weights, uniform_logits, weighted_sum_over_scales

B, S, C, H, W = 2, 3, 5, 7, 9


@pytest.fixture
def random_maps():
    generator = torch.Generator().manual_seed(1234)
    score_maps = torch.randn(B, S, C, H, W, generator=generator, dtype=torch.float64) * 3
    logits = torch.randn(B, S, H, W, generator=generator, dtype=torch.float64) * 2
    return score_maps, logits


def numpy_eq2(logits: np.ndarray) -> np.ndarray:
    """w^s_i = exp(h^s_i) / sum_t exp(h^t_i), written out with explicit loops over positions."""
    weights = np.empty_like(logits)
    for b in range(logits.shape[0]):
        for i in range(logits.shape[2]):
            for j in range(logits.shape[3]):
                exps = [np.exp(logits[b, s, i, j]) for s in range(logits.shape[1])]
                for s in range(logits.shape[1]):
                    weights[b, s, i, j] = exps[s] / sum(exps)
    return weights


def numpy_eq1(score_maps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """g_{i,c} = sum_s w^s_i f^s_{i,c}, as an einsum over named axes."""
    return np.einsum("bshw,bschw->bchw", weights, score_maps)


def test_eq2_matches_explicit_softmax(random_maps):
    _, logits = random_maps
    weights = scale_attention_weights(logits)
    np.testing.assert_allclose(weights.numpy(), numpy_eq2(logits.numpy()), rtol=1e-12, atol=1e-12)


def test_eq2_weights_are_a_distribution_over_scales(random_maps):
    _, logits = random_maps
    weights = scale_attention_weights(logits * 50)  # large logits: still finite and normalised
    assert torch.isfinite(weights).all()
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(B, H, W, dtype=weights.dtype))


def test_eq2_is_shift_invariant_per_position(random_maps):
    _, logits = random_maps
    shift = torch.randn(B, 1, H, W, dtype=logits.dtype)
    torch.testing.assert_close(scale_attention_weights(logits + shift), scale_attention_weights(logits))


def test_eq1_matches_einsum(random_maps):
    score_maps, logits = random_maps
    weights = scale_attention_weights(logits)
    fused = weighted_sum_over_scales(score_maps, weights)
    np.testing.assert_allclose(fused.numpy(), numpy_eq1(score_maps.numpy(), weights.numpy()), rtol=1e-12)


def test_attention_merge_is_eq1_of_eq2(random_maps):
    score_maps, logits = random_maps
    fused, weights = merge_score_maps(score_maps, "attention", logits)
    expected = numpy_eq1(score_maps.numpy(), numpy_eq2(logits.numpy()))
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-10)
    assert weights.shape == (B, S, H, W)


def test_attention_weights_are_shared_across_classes(random_maps):
    """Eq. 2 has no class index: scaling one class's scores scales only that class's fused score."""
    score_maps, logits = random_maps
    fused, _ = merge_score_maps(score_maps, "attention", logits)
    changed = score_maps.clone()
    changed[:, :, 2] *= 2
    fused_changed, _ = merge_score_maps(changed, "attention", logits)
    torch.testing.assert_close(fused_changed[:, 2], 2 * fused[:, 2])
    torch.testing.assert_close(fused_changed[:, [0, 1, 3, 4]], fused[:, [0, 1, 3, 4]])


def test_average_is_the_mean_and_eq2_with_equal_logits(random_maps):
    score_maps, logits = random_maps
    fused, weights = merge_score_maps(score_maps, "average")
    torch.testing.assert_close(fused, score_maps.mean(dim=1))
    torch.testing.assert_close(weights, torch.full((B, S, H, W), 1 / S, dtype=weights.dtype))
    # The special case: attention with any constant logits is average pooling.
    constant = torch.full_like(logits, 4.2)
    torch.testing.assert_close(merge_score_maps(score_maps, "attention", constant)[0], fused)
    torch.testing.assert_close(uniform_logits(score_maps), torch.zeros_like(logits))


def test_max_is_the_max_and_the_cold_limit_of_per_class_softmax(random_maps):
    score_maps, _ = random_maps
    fused, weights = merge_score_maps(score_maps, "max")
    assert weights is None
    np.testing.assert_array_equal(fused.numpy(), score_maps.numpy().max(axis=1))
    # max pooling = Eq. 1 with per-class weights softmax_s(f / T) as T -> 0.
    temperature = 1e-4
    per_class_weights = torch.softmax(score_maps / temperature, dim=1)
    torch.testing.assert_close((per_class_weights * score_maps).sum(dim=1), fused, rtol=1e-6, atol=1e-6)


def test_single_scale_merges_are_identity(random_maps):
    score_maps, logits = random_maps
    one = score_maps[:, :1]
    for mode, extra in (("attention", logits[:, :1]), ("average", None), ("max", None)):
        fused, _ = merge_score_maps(one, mode, extra)
        torch.testing.assert_close(fused, one[:, 0])


def test_merge_errors_name_the_problem(random_maps):
    score_maps, logits = random_maps
    with pytest.raises(ValueError, match="attention.*needs attention logits"):
        merge_score_maps(score_maps, "attention", None)
    with pytest.raises(ValueError, match="valid: attention, average, max"):
        merge_score_maps(score_maps, "median")
    with pytest.raises(ValueError, match="do not match"):
        merge_score_maps(score_maps, "attention", logits[:, :2])
    with pytest.raises(ValueError, match=r"\(B, S, C, h, w\)"):
        merge_score_maps(score_maps[0], "average")
