"""The trunks are declared once (segscale.trunks), and torchvision's resize as torchvision does.

Through the whole prediction path (the Predictor, its final upsample included), a share-net
imported from torchvision labels every pixel as torchvision's own ``model(x)["out"]`` does at
the single scale {1}: the same resize convention, ``align_corners=False``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segscale import config, plots, trunks
from segscale.architecture import architecture_summary
from segscale.checkpoint import CheckpointMetadata
from segscale.inference import FastPathOptions, labels_from_fused
from segscale.modeling import build_model
from segscale.modeling.torchvision_trunks import KINDS, build_torchvision_model
from segscale.predictor import Predictor
from segscale.torchvision_import import imported_model
from tests.conftest import tiny_config


def test_every_list_of_trunks_is_the_registry():
    assert config.TRUNK_NAMES == tuple(trunks.TRUNKS) and config.TRUNK_NAMES[0] == "vgg16_largefov"
    assert config.TORCHVISION_TRUNKS == tuple(name for name, t in trunks.TRUNKS.items() if t.torchvision is not None)
    assert config.LIBRARY_TRUNKS == ("transformers", "smp", "factory")
    assert set(config.TORCHVISION_TRUNKS) | set(config.LIBRARY_TRUNKS) | {"vgg16_largefov"} == set(trunks.TRUNKS)
    assert set(KINDS) == set(config.TORCHVISION_TRUNKS)
    assert all(KINDS[name] is trunks.TRUNKS[name].torchvision for name in KINDS)
    assert set(plots.SHARE_NET_NAMES) == set(trunks.TRUNKS)
    for trunk in trunks.TRUNKS.values():  # torchvision and the libraries resize as they do; LargeFOV aligns corners
        assert trunk.align_corners == (not trunk.branched)
        assert trunk.display.count("\n") == 1
    with pytest.raises(ValueError, match="unknown trunk 'resnet9'; valid: vgg16_largefov, deeplabv3_resnet50"):
        trunks.trunk_info("resnet9")


def test_a_model_resizes_with_its_trunks_convention():
    assert build_model(tiny_config()).align_corners is True
    summary = architecture_summary(build_model(tiny_config()))
    assert summary.output_stride == trunks.TRUNKS["vgg16_largefov"].score_map_stride  # computed from its layers


@pytest.mark.parametrize("kind", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_a_torchvision_share_net_labels_like_torchvision_at_scale_one(kind):
    torch.manual_seed(0)
    reference = build_torchvision_model(kind, 21).eval()
    model = imported_model(kind, reference.state_dict(), scales=(1.0,))
    assert model.align_corners is False
    image = (np.random.default_rng(0).random((97, 131, 3)) * 255).astype(np.uint8)
    metadata = CheckpointMetadata(
        model=model.config,
        classes=tuple(f"c{k}" for k in range(21)),
        palette=((0, 0, 0),) * 21,
        scale_range=(0.5, 2.0),
    )
    options = FastPathOptions(autocast="off", fold_batchnorm=False, channels_last=False)
    predictor = Predictor(model, metadata, device="cpu", max_side=None, options=options)
    prediction = predictor.predict(image, scales=(1.0,))
    with torch.no_grad():
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        mean, std = torch.tensor(metadata.mean).view(1, 3, 1, 1), torch.tensor(metadata.std).view(1, 3, 1, 1)
        expected = reference((pixels - mean) / std)["out"]  # (1, 21, H, W), torchvision's own upsample
    agree = (prediction.labels == expected.argmax(dim=1)[0].numpy()).mean()
    assert agree > 0.999, f"{kind}: {agree:.4f} of the pixels agree with torchvision"
    # Random weights label nearly every pixel alike, so compare the scores themselves: the fused map
    # resized with the trunk's convention is torchvision's output. (LR-ASPP's random map varies
    # enough across the image for the corner-aligned convention to miss it; DeepLabV3's is flat.)
    fused = torch.from_numpy(prediction.fused)[None]
    errors = {}
    for align_corners in (False, True):
        upsampled = F.interpolate(fused, size=image.shape[:2], mode="bilinear", align_corners=align_corners)
        errors[align_corners] = ((upsampled - expected).norm() / expected.norm()).item()
    assert errors[False] < 1e-5, f"{kind}: relative error {errors[False]:.1e} against torchvision's output"
    if kind.startswith("lraspp"):
        assert errors[True] > 1e-3, errors
    assert predictor.align_corners is False
    np.testing.assert_array_equal(
        labels_from_fused(fused, image.shape[:2], predictor.align_corners)[0], prediction.labels
    )
