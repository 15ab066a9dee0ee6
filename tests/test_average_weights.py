"""scripts/average_weights.py: the mean of several checkpoints, loadable like any other; mismatches refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from segscale.checkpoint import load_checkpoint
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


def test_an_averaged_checkpoint_loads_through_the_predictor(make_checkpoint, tmp_path):
    a, b = make_checkpoint("a.pt", seed=0), make_checkpoint("b.pt", seed=1)
    out = tmp_path / "soup.pt"
    assert average_weights.main([str(out), str(a), str(b)]) == 0
    averaged, metadata = load_checkpoint(out)
    (weights_a, _), (weights_b, _) = load_checkpoint(a), load_checkpoint(b)
    key = next(k for k, v in weights_a.items() if v.is_floating_point() and not torch.equal(v, weights_b[k]))
    torch.testing.assert_close(averaged[key], (weights_a[key] + weights_b[key]) / 2)
    assert "average of a.pt, b.pt" in metadata.name
    assert Predictor.from_checkpoint(out) is not None


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
