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

This module is the one place where the softmax over scales happens.
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


def uniform_logits(score_maps: Tensor) -> Tensor:
    """Equal logits for every scale: Eq. 2 then gives average pooling (w^s = 1/S)."""
    batch, num_scales, _, height, width = score_maps.shape
    return score_maps.new_zeros(batch, num_scales, height, width)


def merge_score_maps(
    score_maps: Tensor, mode: str, attention_logits: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """Fuse per-scale score maps into one.

    Args:
        score_maps: (B, S, C, h, w), f^s on the common grid.
        mode: "attention" (needs ``attention_logits``), "average" or "max".
        attention_logits: (B, S, h, w), h^s; used by "attention" only.

    Returns:
        fused: (B, C, h, w), g.
        weights: (B, S, h, w), w^s, or None for "max" (its weights differ per class).
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
    elif mode == "average":
        weights = scale_attention_weights(uniform_logits(score_maps))
    elif mode == "max":
        return score_maps.amax(dim=SCALE_DIM), None
    else:
        raise ValueError(f"unknown merge mode {mode!r}; valid: {', '.join(MERGE_MODES)}")
    return weighted_sum_over_scales(score_maps, weights), weights
