"""ImageNet initialisation of DeepLab-LargeFOV from torchvision's VGG-16, converted as DeepLab did.

torchvision's ``VGG16_Weights.IMAGENET1K_V1`` holds ``features.*`` (13 convolutions) and
``classifier.*`` (three fully connected layers). DeepLab-LargeFOV keeps the convolutions as
they are and turns the first two fully connected layers into its fc6 and fc7:

* fc6: VGG's fc6 is 4096 x (512 x 7 x 7). View it as 4096 filters of 512 x 7 x 7, keep every
  4th filter (1024) and subsample each 7x7 kernel at rows and columns 0, 3, 6 to 3x3; the
  dilation of 12 in the atrous fc6 makes up for the coarser sampling.
* fc7: VGG's fc7 is 4096 x 4096; keep every 4th row and every 4th column (1024 x 1024, as 1x1).
* fc8 (VGG's 1000-class classifier) is dropped: the score head is initialised afresh.

Only the full-width trunk without normalisation layers matches these weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import TrunkConfig

# torchvision's index in `features` of each convolution, in order.
_TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_DEEPLAB_CONV_NAMES = (
    "conv1_1",
    "conv1_2",
    "conv2_1",
    "conv2_2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv5_1",
    "conv5_2",
    "conv5_3",
)
FILTER_STEP = 4  # 4096 -> 1024 filters
KERNEL_STEP = 3  # 7x7 -> 3x3 (rows and columns 0, 3, 6)


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights could not be obtained or do not fit."""


def convert_vgg16_state_dict(vgg16_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision VGG-16 state dict -> state dict of :class:`VGG16LargeFOV` (keys ``layers.*``)."""
    missing = [
        key
        for key in [f"features.{i}.weight" for i in _TORCHVISION_CONV_INDICES]
        + ["classifier.0.weight", "classifier.3.weight"]
        if key not in vgg16_state
    ]
    if missing:
        raise PretrainedWeightsError(
            f"not a torchvision VGG-16 state dict: missing {missing[:3]}{'...' if len(missing) > 3 else ''}"
        )

    converted: dict[str, Tensor] = {}
    for index, name in zip(_TORCHVISION_CONV_INDICES, _DEEPLAB_CONV_NAMES):
        converted[f"layers.{name}.weight"] = vgg16_state[f"features.{index}.weight"].clone()
        converted[f"layers.{name}.bias"] = vgg16_state[f"features.{index}.bias"].clone()

    fc6_weight = vgg16_state["classifier.0.weight"]  # (4096, 25088)
    if fc6_weight.shape != (4096, 512 * 7 * 7):
        raise PretrainedWeightsError(f"VGG-16 fc6 should be 4096 x 25088, got {tuple(fc6_weight.shape)}")
    fc6_weight = fc6_weight.view(4096, 512, 7, 7)[::FILTER_STEP, :, ::KERNEL_STEP, ::KERNEL_STEP]  # (1024, 512, 3, 3)
    converted["layers.fc6.weight"] = fc6_weight.contiguous().clone()
    converted["layers.fc6.bias"] = vgg16_state["classifier.0.bias"][::FILTER_STEP].clone()

    fc7_weight = vgg16_state["classifier.3.weight"]  # (4096, 4096)
    converted["layers.fc7.weight"] = (
        fc7_weight[::FILTER_STEP, ::FILTER_STEP].contiguous().view(1024, 1024, 1, 1).clone()
    )
    converted["layers.fc7.bias"] = vgg16_state["classifier.3.bias"][::FILTER_STEP].clone()
    return converted


def load_imagenet_vgg16_state_dict(progress: bool = True) -> dict[str, Tensor]:
    """torchvision's ImageNet VGG-16 weights, from its cache or downloaded (about 528 MB).

    Raises :class:`PretrainedWeightsError` with what to do when neither works (no network).
    """
    from torchvision.models import VGG16_Weights

    weights = VGG16_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as error:  # URLError, OSError, hash mismatch: all mean "not available here"
        raise PretrainedWeightsError(
            f"could not load torchvision's VGG16_Weights.IMAGENET1K_V1 ({error}). It is downloaded from "
            f"{weights.url} into torch.hub's cache ({torch.hub.get_dir()}/checkpoints); on a machine without "
            "internet, copy the file there, or train from scratch (imagenet_init off)."
        ) from error


def initialize_from_imagenet(trunk: nn.Module, vgg16_state: dict[str, Tensor] | None = None) -> None:
    """Load converted ImageNet VGG-16 weights into a full-width, un-normalised LargeFOV trunk."""
    config: TrunkConfig = trunk.config
    if config.name != "vgg16_largefov" or config.width != 1.0 or config.norm != "none":
        raise PretrainedWeightsError(
            "ImageNet initialisation fits only trunk vgg16_largefov with width 1 and norm 'none'; "
            f"this trunk is {config.name} with width {config.width} and norm {config.norm!r}"
        )
    state = convert_vgg16_state_dict(vgg16_state if vgg16_state is not None else load_imagenet_vgg16_state_dict())
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise PretrainedWeightsError(
            f"converted weights do not fit the trunk: missing {missing}, unexpected {unexpected}"
        )
