"""DeepLab-LargeFOV on VGG-16: the share-net trunk of Chen et al. (CVPR 2016), Sec. 3.1.

Built from torchvision's VGG-16 layer plan (``torchvision.models.vgg.cfgs["D"]``) with the
changes DeepLab-LargeFOV makes (Chen et al., ICLR 2015):

* pool1-3: 3x3 max pooling, stride 2, padding 1 (so a 513-pixel side gives 65 cells);
* pool4 and pool5: 3x3, stride 1, padding 1, keeping the output stride at 8;
* conv5_x: atrous (dilation 2), since pool4 no longer halves the grid;
* fc6: a 3x3 convolution with dilation 12 and 1024 filters (the "large field of view");
* fc7: a 1x1 convolution with 1024 filters; dropout after fc6 and fc7;
* fc8: a 1x1 convolution to C classes (here the score head, see :func:`build_score_head`).

``width`` multiplies every layer's channel count, keeping the structure (kernel sizes,
strides, dilations, receptive field): width 1 is the paper's network; width 1/8 is small
enough to train and run on a 2-core CPU. ``norm`` optionally adds batch or group
normalisation after every convolution, which the paper does not have but which makes a
narrow network trainable from scratch.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.models.vgg import cfgs as torchvision_vgg_plans

from ..config import TrunkConfig

OUTPUT_STRIDE = 8
FC_CHANNELS = 1024  # DeepLab-LargeFOV's fc6 and fc7 (VGG-16's were 4096)
FC6_DILATION = 12
CONV5_DILATION = 2


def scaled_channels(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation placed after a convolution ("none", "batch" or "group")."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        # Groups of at least 4 channels, at most 32 groups (Wu & He's default).
        groups = max(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0 and channels // g >= min(4, channels))
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}; valid: none, batch, group")


def _conv_block(name: str, in_ch: int, out_ch: int, kernel: int, dilation: int, norm: str):
    padding = dilation * (kernel // 2)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding, dilation=dilation, bias=(norm == "none"))
    layers = [(name, conv)]
    if norm != "none":
        layers.append((f"{name}_norm", norm_layer(norm, out_ch)))
    layers.append((f"{name}_relu", nn.ReLU(inplace=True)))
    return layers


class VGG16LargeFOV(nn.Module):
    """conv1_1 ... fc7 of DeepLab-LargeFOV. Input (B, 3, H, W), output fc7 (B, F, ceil(H/8), ceil(W/8)).

    Layer names follow the Caffe model (conv1_1, pool1, ..., fc6, fc7) so that the ImageNet
    conversion in :mod:`segscale.pretrained` and a reader can match them by eye.
    """

    output_stride = OUTPUT_STRIDE

    def __init__(self, config: TrunkConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[tuple[str, nn.Module]] = []
        in_ch, stage, index = 3, 1, 1
        for item in torchvision_vgg_plans["D"]:  # [64, 64, "M", 128, 128, "M", 256 x3, "M", 512 x3, "M", 512 x3, "M"]
            if item == "M":
                # Stages 1-3 halve the grid; stages 4-5 keep it (stride 1) so the output stride is 8.
                stride = 2 if stage <= 3 else 1
                layers.append((f"pool{stage}", nn.MaxPool2d(3, stride=stride, padding=1)))
                stage, index = stage + 1, 1
                continue
            out_ch = scaled_channels(item, config.width)
            dilation = CONV5_DILATION if stage == 5 else 1
            layers += _conv_block(f"conv{stage}_{index}", in_ch, out_ch, 3, dilation, config.norm)
            in_ch, index = out_ch, index + 1
        fc_ch = scaled_channels(FC_CHANNELS, config.width)
        layers += _conv_block("fc6", in_ch, fc_ch, 3, FC6_DILATION, config.norm)
        layers.append(("drop6", nn.Dropout2d(config.dropout)))
        layers += _conv_block("fc7", fc_ch, fc_ch, 1, 1, config.norm)
        self.layers = nn.Sequential(OrderedDict(layers))
        self.out_channels = fc_ch
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)  # (B, F, ceil(H/8), ceil(W/8))


def build_score_head(in_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """drop7 and fc8: features (B, F, h, w) -> score map f^s (B, C, h, w), before softmax."""
    fc8 = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.normal_(fc8.weight, std=0.01)  # DeepLab's initialisation of the new classifier
    nn.init.zeros_(fc8.bias)
    return nn.Sequential(OrderedDict([("drop7", nn.Dropout2d(dropout)), ("fc8", fc8)]))
