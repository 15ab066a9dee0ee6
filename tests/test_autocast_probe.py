"""bf16 by measurement: the first image is timed both ways, and bf16 is kept only if faster and its labels agree."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from segscale.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from segscale.inference import AUTOCAST_MAX_TIME_RATIO, FastMultiScale, FastPathOptions
from segscale.modeling import build_model

from .conftest import tiny_config


def _probed(monkeypatch, float32_seconds: float, bf16_seconds: float) -> FastMultiScale:
    """A fast path whose first image takes the given (fake) seconds per call in each precision."""
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr("segscale.inference.time", SimpleNamespace(perf_counter=lambda: clock.now))
    fast = FastMultiScale(
        build_model(tiny_config()), IMAGENET_MEAN, IMAGENET_STD, "cpu", FastPathOptions(bf16_weights=False)
    )
    fast.use_autocast = None  # undecided, as on a machine with native bf16
    real_forward = fast.forward

    def forward(images, scales, merge, autocast, cache_casts=True):
        clock.now += bf16_seconds if autocast else float32_seconds
        output = real_forward(images, scales, merge, False, cache_casts)  # same numbers: the labels agree
        return output

    monkeypatch.setattr(fast, "forward", forward)
    fast.run(np.random.default_rng(4).integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
    return fast


@pytest.mark.parametrize(
    "bf16_seconds, kept",
    [(0.5, True), (AUTOCAST_MAX_TIME_RATIO * 1.0, True), (0.95, False), (1.7, False)],
)
def test_bf16_is_kept_only_where_it_measured_faster(monkeypatch, bf16_seconds, kept):
    fast = _probed(monkeypatch, float32_seconds=1.0, bf16_seconds=bf16_seconds)
    assert fast.autocast_agreement == 1.0
    assert fast.autocast_seconds == pytest.approx((1.0, bf16_seconds))
    assert fast.use_autocast is kept
