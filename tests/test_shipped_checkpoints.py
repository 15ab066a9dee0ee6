"""The models in checkpoints/ are what checkpoints/README.md says they are.

The full figures (500 test images) come from `segscale evaluate`; here a few held-out test
images guard against a swapped, truncated or untrained file, and the file-level promises
(size, head, scale sets) are checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segscale import Predictor
from segscale.data.scaleshapes import CLASSES
from segscale.evaluation import evaluate_scaleshapes

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
DEMO = CHECKPOINTS / "scaleshapes_demo.pt"
PAPER_HEAD = CHECKPOINTS / "scaleshapes_paper_head.pt"
MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def demo() -> Predictor:
    return Predictor.from_checkpoint(DEMO, device="cpu")


@pytest.mark.parametrize("path", [DEMO, PAPER_HEAD], ids=lambda p: p.name)
def test_each_shipped_file_is_at_most_25_mb_and_predicts_scaleshapes(path):
    assert path.exists(), f"{path} ships with the repository"
    assert path.stat().st_size <= MAX_BYTES
    assert Predictor.from_checkpoint(path, device="cpu").classes == list(CLASSES)


def test_the_demo_has_a_shared_head_that_fuses_scale_sets_it_never_saw_as_a_set(demo):
    image = np.random.default_rng(0).integers(0, 256, size=(96, 120, 3), dtype=np.uint8)
    for scales in [(2.0, 1.0, 0.5, 0.25), (1.5, 0.5), (0.25, 0.3)]:
        result = demo.predict(image, scales=scales)
        assert result.scales == scales
        np.testing.assert_allclose(result.attention.sum(axis=0), 1.0, atol=1e-4)


def test_the_paper_head_model_is_tied_to_its_set():
    predictor = Predictor.from_checkpoint(PAPER_HEAD, device="cpu")
    assert predictor.default_scales == (1.0, 0.75, 0.5)
    with pytest.raises(ValueError, match=r"trained for scales \[1.0, 0.75, 0.5\]"):
        predictor.predict(np.zeros((64, 64, 3), np.uint8), scales=(1.0, 0.5))


def test_the_demo_segments_held_out_test_images(demo):
    # 8 test images: a trained model scores well above 0.5 here (checkpoints/README.md has
    # the 500-image figures); an untrained or background-only one scores about 0.13.
    report = evaluate_scaleshapes(demo, "test", 8, (1.0, 0.75, 0.5), ("attention",))
    assert report["merges"]["attention"]["miou"] > 0.5
