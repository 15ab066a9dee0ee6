"""The fast inference path against the plain float32 reference: labels, folding, layouts, fallbacks.

No timings are asserted anywhere: speed is what ``python -m segscale bench`` measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from segscale import Predictor
from segscale.checkpoint import IMAGENET_MEAN, IMAGENET_STD, CheckpointMetadata, model_from_checkpoint
from segscale.config import ModelConfig, TrunkConfig
from segscale.data.scaleshapes import ScaleShapesConfig, generate_sample
from segscale.inference import (
    AUTOCAST_MIN_AGREEMENT,
    FastMultiScale,
    FastPathOptions,
    fold_batchnorm,
    labels_from_fused,
)
from segscale.modeling import build_model

from .conftest import tiny_config, tiny_metadata

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "scaleshapes_demo.pt"
SIZE = 256
IMAGES = 6


def reference_labels(model: nn.Module, metadata: CheckpointMetadata, rgb: np.ndarray) -> torch.Tensor:
    """The plain path: float32, NCHW, no_grad, the model's own forward, one upsample, argmax."""
    with torch.no_grad():
        images = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        images = (images - torch.tensor(metadata.mean).view(1, 3, 1, 1)) / torch.tensor(metadata.std).view(1, 3, 1, 1)
        fused = model.eval()(images).fused
        up = torch.nn.functional.interpolate(fused, size=rgb.shape[:2], mode="bilinear", align_corners=True)
        return up.argmax(dim=1)[0]


def random_demo_like() -> tuple[nn.Module, CheckpointMetadata]:
    """A demo-like architecture (batch norm, shared head; width 1/8 to stay quick) with seeded random weights."""
    torch.manual_seed(0)
    config = ModelConfig(num_classes=7, trunk=TrunkConfig(width=1 / 8, norm="batch"))
    model = build_model(config).eval()
    palette = tuple((i * 30, i * 20, i * 10) for i in range(7))
    return model, CheckpointMetadata(model=config, classes=tuple(f"c{i}" for i in range(7)), palette=palette)


def demo_checkpoint():
    # The demo model ships in git, so its absence is a broken checkout, not a reason to skip.
    assert DEMO_CHECKPOINT.exists(), f"{DEMO_CHECKPOINT} is missing; it ships with the repository"
    return model_from_checkpoint(DEMO_CHECKPOINT)


@pytest.mark.slow
@pytest.mark.real_autocast
@pytest.mark.parametrize("which", ["demo checkpoint", "seeded random width-1/8 model"])
def test_fast_path_labels_agree_with_float32_reference(which):
    """The Predictor's path (bf16 where the CPU has AMX, else float32) vs float32, pooled over ScaleShapes images."""
    model, metadata = demo_checkpoint() if which == "demo checkpoint" else random_demo_like()
    predictor = Predictor(model, metadata, device="cpu")
    agree = total = 0
    for index in range(IMAGES):
        rgb = generate_sample("val", index, ScaleShapesConfig(min_side=SIZE, max_side=SIZE)).image
        labels = torch.from_numpy(predictor.predict(rgb).labels)
        agree += int((labels == reference_labels(model, metadata, rgb)).sum())
        total += labels.numel()
    agreement = agree / total
    assert agreement >= AUTOCAST_MIN_AGREEMENT, (
        f"{which}: {predictor.precision} labels agree on {agreement:.4%} of pixels"
    )


def test_forced_bf16_stays_close_on_a_random_model():
    """bf16 even where the check would refuse it: random weights tie often, yet most labels survive."""
    model, metadata = random_demo_like()
    fast = FastMultiScale(model, metadata.mean, metadata.std, "cpu", FastPathOptions(autocast="bf16"))
    rgb = generate_sample("val", 0, ScaleShapesConfig(min_side=SIZE, max_side=SIZE)).image
    _, labels = fast.run(rgb)
    assert (labels[0] == reference_labels(model, metadata, rgb)).float().mean() > 0.98


def test_float32_fast_path_matches_the_model_exactly_enough():
    model, metadata = random_demo_like()
    fast = FastMultiScale(model, metadata.mean, metadata.std, "cpu", FastPathOptions(autocast="off"))
    rgb = np.random.default_rng(0).integers(0, 256, size=(97, 131, 3), dtype=np.uint8)
    output, labels = fast.run(rgb, scales=(1.0, 0.75, 0.5), merge="attention")
    with torch.no_grad():
        images = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        images = (images - torch.tensor(metadata.mean).view(1, 3, 1, 1)) / torch.tensor(metadata.std).view(1, 3, 1, 1)
        expected = model(images, scales=(1.0, 0.75, 0.5), merge="attention")
    torch.testing.assert_close(output.score_maps, expected.score_maps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(output.attention, expected.attention, rtol=1e-4, atol=1e-5)
    assert (labels[0] == labels_from_fused(expected.fused, rgb.shape[:2])[0]).float().mean() > 0.999


def test_batchnorm_folding_keeps_the_function_and_the_names():
    model = build_model(tiny_config(norm="batch"))
    for module in model.modules():  # non-trivial running statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    images = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        expected = model(images).fused
        folded = fold_batchnorm(__import__("copy").deepcopy(model))
        actual = folded(images).fused
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert isinstance(folded.trunk.layers.conv1_1_norm, nn.Identity)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the caller's model must be left alone"


def test_folding_refuses_a_training_model():
    with pytest.raises(AssertionError, match="eval mode"):
        fold_batchnorm(build_model(tiny_config(norm="batch")).train())


def test_inputs_are_normalised_channels_last_on_the_device():
    model = build_model(tiny_config())
    fast = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu")
    rgb = np.random.default_rng(1).integers(0, 256, size=(2, 20, 30, 3), dtype=np.uint8)
    images = fast.images_from_pixels(rgb)
    assert images.shape == (2, 3, 20, 30) and images.dtype == torch.float32
    assert images.is_contiguous(memory_format=torch.channels_last)
    expected = (
        torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    ) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(images, expected)
    nchw = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions(channels_last=False))
    assert nchw.images_from_pixels(rgb).is_contiguous()


def test_the_fast_path_copies_the_model():
    model = build_model(tiny_config(norm="batch")).eval()
    fast = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu")
    assert fast.model is not model
    assert model.trunk.layers.conv1_1.weight.is_contiguous()  # not turned channels_last in place
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_labels_from_fused_is_argmax_of_the_upsampled_map():
    fused = torch.randn(2, 5, 7, 9).contiguous(memory_format=torch.channels_last)
    up = torch.nn.functional.interpolate(fused.contiguous(), size=(50, 65), mode="bilinear", align_corners=True)
    torch.testing.assert_close(labels_from_fused(fused, (50, 65)), up.argmax(dim=1))


def test_bad_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="valid: auto, bf16, off"):
        FastPathOptions(autocast="fp16")


def test_cuda_graphs_are_ignored_off_cuda(make_checkpoint):
    plain = Predictor.from_checkpoint(make_checkpoint(), device="cpu", options=FastPathOptions(autocast="off"))
    graphed = Predictor.from_checkpoint(
        make_checkpoint(), device="cpu", options=FastPathOptions(autocast="off", cuda_graphs=True, cudnn_benchmark=True)
    )
    rgb = np.random.default_rng(2).integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    np.testing.assert_array_equal(plain.predict(rgb).labels, graphed.predict(rgb).labels)


def test_a_failing_compile_falls_back_to_eager(monkeypatch):
    def broken_compile(model, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError("no compiler here")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = build_model(tiny_config())
    fast = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions(compile=True, autocast="off"))
    rgb = np.random.default_rng(3).integers(0, 256, size=(33, 41, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        output, labels = fast.run(rgb)
    assert labels.shape == (1, 33, 41)
    fast.run(rgb)  # eager from now on, without a second warning
    assert fast._forward is fast.model


def test_the_autocast_check_refuses_bf16_that_changes_labels(monkeypatch):
    """A model whose bf16 labels differ is kept in float32 by the first-image check."""
    model = build_model(tiny_config())
    fast = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions())
    fast.use_autocast = None  # as on a device where bf16 pays off
    real_forward = fast.forward

    def forward(images, scales, merge, autocast, cache_casts=True):
        output = real_forward(images, scales, merge, autocast, cache_casts)
        if autocast:  # pretend bf16 flipped every label
            return type(output)(**{**output.__dict__, "fused": -output.fused})
        return output

    monkeypatch.setattr(fast, "forward", forward)
    fast.run(np.random.default_rng(4).integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
    assert fast.use_autocast is False and fast.autocast_agreement < AUTOCAST_MIN_AGREEMENT


def test_predictor_reports_its_precision(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint(), device="cpu", options=FastPathOptions(autocast="off"))
    assert predictor.precision == "float32"
    metadata = tiny_metadata(tiny_config())
    forced = Predictor(build_model(tiny_config()), metadata, device="cpu", options=FastPathOptions(autocast="bf16"))
    assert forced.precision == "bf16 autocast"


def test_bf16_weights_are_stored_once_chosen():
    model = build_model(tiny_config())
    rgb = np.random.default_rng(5).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    stored = FastMultiScale(model, IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions(autocast="bf16"))
    assert stored.model.trunk.layers.conv1_1.weight.dtype == torch.bfloat16
    cast_per_call = FastMultiScale(
        model, IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions(autocast="bf16", bf16_weights=False)
    )
    assert cast_per_call.model.trunk.layers.conv1_1.weight.dtype == torch.float32
    torch.testing.assert_close(stored.run(rgb)[0].fused, cast_per_call.run(rgb)[0].fused)  # the same bf16 arithmetic
    with pytest.raises(ValueError, match="autocast='off'"):
        stored.forward(stored.images_from_pixels(rgb), (1.0,), "attention", autocast=False)
    assert model.trunk.layers.conv1_1.weight.dtype == torch.float32  # the caller's model is untouched
