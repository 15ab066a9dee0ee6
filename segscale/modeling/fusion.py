"""Merging score maps over scales: Eq. 1 and Eq. 2 of Chen et al. (CVPR 2016).

Notation of the paper: f^s_{i,c} is the score map of scale s at position i and class c
(all scales already on one common grid), h^s_i the attention logit, w^s_i its weight.

    Eq. 2   w^s_i = exp(h^s_i) / sum_t exp(h^t_i)          (softmax over scales, shared by classes)
    Eq. 1   g_{i,c} = sum_s w^s_i f^s_{i,c}                 (weighted sum of score maps)

Average and max pooling over scales are special cases of the same two equations:

* average: every h^s equal (zero, say), so Eq. 2 gives w^s = 1/S everywhere;
* max: per position *and class*, all the weight on the scale with the largest score, the
  limit T -> 0 of w^s_{i,c} = softmax_s(f^s_{i,c} / T). Unlike attention, these weights are
  not shared across classes, which is why max pooling returns no weight map.

Tao, Sapra and Catanzaro ("Hierarchical Multi-Scale Attention for Semantic Segmentation",
2020) replace the softmax by a chain of pairwise gates, one sigmoid a^s_i = sigmoid(q^s_i) per
scale from a one-channel gate logit q^s. With the scales ordered finest first,
s_1 > s_2 > ... > s_S, and every map on the common grid:

    r^1_{i,c} = f^{s_1}_{i,c}
    r^k_{i,c} = a^{s_k}_i f^{s_k}_{i,c} + (1 - a^{s_k}_i) r^{k-1}_{i,c}     (k = 2..S)
    g_{i,c}   = r^S_{i,c}

Each coarser scale's gate decides between its own scores and the running prediction of the
finer ones: "lower resolution provides attention for higher resolution predictions", so the
chain is evaluated from high to low resolution, as in their code (``nscale_forward``; for two
scales ``two_scale_forward``: joint = a^{0.5} f^{0.5} + (1 - a^{0.5}) f^1). The finest scale's
gate is computed but unused. Unrolled, g is Eq. 1 with the effective weights

    w^{s_k}_i = a^{s_k}_i prod_{j>k} (1 - a^{s_j}_i)      (a^{s_1} read as 1)

which telescope to sum_k w^{s_k}_i = 1; the coarsest scale's weight is its own gate. Those
are shown where Chen's w^s are shown.

This module is the one place where the softmax over scales happens, and the one place where
the hierarchical chain is written (:func:`hierarchical_chain`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import MERGE_MODES

SCALE_DIM = 1  # the S axis of score maps (B, S, C, h, w) and of logits/weights (B, S, h, w)


def scale_attention_weights(attention_logits: Tensor) -> Tensor:
    """Eq. 2: softmax over the scale axis. (B, S, h, w) -> (B, S, h, w), summing to 1 over S."""
    if attention_logits.dim() != 4:
        raise ValueError(f"attention logits must be (B, S, h, w), got shape {tuple(attention_logits.shape)}")
    # At least float32 even under autocast: with bf16 logits the weights would not sum to 1
    # closely enough to read them off as a distribution.
    compute_dtype = torch.promote_types(attention_logits.dtype, torch.float32)
    return torch.softmax(attention_logits, dim=SCALE_DIM, dtype=compute_dtype).to(attention_logits.dtype)


def weighted_sum_over_scales(score_maps: Tensor, weights: Tensor) -> Tensor:
    """Eq. 1: g_{i,c} = sum_s w^s_i f^s_{i,c}. (B, S, C, h, w) and (B, S, h, w) -> (B, C, h, w)."""
    return (weights.unsqueeze(2) * score_maps).sum(dim=SCALE_DIM)


def hierarchical_chain(score_maps: Tensor, gate_logits: Tensor, scales) -> tuple[Tensor, Tensor]:
    """Tao et al.'s pairwise gates, chained from the finest scale down, on the common grid.

    Args:
        score_maps: (B, S, C, h, w), f^s, all resized to the common grid.
        gate_logits: (B, S, h, w), q^s, resized to the same grid; a^s = sigmoid(q^s).
        scales: the S scales in the order of the S axis (any order; the chain sorts them).

    Returns:
        fused: (B, C, h, w), g = r^S of the chain.
        effective_weights: (B, S, h, w), w^s = a^s prod_{coarser t} (1 - a^t) (the finest
            scale's a^s read as 1), in the order of the S axis, such that g = sum_s w^s f^s
            (Eq. 1 with these weights).

    Where the weights sum to 1: every gate lies in [0, 1], so each step is a convex
    combination and the weights are non-negative and telescope to exactly 1 (up to float
    rounding) at every grid cell, for any number of scales. That holds here because all
    maps are resized to the common grid *first* and the chain runs cell by cell there. Tao
    et al.'s code instead resizes the running prediction between neighbouring scales' own
    grids (down to each coarser scale's grid, then back up at the end); bilinear resizing of
    a product is not the product of the resized factors, so there the products of gates only
    approximate the weights, and they need not sum to 1.

    Gates are computed in at least float32, like Eq. 2's softmax.
    """
    if score_maps.dim() != 5:
        raise ValueError(f"score maps must be (B, S, C, h, w), got shape {tuple(score_maps.shape)}")
    if gate_logits.shape != score_maps.shape[:2] + score_maps.shape[3:]:
        raise ValueError(
            f"gate logits {tuple(gate_logits.shape)} do not match score maps "
            f"{tuple(score_maps.shape)} (expected (B, S, h, w))"
        )
    scales = tuple(float(s) for s in scales)
    if len(scales) != score_maps.shape[SCALE_DIM]:
        raise ValueError(f"{len(scales)} scales given for {score_maps.shape[SCALE_DIM]} score maps")
    compute_dtype = torch.promote_types(gate_logits.dtype, torch.float32)
    gates = torch.sigmoid(gate_logits.to(compute_dtype))  # (B, S, h, w), a^s
    fine_to_coarse = sorted(range(len(scales)), key=lambda k: -scales[k])

    finest = fine_to_coarse[0]
    running = score_maps[:, finest].to(compute_dtype)  # (B, C, h, w), r^1
    weights = [None] * len(scales)
    weights[finest] = torch.ones_like(gates[:, finest])  # (B, h, w); its own gate is unused
    for position, k in enumerate(fine_to_coarse[1:], start=1):
        gate = gates[:, k]  # (B, h, w)
        running = gate.unsqueeze(1) * score_maps[:, k] + (1 - gate.unsqueeze(1)) * running
        # Everything already in the chain is scaled by (1 - a^k); the new scale enters with a^k.
        for done in fine_to_coarse[:position]:
            weights[done] = weights[done] * (1 - gate)
        weights[k] = gate
    effective = torch.stack(weights, dim=SCALE_DIM).to(score_maps.dtype)  # (B, S, h, w)
    return running.to(score_maps.dtype), effective


def uniform_logits(score_maps: Tensor) -> Tensor:
    """Equal logits for every scale: Eq. 2 then gives average pooling (w^s = 1/S)."""
    batch, num_scales, _, height, width = score_maps.shape
    return score_maps.new_zeros(batch, num_scales, height, width)


def merge_score_maps(
    score_maps: Tensor,
    mode: str,
    attention_logits: Tensor | None = None,
    *,
    gate_logits: Tensor | None = None,
    scales=None,
) -> tuple[Tensor, Tensor | None]:
    """Fuse per-scale score maps into one.

    Args:
        score_maps: (B, S, C, h, w), f^s on the common grid.
        mode: "attention" (needs ``attention_logits``), "hierarchical" (needs ``gate_logits``
            and ``scales``), "average" or "max".
        attention_logits: (B, S, h, w), h^s; used by "attention" only.
        gate_logits: (B, S, h, w), q^s; used by "hierarchical" only.
        scales: the S scales in the S axis' order; used by "hierarchical" only.

    Returns:
        fused: (B, C, h, w), g.
        weights: (B, S, h, w), w^s (for "hierarchical" the effective weights of
            :func:`hierarchical_chain`), or None for "max" (its weights differ per class).
    """
    if score_maps.dim() != 5:
        raise ValueError(f"score maps must be (B, S, C, h, w), got shape {tuple(score_maps.shape)}")
    if mode == "attention":
        if attention_logits is None:
            raise ValueError("merge mode 'attention' needs attention logits; this model has no attention head")
        if attention_logits.shape != score_maps.shape[:2] + score_maps.shape[3:]:
            raise ValueError(
                f"attention logits {tuple(attention_logits.shape)} do not match score maps "
                f"{tuple(score_maps.shape)} (expected (B, S, h, w))"
            )
        weights = scale_attention_weights(attention_logits)
    elif mode == "hierarchical":
        if gate_logits is None or scales is None:
            raise ValueError("merge mode 'hierarchical' needs gate logits and the scales; this model has no gate head")
        return hierarchical_chain(score_maps, gate_logits, scales)
    elif mode == "average":
        weights = scale_attention_weights(uniform_logits(score_maps))
    elif mode == "max":
        return score_maps.amax(dim=SCALE_DIM), None
    else:
        raise ValueError(f"unknown merge mode {mode!r}; valid: {', '.join(MERGE_MODES)}")
    return weighted_sum_over_scales(score_maps, weights), weights
