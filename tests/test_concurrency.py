"""Many people at once: one Predictor called from several threads, its first-call decisions still open.

The app shares one cached Predictor between sessions, so its first predictions can arrive
together. The first call decides bf16 autocast (running the image both ways) and may cast the
shared weights to bf16; a second thread must neither decide again nor run on weights cast
halfway. On a CPU without AMX the Predictor would decide "float32" at once, so the test makes
bf16 look worth trying, which leaves the decision open until the first image.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from segscale import devices, inference
from segscale.inference import FastPathOptions
from segscale.predictor import Predictor

THREADS = 8


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    sizes = [(40, 56), (48, 48), (33, 61), (64, 40), (40, 56), (52, 36), (45, 45), (60, 70)]
    return [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for size in sizes]


def _fresh_predictor(checkpoint, autocast: str) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu", options=FastPathOptions(autocast=autocast))


@pytest.fixture
def bf16_looks_worth_trying(monkeypatch):
    """As on CUDA or an AMX CPU: autocast="auto" stays undecided until the first image."""
    monkeypatch.setattr(devices, "bf16_pays_off", lambda device: True)
    monkeypatch.setattr(devices, "bf16_worth_probing", lambda device: True)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)


def _predict_together(predictor: Predictor, images, scales, merge) -> list:
    """Every image in its own thread, all released at the same moment; exceptions are returned, not lost."""
    barrier = threading.Barrier(len(images))
    results: list = [None] * len(images)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = predictor.predict(images[index], scales=scales, merge=merge)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a prediction never finished (deadlock?)"
    return results


@pytest.mark.parametrize("merge, scales", [("attention", (1.0, 0.75, 0.5)), ("average", (1.0, 0.5))])
def test_eight_first_predictions_at_once_equal_their_sequential_results(
    make_checkpoint, bf16_looks_worth_trying, monkeypatch, merge, scales
):
    checkpoint = make_checkpoint(norm="batch")
    images = _images()
    predictor = _fresh_predictor(checkpoint, "auto")
    assert predictor.precision == "undecided", "the test needs the autocast decision open"

    decisions, fast_paths = [], []
    decide = inference.FastMultiScale._decide_autocast

    def counted(self, *args, **kwargs):
        decisions.append(threading.get_ident())
        fast_paths.append(self)  # the fast path inside the Predictor, to read its weights' dtypes below
        return decide(self, *args, **kwargs)

    monkeypatch.setattr(inference.FastMultiScale, "_decide_autocast", counted)
    together = _predict_together(predictor, images, scales, merge)

    errors = [r for r in together if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} of {THREADS} threads failed, first: {errors[0]!r}"
    assert len(decisions) == 1, f"autocast was decided {len(decisions)} times"
    assert predictor.precision in ("bf16 autocast", "float32")
    if predictor.precision == "bf16 autocast":  # weights went to bf16 in one piece
        dtypes = {m.weight.dtype for m in fast_paths[0].model.modules() if isinstance(m, torch.nn.Conv2d)}
        assert dtypes == {torch.bfloat16}

    # The sequential twin: a fresh Predictor that makes the same decision, one image after another.
    sequential = _fresh_predictor(checkpoint, "bf16" if predictor.precision == "bf16 autocast" else "off")
    for image, result in zip(images, together):
        expected = sequential.predict(image, scales=scales, merge=merge)
        np.testing.assert_array_equal(result.image, image)
        np.testing.assert_array_equal(result.labels, expected.labels)
        np.testing.assert_allclose(result.fused, expected.fused, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result.score_maps, expected.score_maps, rtol=1e-5, atol=1e-5)
        if merge == "attention":
            np.testing.assert_allclose(result.attention, expected.attention, rtol=1e-5, atol=1e-5)


def test_the_decision_is_kept_for_later_threads(make_checkpoint, bf16_looks_worth_trying):
    """After the first wave, a second wave runs on the decided precision without deciding again."""
    predictor = _fresh_predictor(make_checkpoint(), "auto")
    images = _images()
    first = _predict_together(predictor, images[:4], None, None)
    assert not any(isinstance(r, BaseException) for r in first)
    decided, agreement = predictor.precision, predictor.autocast_agreement
    second = _predict_together(predictor, images[4:], None, None)
    assert not any(isinstance(r, BaseException) for r in second)
    assert (predictor.precision, predictor.autocast_agreement) == (decided, agreement)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_replays_give_each_thread_its_own_output(make_checkpoint):
    """Same shape, different images: every caller of one captured graph gets its own result."""
    checkpoint = make_checkpoint()
    options = FastPathOptions(cuda_graphs=True, autocast="off")
    predictor = Predictor.from_checkpoint(checkpoint, device="cuda", options=options)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8) for _ in range(THREADS)]
    together = _predict_together(predictor, images, None, None)
    assert not any(isinstance(r, BaseException) for r in together)
    sequential = Predictor.from_checkpoint(checkpoint, device="cuda", options=FastPathOptions(autocast="off"))
    for image, result in zip(images, together):
        expected = sequential.predict(image)
        np.testing.assert_array_equal(result.image, image)
        np.testing.assert_allclose(result.fused, expected.fused, rtol=1e-4, atol=1e-4)


def test_replayed_outputs_are_copies():
    """What a CUDA graph replay hands out (checked on the CPU): new storage for every tensor, same values."""
    from segscale.modeling.multiscale import MultiScaleOutput

    maps = torch.rand(1, 2, 3, 4, 5)
    output = MultiScaleOutput(
        (1.0, 0.5), "attention", (maps[:, 0], maps[:, 1]), maps, maps[:, :, 0], maps[:, :, 0].softmax(1), maps[:, 0]
    )
    copied = inference._cloned_output(output)
    assert copied.scales == output.scales and copied.merge == output.merge
    for name in ("score_maps", "attention_logits", "attention", "fused"):
        original, copy = getattr(output, name), getattr(copied, name)
        assert torch.equal(original, copy) and copy.data_ptr() != original.data_ptr(), name
    assert all(c.data_ptr() != o.data_ptr() for c, o in zip(copied.native_score_maps, output.native_score_maps))
