"""The chain of gates written out at one cell (segscale.diagnostics.gates): its numbers against an
independent computation and against the model's own prediction, the inspector's command-line twin, and the
other views of hierarchical attention outside the app (the saved figure, what a Predictor does not offer)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from segscale import cli
from segscale import diagnostics as diag
from segscale.modeling.fusion import hierarchical_chain
from segscale.predictor import Predictor

SCALE_SETS = [(1.0, 0.5), (1.0, 2.0, 0.5), (0.5, 2.0, 0.25, 1.0)]  # unsorted: the chain orders them itself


def independent_chain(scores: np.ndarray, logits: np.ndarray, scales):
    """Effective weights and fused scores written another way: coarsest scale first (it has the last
    word in Tao et al.'s chain), each weight its gate times what the coarser scales left over (1 minus
    the sum of their weights); the finest scale takes the rest, its own gate unused."""
    order = np.argsort(scales)  # coarsest first
    gates = 1.0 / (1.0 + np.exp(-logits))
    weights = np.zeros(len(scales))
    left = 1.0
    for position, k in enumerate(order):
        finest = position == len(order) - 1
        weights[k] = left if finest else left * gates[k]
        left -= weights[k]
    return weights, (weights[:, None] * scores).sum(axis=0)


@pytest.mark.parametrize("scales", SCALE_SETS, ids=lambda s: f"{len(s)}-scales")
def test_chain_at_a_cell_matches_an_independent_computation_and_the_model(scales):
    rng = np.random.default_rng(len(scales))
    scores = rng.normal(size=(len(scales), 5)) * 3
    logits = rng.normal(size=len(scales)) * 2
    chain = diag.gate_chain_at(scores, logits, scales)

    weights, fused = independent_chain(scores, logits, scales)
    assert chain.scales == tuple(sorted(scales, reverse=True))
    np.testing.assert_allclose(chain.weights_in_scale_order(), weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chain.fused, fused, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sum(chain.weights), 1.0, atol=1e-12)
    # Every running step is the recurrence: r^k = a^k f^k + (1 - a^k) r^(k-1), from the finest scale's scores.
    np.testing.assert_allclose(chain.running[0], scores[chain.order[0]])
    for k in range(1, len(scales)):
        expected = chain.gates[k] * scores[chain.order[k]] + (1 - chain.gates[k]) * np.asarray(chain.running[k - 1])
        np.testing.assert_allclose(chain.running[k], expected, atol=1e-12)
    # The model's chain gives the same numbers.
    model_fused, model_weights = hierarchical_chain(
        torch.from_numpy(scores)[None, :, :, None, None], torch.from_numpy(logits)[None, :, None, None], scales
    )
    np.testing.assert_allclose(chain.fused, model_fused[0, :, 0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(chain.weights_in_scale_order(), model_weights[0, :, 0, 0].numpy(), atol=1e-12)


def test_weights_are_written_as_their_products():
    chain = diag.gate_chain_at(np.zeros((3, 2)), np.array([0.0, 1.0, -1.0]), (1.0, 0.5, 0.75))
    assert chain.scales == (1.0, 0.75, 0.5)
    assert chain.weight_factors(0) == [("1-a", 1), ("1-a", 2)]  # w^1 = (1 - a^0.75)(1 - a^0.5)
    assert chain.weight_factors(1) == [("a", 1), ("1-a", 2)]
    assert chain.weight_factors(2) == [("a", 2)]
    text = "\n".join(chain.to_text(np.zeros((3, 2)), ("a", "b"), (0, 1)))
    a75, a05 = 1 / (1 + np.exp(1.0)), 1 / (1 + np.exp(-1.0))
    assert (
        f"w^1      = (1 - a^0.75) x (1 - a^0.5) = (1 - {a75:.4f}) x (1 - {a05:.4f}) = {(1 - a75) * (1 - a05):.4f}"
        in text
    )
    assert f"w^0.5    = a^0.5 = {a05:.4f}" in text
    assert "(finest: the chain starts here, gate unused)" in text.splitlines()[2]
    latex = chain.latex_gates()
    assert (
        rf"w^{{(0.75)}} &= a^{{(0.75)}} \cdot (1 - a^{{(0.5)}}) = {a75:.4f} \cdot (1 - {a05:.4f}) = "
        rf"{a75 * (1 - a05):.4f}" in latex
    )


def test_one_scale_weighs_one():
    chain = diag.gate_chain_at(np.ones((1, 2)), np.array([3.0]), (1.0,))
    assert chain.weights == (1.0,) and chain.fused == (1.0, 1.0)
    assert re.search(r"w\^1 += 1 = 1\.0000", "\n".join(chain.to_text(np.ones((1, 2)), ("a", "b"), (0,))))


def test_bad_shapes_are_a_message():
    with pytest.raises(ValueError, match="gate chain needs"):
        diag.gate_chain_at(np.zeros((3, 2)), np.zeros(2), (1.0, 0.75, 0.5))


@pytest.fixture
def hierarchical_prediction(make_checkpoint):
    predictor = Predictor.from_checkpoint(make_checkpoint("gates.pt", merge="hierarchical"), device="cpu")
    image = np.random.default_rng(3).integers(0, 256, size=(45, 61, 3), dtype=np.uint8)
    return predictor, predictor.predict(image, scales=(1.0, 0.5, 0.75), merge="hierarchical")


def test_the_pixel_breakdown_writes_out_the_models_own_chain(hierarchical_prediction):
    predictor, prediction = hierarchical_prediction
    breakdown = diag.pixel_breakdown(prediction, 20, 33, predictor.classes, top_k=3)
    i, j = breakdown.cell
    chain = breakdown.gate_chain
    assert chain is not None and breakdown.softmax is None
    assert [prediction.scales[k] for k in chain.order] == [1.0, 0.75, 0.5]
    np.testing.assert_allclose(chain.weights_in_scale_order(), prediction.attention[:, i, j], rtol=0, atol=1e-6)
    np.testing.assert_allclose(chain.fused, prediction.fused[:, i, j], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        chain.gates, 1 / (1 + np.exp(-prediction.gate_logits[list(chain.order), i, j])), atol=1e-6
    )
    assert breakdown.fusion("hierarchical").weights == chain.weights_in_scale_order()
    assert breakdown.methods == ("average", "max", "hierarchical") and breakdown.own.method == "hierarchical"
    assert len(breakdown.latex_blocks()) == 2 and r"\sigma(" in breakdown.latex_blocks()[0]


def test_inspect_on_the_command_line_writes_out_the_chain(make_checkpoint, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, size=(40, 57, 3), dtype=np.uint8)).save(image)
    argv = [
        "inspect",
        str(image),
        "--pixel",
        "20",
        "30",
        "--checkpoint",
        str(make_checkpoint("gates.pt", merge="hierarchical")),
        "--device",
        "cpu",
    ]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Hierarchical chain (Tao et al. 2020), finest scale first" in text and "effective weights" in text
    assert "no softmax over scales" in text and "Eq. 2   not used" in text
    weights = [float(v) for v in re.findall(r"^  w\^\S+\s+=.* = (-?\d\.\d{4})$", text, flags=re.MULTILINE)]
    assert cli.main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    chain = data["gate_chain"]
    assert chain["scales_finest_first"] == [1.0, 0.75, 0.5]
    np.testing.assert_allclose(weights, chain["effective_weights"], atol=5e-5)  # the text writes the same numbers
    np.testing.assert_allclose(sum(chain["effective_weights"]), 1.0, atol=1e-9)
    fine_first = [
        data["fusions"]["hierarchical"]["weights"][data["scales"].index(s)] for s in chain["scales_finest_first"]
    ]
    np.testing.assert_allclose(fine_first, chain["effective_weights"], atol=1e-12)


def test_the_saved_figure_names_the_effective_weights_not_attention(hierarchical_prediction):
    from segscale import plots
    from segscale import visualize as viz

    predictor, prediction = hierarchical_prediction
    view = viz.build_view(prediction, predictor.classes, predictor.palette)
    assert view.dominant is not None and view.entropy is not None  # from the effective weights
    titles = [axes.get_title() for axes in plots.side_by_side_figure(view, prediction, predictor.classes).axes]
    assert any("effective weight $w^s$ (gates)" in t for t in titles) and not any(
        "attention weight" in t for t in titles
    )


def test_a_predictor_says_which_merges_it_cannot_do_and_why(make_checkpoint):
    gates = Predictor.from_checkpoint(make_checkpoint("gates.pt", merge="hierarchical"), device="cpu")
    attention = Predictor.from_checkpoint(make_checkpoint("attention.pt"), device="cpu")
    assert list(gates.unoffered_merges) == ["attention"] and "no attention head" in gates.unoffered_merges["attention"]
    assert (
        list(attention.unoffered_merges) == ["hierarchical"]
        and "no gate head" in attention.unoffered_merges["hierarchical"]
    )
    for predictor in (gates, attention):  # the two lists split MERGE_MODES between them
        assert set(predictor.offered_merges).isdisjoint(predictor.unoffered_merges)
        assert len(predictor.offered_merges) + len(predictor.unoffered_merges) == 4
