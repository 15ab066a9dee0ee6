"""The multi-scale model on tiny inputs: shapes, share-net, gradients, heads and the full-width trunk."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from segscale.config import HeadConfig, ModelConfig, TrunkConfig
from segscale.modeling import ScaleSetError, build_model
from segscale.modeling.geometry import grid_size, scaled_size
from segscale.modeling.vgg_largefov import VGG16LargeFOV

from .conftest import tiny_config

ODD_SIZE = (97, 131)
SCALE_SETS = [(1.0,), (1.0, 0.5), (1.0, 0.75, 0.5), (1.5, 1.0, 0.5, 0.25)]


class BaseModelTest:
    """Forward and backward of one configuration; subclasses choose head, merge and norm."""

    head = "shared"
    merge = "attention"
    norm = "none"
    train_scales = (1.0, 0.75, 0.5)
    test_scale_sets = SCALE_SETS

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return build_model(tiny_config(head=self.head, merge=self.merge, scales=self.train_scales, norm=self.norm))

    @pytest.mark.parametrize("size", [ODD_SIZE, (64, 64), (33, 200)])
    def test_shapes_on_the_common_grid(self, size):
        model = self.build().eval()
        for scales in self.test_scale_sets:
            out = model(torch.randn(2, 3, *size), scales=scales)
            num_scales, classes = len(scales), model.config.num_classes
            grid = grid_size(scaled_size(size, max(scales)))
            assert out.scales == scales
            assert out.score_maps.shape == (2, num_scales, classes, *grid)
            assert out.fused.shape == (2, classes, *grid)
            for scale, native in zip(scales, out.native_score_maps):
                assert native.shape == (2, classes, *grid_size(scaled_size(size, scale)))
            if self.merge == "attention":
                assert out.attention.shape == out.attention_logits.shape == (2, num_scales, *grid)
                torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(2, *grid))

    def test_share_net_scale_one_equals_single_scale_run(self):
        """One trunk, shared weights: scale 1 inside a set gives the same score map as alone."""
        model = self.build().eval()
        images = torch.randn(1, 3, *ODD_SIZE)
        single = model(images, scales=(1.0,), merge="average")
        for scales in [s for s in self.test_scale_sets if max(s) == 1.0]:
            out = model(images, scales=scales)
            torch.testing.assert_close(out.score_maps[:, scales.index(1.0)], single.fused)

    def test_gradients_reach_trunk_and_heads(self):
        model = self.build().train()
        out = model(torch.randn(2, 3, 65, 65), scales=self.train_scales)
        (out.fused.square().mean() + sum(s.mean() for s in out.native_score_maps)).backward()
        first_conv = model.trunk.layers.conv1_1.weight
        assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
        assert model.score_head.fc8.weight.grad.abs().sum() > 0
        if model.attention_head is not None:
            shared = model.config.head.kind == "shared"
            for name, parameter in model.attention_head.named_parameters():
                assert parameter.grad is not None, name
                if shared and name == "layers.score.bias":
                    # One bias added to every scale's logit: the softmax over scales cannot see it, so its
                    # gradient is zero up to rounding (a test that asked for > 0 passed or failed by rounding).
                    assert parameter.grad.abs().sum() < 1e-6, name
                else:
                    assert parameter.grad.abs().sum() > 0, name


class TestSharedHeadAttention(BaseModelTest):
    def test_fuses_an_unseen_scale_set(self):
        model = self.build().eval()
        out = model(torch.randn(1, 3, *ODD_SIZE), scales=(1.5, 1.0, 0.5, 0.25))
        assert out.attention.shape[1] == 4 and torch.isfinite(out.fused).all()

    def test_scale_feature_changes_the_logits(self):
        """With log2(s) as an input channel, the same features at another scale get other logits."""
        model = self.build().eval()
        head = model.attention_head
        with torch.no_grad():
            head.layers.score.weight.normal_()  # make the head's output depend visibly on its input
        features = [torch.randn(1, model.trunk.out_channels, 5, 5)] * 2
        logits = head(features, (1.0, 0.5), (5, 5))
        assert not torch.allclose(logits[:, 0], logits[:, 1])


class TestPaperHeadAttention(BaseModelTest):
    head = "paper"
    test_scale_sets = [(1.0, 0.75, 0.5), (0.5, 1.0, 0.75)]

    def test_refuses_another_scale_set_and_names_the_trained_one(self):
        model = self.build().eval()
        with pytest.raises(ScaleSetError, match=r"trained for scales \[1\.0, 0\.75, 0\.5\]") as error:
            model(torch.randn(1, 3, 64, 64), scales=(1.5, 1.0, 0.5, 0.25))
        assert "shared" in str(error.value)  # it says what to do instead

    def test_same_set_in_another_order_is_the_same_fusion(self):
        model = self.build().eval()
        images = torch.randn(1, 3, *ODD_SIZE)
        a = model(images, scales=(1.0, 0.75, 0.5))
        b = model(images, scales=(0.5, 1.0, 0.75))
        torch.testing.assert_close(a.fused, b.fused)
        torch.testing.assert_close(a.attention[:, [2, 0, 1]], b.attention)

    def test_average_and_max_work_for_any_set(self):
        model = self.build().eval()
        out = model(torch.randn(1, 3, 64, 64), scales=(2.0, 1.0), merge="max")
        assert out.attention is None and out.attention_logits is None


class TestAverageModel(BaseModelTest):
    merge = "average"

    def test_has_no_attention_head_and_says_so(self):
        model = self.build()
        assert model.attention_head is None
        with pytest.raises(ScaleSetError, match="no attention head"):
            model(torch.randn(1, 3, 32, 32), merge="attention")


class TestMaxModel(BaseModelTest):
    merge = "max"


class TestBatchNormTrunk(BaseModelTest):
    norm = "batch"


class TestGroupNormTrunk(BaseModelTest):
    norm = "group"
    test_scale_sets = [(1.0, 0.5)]


def test_largefov_structure_matches_the_paper():
    trunk = VGG16LargeFOV(TrunkConfig())
    layers = dict(trunk.layers.named_children())
    for name in ("pool1", "pool2", "pool3"):
        assert (layers[name].kernel_size, layers[name].stride, layers[name].padding) == (3, 2, 1)
    for name in ("pool4", "pool5"):
        assert (layers[name].kernel_size, layers[name].stride, layers[name].padding) == (3, 1, 1)
    for name in ("conv5_1", "conv5_2", "conv5_3"):
        assert layers[name].dilation == (2, 2)
    assert layers["fc6"].kernel_size == (3, 3) and layers["fc6"].dilation == (12, 12)
    assert layers["fc6"].out_channels == layers["fc7"].out_channels == 1024
    assert layers["fc7"].kernel_size == (1, 1)
    assert isinstance(layers["drop6"], nn.Dropout2d)
    convs = [name for name, layer in layers.items() if isinstance(layer, nn.Conv2d)]
    assert convs[:13] == [f"conv{s}_{i}" for s, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for i in range(1, n + 1)]
    # The parameter count follows from those shapes: 13 VGG convolutions, fc6 and fc7.
    vgg_channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    expected = sum(c_in * c_out * 9 + c_out for c_in, c_out in zip(vgg_channels, vgg_channels[1:]))
    expected += 512 * 1024 * 9 + 1024 + 1024 * 1024 + 1024
    assert sum(p.numel() for p in trunk.parameters()) == expected


def test_full_width_largefov_runs_forward_on_cpu():
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=21, head=HeadConfig(kind="paper"))).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 65, 81))
    assert out.fused.shape == (1, 21, 9, 11)  # output stride 8: ceil(65/8), ceil(81/8)
    assert torch.isfinite(out.fused).all()


@pytest.mark.parametrize("width", [1 / 4, 1 / 8])
def test_width_multiplier_keeps_the_structure(width):
    full, narrow = VGG16LargeFOV(TrunkConfig()), VGG16LargeFOV(TrunkConfig(width=width))
    full_layers, narrow_layers = dict(full.layers.named_children()), dict(narrow.layers.named_children())
    assert full_layers.keys() == narrow_layers.keys()
    for name, layer in full_layers.items():
        if isinstance(layer, nn.Conv2d):
            other = narrow_layers[name]
            assert (other.kernel_size, other.dilation, other.padding) == (
                layer.kernel_size,
                layer.dilation,
                layer.padding,
            )
            assert other.out_channels == max(1, round(layer.out_channels * width))
    assert narrow.out_channels == round(1024 * width)


def test_output_grid_is_ceil_of_input_over_eight():
    trunk = VGG16LargeFOV(TrunkConfig(width=1 / 16)).eval()
    for size in [(8, 8), (9, 17), (97, 131), (513, 1)]:
        assert tuple(trunk(torch.randn(1, 3, *size)).shape[-2:]) == tuple(math.ceil(s / 8) for s in size)


def test_config_errors_list_the_valid_choices():
    with pytest.raises(ValueError, match="valid: none, batch, group"):
        TrunkConfig(norm="layer")
    with pytest.raises(ValueError, match="valid: paper, shared"):
        HeadConfig(kind="transformer")
    with pytest.raises(ValueError, match="repeats"):
        ModelConfig(num_classes=3, scales=(1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        ModelConfig(num_classes=3, scales=(1.0, -0.5))
