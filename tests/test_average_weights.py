"""scripts/average_weights.py: the mean of several checkpoints, loadable like any other; mismatches refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from segscale.checkpoint import load_checkpoint
from segscale.inference import FastPathOptions
from segscale.modeling import build_model
from segscale.predictor import Predictor

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_weights.py"
spec = importlib.util.spec_from_file_location("average_weights", SCRIPT)
average_weights = importlib.util.module_from_spec(spec)
spec.loader.exec_module(average_weights)


def test_floating_weights_are_averaged_and_integer_buffers_taken_from_the_last():
    first = {"w": torch.tensor([1.0, 3.0]), "steps": torch.tensor(5)}
    second = {"w": torch.tensor([3.0, 7.0]), "steps": torch.tensor(9)}
    averaged = average_weights.average_state_dicts([first, second])
    assert torch.equal(averaged["w"], torch.tensor([2.0, 5.0]))
    assert averaged["steps"].item() == 9


def test_an_averaged_checkpoint_holds_the_mean_and_predicts_with_it(make_checkpoint, tmp_path):
    a, b = make_checkpoint("a.pt", seed=0, norm="batch"), make_checkpoint("b.pt", seed=1, norm="batch")
    out = tmp_path / "soup.pt"
    assert average_weights.main([str(out), str(a), str(b)]) == 0
    averaged, metadata = load_checkpoint(out)
    (weights_a, metadata_a), (weights_b, _) = load_checkpoint(a), load_checkpoint(b)
    assert averaged.keys() == weights_a.keys()
    floating = [k for k, v in weights_a.items() if v.is_floating_point()]
    assert any(not torch.equal(weights_a[k], weights_b[k]) for k in floating)  # the two really differ
    for key in floating:
        torch.testing.assert_close(averaged[key], (weights_a[key] + weights_b[key]) / 2, msg=key)
    counters = [k for k in weights_a if k.endswith("num_batches_tracked")]
    assert counters and all(torch.equal(averaged[k], weights_b[k]) for k in counters)
    assert metadata.model == metadata_a.model and "average of a.pt, b.pt" in metadata.name

    # The predictor loads the file and predicts with the mean weights, not with either input's.
    image = np.random.default_rng(0).integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
    options = FastPathOptions(autocast="off")
    loaded = Predictor.from_checkpoint(out, device="cpu", options=options).predict(image)
    mean_model = build_model(metadata.model)
    mean_model.load_state_dict(
        {k: (weights_a[k] + weights_b[k]) / 2 if k in floating else weights_b[k] for k in weights_a}
    )
    expected = Predictor(mean_model, metadata, device="cpu", options=options).predict(image)
    assert loaded.labels.shape == (48, 40) and loaded.fused.shape == expected.fused.shape
    np.testing.assert_allclose(loaded.fused, expected.fused, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(loaded.labels, expected.labels)
    first = Predictor.from_checkpoint(a, device="cpu", options=options).predict(image)
    assert not np.allclose(loaded.fused, first.fused, atol=1e-3)


def test_checkpoints_of_different_architectures_are_refused_with_a_message(make_checkpoint, tmp_path, capsys):
    a, b = make_checkpoint("a.pt"), make_checkpoint("b.pt", head="paper")
    assert average_weights.main([str(tmp_path / "soup.pt"), str(a), str(b)]) == 2
    assert "different model configurations" in capsys.readouterr().err
    assert not (tmp_path / "soup.pt").exists()


def test_writing_over_an_input_is_refused(make_checkpoint):
    a, b = make_checkpoint("a.pt"), make_checkpoint("b.pt", seed=1)
    before = a.read_bytes()
    with pytest.raises(SystemExit):
        average_weights.main([str(a), str(a), str(b)])
    assert a.read_bytes() == before
