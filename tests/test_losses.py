"""Extra supervision: a loss on the fused output and on every scale's own output."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segscale.losses import IGNORE_INDEX, extra_supervision_loss, segmentation_cross_entropy
from segscale.modeling import build_model
from segscale.modeling.geometry import resize_labels

from .conftest import tiny_config


def test_label_resizing_is_nearest_on_the_aligned_grid():
    labels = torch.arange(9 * 17).view(1, 9, 17)
    small = resize_labels(labels, (3, 5))
    rows, cols = [0, 4, 8], [0, 4, 8, 12, 16]  # k * (n_in - 1) / (n_out - 1)
    torch.testing.assert_close(small[0], labels[0][rows][:, cols])
    assert resize_labels(labels, (9, 17)) is labels


def test_cross_entropy_ignores_255_and_matches_torch():
    scores = torch.randn(2, 4, 5, 6)
    labels = torch.randint(0, 4, (2, 5, 6))
    labels[0, :2] = IGNORE_INDEX
    expected = F.cross_entropy(scores, labels, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(segmentation_cross_entropy(scores, labels), expected)


def test_all_ignored_gives_zero_not_nan():
    scores = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = segmentation_cross_entropy(scores, torch.full((1, 4, 4), IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph


@pytest.mark.parametrize("extra", [True, False])
def test_extra_supervision_adds_one_term_per_scale(extra):
    torch.manual_seed(0)
    model = build_model(tiny_config()).train()
    images, labels = torch.randn(2, 3, 41, 57), torch.randint(0, 3, (2, 41, 57))
    output = model(images)
    terms = extra_supervision_loss(output, labels, extra_supervision=extra)
    assert len(terms.per_scale) == (3 if extra else 0)
    fused_expected = F.cross_entropy(output.fused, resize_labels(labels, output.grid))
    torch.testing.assert_close(terms.fused, fused_expected)
    for native, term in zip(output.native_score_maps, terms.per_scale):
        torch.testing.assert_close(term, F.cross_entropy(native, resize_labels(labels, tuple(native.shape[-2:]))))
    torch.testing.assert_close(terms.total, terms.fused + sum(terms.per_scale, torch.tensor(0.0)))
    terms.total.backward()
    assert model.trunk.layers.conv1_1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(5, 7), (13, 4), (1, 9)])
def test_labels_shrink_to_a_half_pixel_grid_as_torch_places_its_cells(size):
    """A torchvision or library network resizes with half-pixel centres; its loss samples the label under each
    cell's centre, which is torch's 'nearest-exact' rule, not the corner-aligned one LargeFOV uses."""
    labels = torch.randint(0, 6, (2, 23, 31))
    centred = resize_labels(labels, size, align_corners=False)
    expected = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()
    assert torch.equal(centred, expected)
    if size != (1, 9):
        assert not torch.equal(centred, resize_labels(labels, size, align_corners=True))


def test_the_loss_reads_the_labels_on_the_models_grid():
    scores = torch.zeros(1, 3, 4, 4)
    scores[0, 1] = 5.0  # class 1 everywhere
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, 0, :] = 1  # only the top row is class 1: the aligned grid samples it, half-pixel centres do not
    aligned = segmentation_cross_entropy(scores, labels, align_corners=True)
    centred = segmentation_cross_entropy(scores, labels, align_corners=False)
    assert centred > aligned
