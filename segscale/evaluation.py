"""Scoring a model on whole images: the loop shared by training's validation and ``segscale evaluate``."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .data.transforms import image_to_tensor
from .metrics import ConfusionMatrix, SegmentationScores
from .modeling.geometry import resize_bilinear
from .modeling.multiscale import MultiScaleOutput


@torch.inference_mode()
def predict_full_image(model: nn.Module, image: np.ndarray, mean, std, scales, merge: str, device) -> tuple[np.ndarray, MultiScaleOutput]:
    """(labels (H, W) int64 at input resolution, the model's output) for one uint8 RGB image."""
    batch = image_to_tensor(image, mean, std).unsqueeze(0).to(device)
    output = model(batch, scales=scales, merge=merge)
    labels = resize_bilinear(output.fused.float(), tuple(image.shape[:2])).argmax(dim=1)[0]
    return labels.cpu().numpy(), output


def evaluate_pairs(
    model: nn.Module,
    pairs: Iterable,
    num_classes: int,
    mean,
    std,
    scales,
    merge: str,
    device,
    on_image: Callable[[int], None] | None = None,
) -> SegmentationScores:
    """Dataset-level confusion matrix of a model over (image, label) pairs, at one scale set and merge."""
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes)
    try:
        for index in range(len(pairs)):
            image, label = pairs[index]
            predicted, _ = predict_full_image(model, image, mean, std, scales, merge, device)
            confusion.update(label, predicted)
            if on_image is not None:
                on_image(index)
    finally:
        model.train(was_training)
    return confusion.scores()
