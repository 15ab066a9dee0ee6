"""The numpy-facing Predictor: documented shapes and dtypes, scale sets, merges, size limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from segscale import ImageError, Predictor, ScaleSetError
from segscale.predictor import select_device


@pytest.fixture
def predictor(make_checkpoint):
    return Predictor.from_checkpoint(make_checkpoint(), device="cpu")


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, size=(61, 83, 3), dtype=np.uint8)


def test_documented_fields_shapes_and_dtypes(predictor, rgb):
    r = predictor.predict(rgb, scales=(1.0, 0.75, 0.5), merge="attention")
    S, C = 3, len(predictor.classes)
    h, w = r.fused.shape[1:]
    assert (h, w) == (8, 11)  # ceil(61/8), ceil(83/8)
    assert r.scales == (1.0, 0.75, 0.5)
    assert r.score_maps.shape == (S, C, h, w) and r.score_maps.dtype == np.float32
    assert r.attention_logits.shape == r.attention.shape == (S, h, w)
    assert r.attention.dtype == r.attention_logits.dtype == np.float32
    assert r.fused.shape == (C, h, w) and r.fused.dtype == np.float32
    assert r.labels.shape == rgb.shape[:2] and np.issubdtype(r.labels.dtype, np.integer)
    np.testing.assert_allclose(r.attention.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(r.image, rgb)
    assert not r.was_downscaled and r.device.startswith("CPU")
    assert r.timings.total_s > 0


def test_eq1_holds_on_the_returned_arrays(predictor, rgb):
    r = predictor.predict(rgb, merge="attention")
    np.testing.assert_allclose(r.fused, np.einsum("shw,schw->chw", r.attention, r.score_maps), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        r.attention, np.exp(r.attention_logits) / np.exp(r.attention_logits).sum(axis=0), rtol=1e-4, atol=1e-6
    )


def test_labels_are_argmax_of_the_upsampled_fused_map(predictor, rgb):
    r = predictor.predict(rgb)
    upsampled = torch.nn.functional.interpolate(
        torch.from_numpy(r.fused)[None], size=rgb.shape[:2], mode="bilinear", align_corners=True
    )
    np.testing.assert_array_equal(r.labels, upsampled[0].argmax(dim=0).numpy())


def test_average_and_max(predictor, rgb):
    average = predictor.predict(rgb, merge="average")
    assert average.attention_logits is None
    np.testing.assert_allclose(average.attention, 1 / 3)
    np.testing.assert_allclose(average.fused, average.score_maps.mean(axis=0), rtol=1e-5, atol=1e-6)
    maximum = predictor.predict(rgb, merge="max")
    assert maximum.attention is None and maximum.attention_logits is None
    np.testing.assert_array_equal(maximum.fused, maximum.score_maps.max(axis=0))


def test_default_scales_come_from_the_checkpoint(predictor, rgb):
    assert predictor.predict(rgb).scales == predictor.default_scales == (1.0, 0.75, 0.5)
    assert predictor.predict(rgb, scales=[2, 1]).scales == (2.0, 1.0)


def test_pil_images_of_any_mode(predictor, rgb):
    from_array = predictor.predict(rgb)
    from_pil = predictor.predict(Image.fromarray(rgb))
    np.testing.assert_array_equal(from_array.labels, from_pil.labels)
    grey = predictor.predict(Image.fromarray(rgb[:, :, 0]))
    assert grey.labels.shape == rgb.shape[:2]
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])  # fully transparent: white
    np.testing.assert_array_equal(predictor.predict(Image.fromarray(rgba, "RGBA")).image, 255)


def test_longest_side_is_capped(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu", max_side=64)
    r = predictor.predict(np.zeros((50, 200, 3), np.uint8))
    assert r.labels.shape == (16, 64) and r.original_size == (50, 200) and r.was_downscaled


def test_bad_requests_name_what_is_wrong(make_checkpoint, rgb):
    paper = Predictor.from_checkpoint(make_checkpoint(head="paper"), device="cpu")
    with pytest.raises(ScaleSetError, match=r"\[1\.0, 0\.75, 0\.5\]"):
        paper.predict(rgb, scales=(1.0, 0.5))
    assert paper.predict(rgb, scales=(1.0, 0.5), merge="average").scales == (1.0, 0.5)
    with pytest.raises(ValueError, match="valid: attention, average, max"):
        paper.predict(rgb, merge="mean")
    with pytest.raises(ImageError, match="at least 16 pixels"):
        paper.predict(np.zeros((8, 300, 3), np.uint8))
    with pytest.raises(ImageError, match="uint8"):
        paper.predict(np.zeros((32, 32, 3), np.float32))


def test_device_selection_prefers_accelerators():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert select_device(None).type == expected
    assert select_device("cpu").type == "cpu"


# ---------------------------------------------------------------- what a model offers (the one place)


def test_offers_follow_the_head(make_checkpoint):
    shared = Predictor.from_checkpoint(make_checkpoint(), device="cpu")
    assert shared.has_attention_head and shared.offered_merges == ("attention", "average", "max")
    assert shared.inspection_merge == "attention"
    headless = Predictor.from_checkpoint(make_checkpoint(merge="average"), device="cpu")
    assert not headless.has_attention_head and headless.offered_merges == ("average", "max")
    assert headless.inspection_merge == "average"
    with pytest.raises(ValueError, match="has no attention head.*use one of: average, max"):
        headless.check_request((1.0,), "attention")


def test_scale_sets_are_decided_by_check_request(make_checkpoint):
    paper = Predictor.from_checkpoint(make_checkpoint(head="paper"), device="cpu")
    # The paper head fuses its trained set only; average and max take any set inside the range.
    assert paper.fixed_scale_set("attention") and not paper.fixed_scale_set("average")
    assert paper.offered_scale_sets("attention") == [(1.0, 0.75, 0.5)]
    assert paper.accepts_scales((0.5, 1.0, 0.75), "attention") and not paper.accepts_scales((1.0, 0.5), "attention")
    assert paper.offered_scale_sets("average") == [(1.0, 0.75, 0.5), (1.0, 0.5), (1.0, 0.75), (1.0,)]
    # The tiny model's range is 0.25 to 2 (conftest), so 3 is refused, naming the range.
    assert paper.accepts_scales((2.0, 0.25), "average") and not paper.accepts_scales((3.0, 1.0), "average")
    with pytest.raises(ValueError, match="scale 3 is outside this model's range 0.25 to 2"):
        paper.check_request((3.0, 1.0), "average")
    assert paper.custom_scale_grid(0.25) == [2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25]


def test_pixel_budget_refuses_before_allocating_and_names_what_fits(make_checkpoint, rgb):
    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu", pixel_budget=100 * 100)
    height, width = rgb.shape[:2]
    assert height * width <= 100 * 100 < (2 * height) * (2 * width)
    with pytest.raises(ValueError, match=r"over the budget of 0\.0 Mpx.*largest scale that fits is") as error:
        predictor.check_request((1.0,), "average", image_size=(4 * height, 4 * width))
    fits = float(str(error.value).rsplit(" ", 1)[-1])
    assert (4 * height * fits) * (4 * width * fits) <= 100 * 100
    predictor.check_request((fits,) if fits >= 0.5 else (1.0,), "average", image_size=(height, width))


def test_architecture_summary_counts_the_unfolded_model(make_checkpoint):
    from segscale.architecture import architecture_summary
    from segscale.checkpoint import model_from_checkpoint

    path = make_checkpoint(norm="batch")
    model, _ = model_from_checkpoint(path)
    expected = architecture_summary(model)
    summary = Predictor.from_checkpoint(path, device="cpu").architecture_summary()
    assert summary.parameters == expected.parameters and len(summary.layers) == len(expected.layers)


def test_the_cpu_is_described_with_its_thread_count_in_the_right_number(monkeypatch):
    """torchrun gives each process one thread: "CPU (1 thread)", not "1 threads"."""
    from segscale.predictor import device_description

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert device_description(torch.device("cpu")) == "CPU (1 thread)"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert device_description(torch.device("cpu")) == "CPU (2 threads)"
