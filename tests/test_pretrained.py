"""The VGG-16 -> DeepLab-LargeFOV conversion, on a locally built state dict (nothing downloads)."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from segscale import pretrained
from segscale.config import TrunkConfig
from segscale.modeling.vgg_largefov import VGG16LargeFOV


@pytest.fixture(scope="module")
def fake_vgg16_state():
    """torchvision's VGG-16 keys and shapes (built on the meta device: no 528 MB init), random values."""
    with torch.device("meta"):
        reference = torchvision.models.vgg16(weights=None)
    generator = torch.Generator().manual_seed(0)
    return {key: torch.randn(value.shape, generator=generator) for key, value in reference.state_dict().items()}


def test_convolutions_are_copied(fake_vgg16_state):
    converted = pretrained.convert_vgg16_state_dict(fake_vgg16_state)
    torch.testing.assert_close(converted["layers.conv1_1.weight"], fake_vgg16_state["features.0.weight"])
    torch.testing.assert_close(converted["layers.conv3_3.bias"], fake_vgg16_state["features.14.bias"])
    torch.testing.assert_close(converted["layers.conv5_3.weight"], fake_vgg16_state["features.28.weight"])


def test_fc6_keeps_every_fourth_filter_and_subsamples_the_kernel(fake_vgg16_state):
    converted = pretrained.convert_vgg16_state_dict(fake_vgg16_state)
    fc = fake_vgg16_state["classifier.0.weight"]  # (4096, 512*7*7), input index = c*49 + row*7 + col
    fc6 = converted["layers.fc6.weight"]
    assert fc6.shape == (1024, 512, 3, 3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(200):
        f, c, i, j = (int(torch.randint(n, (1,), generator=generator)) for n in (1024, 512, 3, 3))
        assert fc6[f, c, i, j] == fc[4 * f, c * 49 + (3 * i) * 7 + 3 * j]
    torch.testing.assert_close(converted["layers.fc6.bias"], fake_vgg16_state["classifier.0.bias"][0::4])


def test_fc7_keeps_every_fourth_row_and_column(fake_vgg16_state):
    converted = pretrained.convert_vgg16_state_dict(fake_vgg16_state)
    fc7 = converted["layers.fc7.weight"]
    assert fc7.shape == (1024, 1024, 1, 1)
    fc = fake_vgg16_state["classifier.3.weight"]
    for f, c in [(0, 0), (1, 2), (1023, 1023), (517, 3)]:
        assert fc7[f, c, 0, 0] == fc[4 * f, 4 * c]


def test_converted_weights_load_into_the_trunk_and_run(fake_vgg16_state):
    trunk = VGG16LargeFOV(TrunkConfig())
    pretrained.initialize_from_imagenet(trunk, fake_vgg16_state)
    torch.testing.assert_close(trunk.layers.fc7.bias, fake_vgg16_state["classifier.3.bias"][::4])
    with torch.inference_mode():
        assert trunk.eval()(torch.randn(1, 3, 41, 41)).shape == (1, 1024, 6, 6)


def test_only_the_full_width_plain_trunk_accepts_imagenet_weights(fake_vgg16_state):
    with pytest.raises(pretrained.PretrainedWeightsError, match="width 1 and norm 'none'"):
        pretrained.initialize_from_imagenet(VGG16LargeFOV(TrunkConfig(width=0.5)), fake_vgg16_state)


def test_a_foreign_state_dict_is_refused():
    with pytest.raises(pretrained.PretrainedWeightsError, match="not a torchvision VGG-16"):
        pretrained.convert_vgg16_state_dict({"conv.weight": torch.zeros(1)})


def test_cached_weights_are_read_from_the_hub_cache(tmp_path, monkeypatch):
    """With the file in torch.hub's cache no download is attempted."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    file_name = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    torch.save({"features.0.weight": torch.ones(2)}, tmp_path / "checkpoints" / file_name)

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download although the file is cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    state = pretrained.load_imagenet_vgg16_state_dict(progress=False)
    torch.testing.assert_close(state["features.0.weight"], torch.ones(2))


def test_offline_without_cache_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(pretrained.PretrainedWeightsError, match="copy the file there") as error:
        pretrained.load_imagenet_vgg16_state_dict(progress=False)
    assert "vgg16-" in str(error.value) and str(tmp_path) in str(error.value)
