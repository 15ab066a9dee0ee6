"""Shared fixtures: tiny models and checkpoints built on the spot (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch

from segscale.checkpoint import CheckpointMetadata, save_checkpoint
from segscale.config import HeadConfig, ModelConfig, TrunkConfig
from segscale.modeling import build_model

TINY_CLASSES = ("background", "disc", "bar")
TINY_PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))


def tiny_config(head: str = "shared", merge: str = "attention", scales=(1.0, 0.75, 0.5), norm: str = "none") -> ModelConfig:
    """A width-1/16 LargeFOV: the real structure, few enough channels for fast tests."""
    return ModelConfig(
        num_classes=len(TINY_CLASSES),
        trunk=TrunkConfig(width=1 / 16, norm=norm),
        head=HeadConfig(kind=head),
        scales=scales,
        merge=merge,
    )


def tiny_metadata(config: ModelConfig, **extra) -> CheckpointMetadata:
    return CheckpointMetadata(model=config, classes=TINY_CLASSES, palette=TINY_PALETTE, name="tiny test model", **extra)


@pytest.fixture
def make_checkpoint(tmp_path):
    """make_checkpoint(head=..., merge=..., ...) -> path of a freshly initialised tiny checkpoint."""

    def make(name: str = "tiny.pt", seed: int = 0, **config_kwargs):
        torch.manual_seed(seed)
        config = tiny_config(**config_kwargs)
        model = build_model(config)
        return save_checkpoint(tmp_path / name, model, tiny_metadata(config))

    return make
