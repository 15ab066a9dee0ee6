"""Shared fixtures: tiny models and checkpoints built on the spot (nothing is downloaded).

The app's tests (test_app.py, test_pages.py) also get a checkpoint folder the app finds
(``checkpoint_dir``, ``shapes_dir``); their helpers for driving a page are in tests/app_support.py.
"""

from __future__ import annotations

import pytest
import torch

from segscale.checkpoint import CheckpointMetadata, save_checkpoint
from segscale.config import HeadConfig, ModelConfig, TrunkConfig
from segscale.modeling import build_model

TINY_CLASSES = ("background", "disc", "bar")
TINY_PALETTE = ((0, 0, 0), (200, 40, 40), (40, 200, 40))


def tiny_config(
    head: str = "shared", merge: str = "attention", scales=(1.0, 0.75, 0.5), norm: str = "none", num_classes: int = len(TINY_CLASSES)
) -> ModelConfig:
    """A width-1/16 LargeFOV: the real structure, few enough channels for fast tests."""
    return ModelConfig(
        num_classes=num_classes,
        trunk=TrunkConfig(width=1 / 16, norm=norm),
        head=HeadConfig(kind=head),
        scales=scales,
        merge=merge,
    )


def tiny_metadata(config: ModelConfig, classes=TINY_CLASSES, palette=TINY_PALETTE, **extra) -> CheckpointMetadata:
    """Metadata of a tiny model; its scale range is the shipped models' (0.25 to 2) unless given."""
    extra.setdefault("scale_range", (0.25, 2.0))
    return CheckpointMetadata(model=config, classes=classes, palette=palette, name="tiny test model", **extra)


@pytest.fixture
def make_checkpoint(tmp_path):
    """make_checkpoint(head=..., merge=..., scaleshapes=False, ...) -> path of a freshly initialised tiny checkpoint.

    With ``scaleshapes=True`` it predicts ScaleShapes' seven classes (for evaluation code).
    """

    def make(name: str = "tiny.pt", seed: int = 0, scaleshapes: bool = False, **config_kwargs):
        torch.manual_seed(seed)
        classes, palette = TINY_CLASSES, TINY_PALETTE
        if scaleshapes:
            from segscale.data.scaleshapes import CLASSES, PALETTE

            classes, palette = CLASSES, PALETTE
        config = tiny_config(num_classes=len(classes), **config_kwargs)
        model = build_model(config)
        return save_checkpoint(tmp_path / name, model, tiny_metadata(config, classes, palette))

    return make


def _point_the_app_to(folder, monkeypatch) -> None:
    # Imported here, not at the top: the package's own tests need no Streamlit.
    from ui.common import CHECKPOINT_DIR_ENV

    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(folder))


@pytest.fixture
def checkpoint_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny shared-head checkpoint (three classes of its own), which the app lists."""
    make_checkpoint("tiny.pt")
    _point_the_app_to(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture
def shapes_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny checkpoint for ScaleShapes' seven classes, which the pages list."""
    make_checkpoint("shapes.pt", scaleshapes=True)
    _point_the_app_to(tmp_path, monkeypatch)
    return tmp_path
