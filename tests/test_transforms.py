"""DeepLab's training augmentation (rescale, pad, crop, flip) and the numpy-to-tensor step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segscale.data.transforms import MEAN_COLOR, TrainAugmentation, to_tensors


def column_coded_pair(height: int, width: int):
    """Red = column index and label = column // 4: every pixel's label can be told from its colour."""
    columns = np.broadcast_to(np.arange(width, dtype=np.uint8), (height, width))
    image = np.stack([columns, np.full_like(columns, 50), np.full_like(columns, 90)], axis=2)
    label = (columns // 4).astype(np.uint8)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def block_pair(height: int, width: int):
    """Three big blocks of flat colour, one class each: (image, label, colour of class k)."""
    colors = np.array([[0, 0, 0], [250, 20, 20], [20, 20, 250]], dtype=np.uint8)
    label = np.zeros((height, width), dtype=np.uint8)
    label[:, width // 3 :] = 1
    label[height // 2 :, 2 * width // 3 :] = 2
    return colors[label], label, colors


def test_outputs_have_the_crop_size_and_dtypes():
    image, label = column_coded_pair(40, 50)
    augment = TrainAugmentation(crop_size=33)
    for seed in range(5):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        assert out_image.shape == (33, 33, 3) and out_image.dtype == np.uint8
        assert out_label.shape == (33, 33) and out_label.dtype == np.uint8
        assert out_image.flags.c_contiguous and out_label.flags.c_contiguous


def test_images_smaller_than_the_crop_are_padded_with_ignore_and_the_mean_colour():
    image, label = column_coded_pair(10, 12)
    augment = TrainAugmentation(crop_size=32, scale_range=(1.0, 1.0), flip=False)
    out_image, out_label = augment(image, label, np.random.default_rng(0))
    assert out_label.shape == (32, 32)
    np.testing.assert_array_equal(out_label[:10, :12], label)  # padding goes bottom and right
    np.testing.assert_array_equal(out_image[:10, :12], image)
    assert (out_label[10:, :] == 255).all() and (out_label[:, 12:] == 255).all()
    assert (out_image[10:, :] == MEAN_COLOR).all() and (out_image[:, 12:] == MEAN_COLOR).all()


def test_label_values_come_only_from_the_input_and_ignore():
    image, label, _ = block_pair(37, 45)
    label[5:9, 5:9] = 255
    augment = TrainAugmentation(crop_size=41, scale_range=(0.5, 1.5))
    for seed in range(10):
        _, out_label = augment(image, label, np.random.default_rng(seed))
        assert set(np.unique(out_label)) <= {0, 1, 2, 255}


def test_image_and_label_are_cropped_and_flipped_together():
    image, label = column_coded_pair(30, 60)
    augment = TrainAugmentation(crop_size=24, scale_range=(1.0, 1.0))
    flipped_seen = unflipped_seen = False
    for seed in range(12):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_label, out_image[:, :, 0] // 4)
        flipped = out_image[0, 0, 0] > out_image[0, -1, 0]
        flipped_seen |= bool(flipped)
        unflipped_seen |= not flipped
    assert flipped_seen and unflipped_seen


def test_no_flip_when_flipping_is_off():
    image, label = column_coded_pair(30, 60)
    augment = TrainAugmentation(crop_size=24, scale_range=(1.0, 1.0), flip=False)
    for seed in range(12):
        out_image, _ = augment(image, label, np.random.default_rng(seed))
        assert out_image[0, 0, 0] < out_image[0, -1, 0]


def test_rescaled_image_and_label_stay_registered():
    image, label, colors = block_pair(48, 60)
    augment = TrainAugmentation(crop_size=40, scale_range=(0.5, 1.5))
    for seed in range(8):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        valid = out_label != 255
        distances = np.abs(out_image[valid].astype(int)[:, None, :] - colors.astype(int)[None]).sum(axis=2)
        nearest_class = distances.argmin(axis=1)
        # Bilinear blurs a one-pixel seam between blocks; everything else must agree exactly.
        assert (nearest_class == out_label[valid]).mean() > 0.9


def test_same_seed_same_result_and_different_seeds_differ():
    image, label, _ = block_pair(50, 70)
    augment = TrainAugmentation(crop_size=31)
    first = augment(image, label, np.random.default_rng(7))
    again = augment(image, label, np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    others = [augment(image, label, np.random.default_rng(seed)) for seed in range(8, 12)]
    assert any(not np.array_equal(first[0], other[0]) for other in others)


def test_scale_factor_is_applied():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    label = np.zeros((20, 20), dtype=np.uint8)
    label[3:9, 5:9] = 1  # a 6 x 4 object
    image[label == 1] = 255
    augment = TrainAugmentation(crop_size=64, scale_range=(2.0, 2.0), flip=False)
    out_image, out_label = augment(image, label, np.random.default_rng(0))
    rows, cols = np.nonzero(out_label == 1)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (12, 8)
    assert (out_label == 1).sum() == 4 * 24
    assert (out_label[:40, :40] != 255).all() and (out_label[40:] == 255).all()
    # Bilinear blends the object's edge with the background; thresholded halfway, it is the label's object.
    np.testing.assert_array_equal(out_image[:, :, 0] > 127, out_label == 1)


def test_scale_factor_stays_in_range():
    image, label, _ = block_pair(40, 40)
    augment = TrainAugmentation(crop_size=100, scale_range=(0.75, 1.25), flip=False)
    for seed in range(10):
        _, out_label = augment(image, label, np.random.default_rng(seed))
        side = int((out_label[:, 0] != 255).sum())  # crop covers all: offset 0, padded bottom-right
        assert 30 <= side <= 50


@pytest.mark.parametrize(
    "kwargs",
    [
        {"crop_size": 0},
        {"scale_range": (1.5, 0.5)},
        {"scale_range": (0.0, 1.0)},
        {"ignore_index": 300},
        {"pad_color": (0, 0)},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrainAugmentation(**kwargs)


def test_mismatched_pair_is_refused():
    image, label = column_coded_pair(10, 12)
    with pytest.raises(ValueError, match="same height and width"):
        TrainAugmentation(crop_size=8)(image, label[:, :10], np.random.default_rng(0))


def test_to_tensors_normalises_like_a_hand_computation():
    image = np.array([[[0, 128, 255], [10, 20, 30]]], dtype=np.uint8)  # (1, 2, 3)
    label = np.array([[3, 255]], dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pixels, labels = to_tensors(image, label, mean, std)
    assert pixels.dtype == torch.float32 and pixels.shape == (3, 1, 2)
    assert labels.dtype == torch.int64 and labels.tolist() == [[3, 255]]
    for channel in range(3):
        for col in range(2):
            expected = (image[0, col, channel] / 255 - mean[channel]) / std[channel]
            assert pixels[channel, 0, col].item() == pytest.approx(expected, abs=1e-6)
