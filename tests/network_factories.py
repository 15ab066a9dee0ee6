"""Factory functions for the ``--factory`` importer's tests: tiny modules with the three output forms it accepts."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

NUM_CLASSES = 4


class TinyNet(nn.Module):
    """Two convolutions, logits at stride 2; returns its logits in the form ``output`` names."""

    def __init__(self, output: str = "tensor") -> None:
        super().__init__()
        self.output = output
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Conv2d(8, NUM_CLASSES, 1)

    def forward(self, images):
        logits = self.classifier(self.body(images))
        if self.output == "dict":
            return {"out": logits, "aux": logits.detach()}
        if self.output == "object":
            return SimpleNamespace(logits=logits)
        return logits


def tensor_net() -> nn.Module:
    torch.manual_seed(3)
    return TinyNet("tensor")


def dict_net() -> nn.Module:
    torch.manual_seed(3)
    return TinyNet("dict")


def object_net() -> nn.Module:
    torch.manual_seed(3)
    return TinyNet("object")


def not_a_module():
    return "a string"
