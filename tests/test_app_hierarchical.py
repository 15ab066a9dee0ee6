"""Hierarchical attention (Tao et al.'s gates) on every page that offers merges: the main view, the pixel
inspector, the merge comparison and the scale diagnostics (its "Merges scored"), through Streamlit's AppTest.

A checkpoint with a gate head offers "hierarchical", shows its effective weights with a note
saying what they are, and writes out its chain of gates with numbers that match the Prediction;
a checkpoint without one does not offer it and says why. Checkpoints are tiny ones built here
(tests/conftest.py's ``make_checkpoint``), for ScaleShapes' classes so that ground truth applies.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from segscale import diagnostics as diag
from tests.conftest import (
    APP,
    COMPARISON,
    DIAGNOSTICS,
    INSPECTOR,
    assert_clean,
    assert_every_map,
    captions,
    last_prediction,
    open_page,
    rows_of,
    texts,
)
from ui.model_loading import CHECKPOINT_DIR_ENV

NO_GATE_HEAD = "Not offered: hierarchical, since this model has no gate head"


@pytest.fixture
def gate_dir(make_checkpoint, monkeypatch, tmp_path):
    """A folder with one tiny ScaleShapes checkpoint trained (here: built) with merge 'hierarchical'."""
    make_checkpoint("gates.pt", scaleshapes=True, merge="hierarchical")
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    return tmp_path


def sidebar_captions(at) -> str:
    return texts(at.sidebar.caption)


# ----------------------------------------------------------------------------- main view


def test_main_view_offers_hierarchical_and_shows_its_effective_weights_with_their_note(gate_dir):
    at = open_page(APP)
    merge = at.radio(key="merge")
    assert merge.options == ["average", "max", "hierarchical"] and merge.value == "hierarchical"  # its own merge first
    assert_every_map(at, merge="hierarchical")
    prediction = last_prediction(at)
    assert prediction.gate_logits is not None
    np.testing.assert_allclose(prediction.attention.sum(axis=0), 1.0, atol=1e-5)
    # The weights row is named for what it holds, never as Eq. 2's softmax, and its note says what the weights are.
    markdown = texts(at.markdown)
    assert "**Effective weights wˢ**" in markdown and "not a softmax" in markdown
    assert "**Attention weights wˢ**" not in markdown
    assert diag.EFFECTIVE_WEIGHTS_NOTE in texts(at.caption)
    assert "products of the sigmoid gates" in diag.EFFECTIVE_WEIGHTS_NOTE and "sum to 1" in diag.EFFECTIVE_WEIGHTS_NOTE
    assert "common stride-8 grid" in diag.EFFECTIVE_WEIGHTS_NOTE
    shown = captions(at)
    assert "Dominant scale: largest wˢ" in shown and "Attention entropy (hierarchical), 0-1" in shown
    assert "Not offered: attention, since this model has no attention head." in sidebar_captions(at)


def test_main_view_switches_between_hierarchical_and_the_other_merges(gate_dir):
    at = open_page(APP)
    hierarchical = last_prediction(at)
    at.radio(key="merge").set_value("average").run()
    assert_every_map(at, merge="average")
    assert diag.EFFECTIVE_WEIGHTS_NOTE not in texts(at.caption)
    at.radio(key="merge").set_value("hierarchical").run()
    assert_every_map(at, merge="hierarchical")
    np.testing.assert_array_equal(last_prediction(at).attention, hierarchical.attention)


def test_main_view_without_a_gate_head_does_not_offer_hierarchical_and_says_why(shapes_dir):
    at = open_page(APP)
    assert "hierarchical" not in at.radio(key="merge").options
    assert NO_GATE_HEAD in sidebar_captions(at)
    assert_every_map(at, merge="attention")


# ----------------------------------------------------------------------------- pixel inspector


def latex_values(block: str, symbol: str) -> dict[str, float]:
    """{scale: value} from the lines ``symbol^{(scale)} &= ... = value``
    of a LaTeX block (values may be in parentheses)."""
    found = {}
    for line in block.splitlines():  # one equation a line, each but the last ending in "\\\\"
        match = re.fullmatch(
            rf"{re.escape(symbol)}\^{{\(([\d.]+)\)}} &= .* = \(?(-?[\d.]+)\)?(?:\\quad\\text{{.*}})?",
            line.removesuffix(" \\\\"),
        )
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def check_chain_against_the_prediction(at) -> None:
    """Every number the inspector writes about the chain agrees with the Prediction at the inspected cell."""
    prediction = last_prediction(at)
    row, col = int(at.number_input(key="inspect_row").value), int(at.number_input(key="inspect_col").value)
    i, j = diag.nearest_cell(row, col, prediction.labels.shape, prediction.grid)
    scale_names = [f"{s:g}" for s in prediction.scales]
    weights = dict(zip(scale_names, prediction.attention[:, i, j].astype(float)))
    gates = dict(zip(scale_names, 1 / (1 + np.exp(-prediction.gate_logits[:, i, j].astype(float)))))

    chain_block = next(latex.value for latex in at.latex if r"\sigma(" in latex.value)
    written_weights, written_gates = latex_values(chain_block, "w"), latex_values(chain_block, "a")
    assert set(written_weights) == set(scale_names) and set(written_gates) == set(scale_names)
    for scale in scale_names:  # to the four decimals shown
        assert abs(written_weights[scale] - weights[scale]) <= 5.1e-5, (scale, written_weights, weights)
        assert abs(written_gates[scale] - gates[scale]) <= 5.1e-5, (scale, written_gates, gates)

    chain_table = next(frame.value for frame in at.dataframe if "wˢ (effective)" in frame.value.columns)
    assert list(chain_table["scale"]) == sorted(scale_names, key=float, reverse=True)  # finest first, as Tao et al.
    np.testing.assert_allclose(
        chain_table["wˢ (effective)"], [weights[s] for s in chain_table["scale"]], rtol=0, atol=1e-6
    )
    # The gate column is text: the finest scale's gate, first, says it is unused; the others are plain numbers.
    gate_cells = list(chain_table["aˢ = σ(qˢ)"])
    assert gate_cells[0].endswith(" (unused)") and not any("unused" in cell for cell in gate_cells[1:])
    written = [float(cell.split()[0]) for cell in gate_cells]
    np.testing.assert_allclose(written, [gates[s] for s in chain_table["scale"]], rtol=0, atol=5.1e-5)
    classes = [name[3:] for name in chain_table.columns if name.startswith("rᵏ ")]
    assert classes
    class_names = list(at.selectbox(key="inspect_class").options)[1:]
    for name in classes:  # the chain's last running prediction is the model's fused score g
        fused = prediction.fused[class_names.index(name), i, j]
        np.testing.assert_allclose(chain_table[f"rᵏ {name}"].iloc[-1], fused, rtol=1e-4, atol=1e-6)

    merge_table = rows_of(next(frame.value for frame in at.dataframe if "merge" in frame.value.columns), "merge")
    own = merge_table[merge_table["merge"] == "hierarchical (this prediction)"]
    for name in classes:
        np.testing.assert_allclose(
            own[f"g {name}"].iloc[0], prediction.fused[class_names.index(name), i, j], rtol=0, atol=5.1e-5
        )  # the table shows 4 decimals


def test_inspector_writes_out_the_chain_of_gates_with_the_predictions_numbers(gate_dir):
    at = open_page(INSPECTOR)
    assert_clean(at)
    prediction = last_prediction(at)
    assert prediction.merge == "hierarchical"
    blocks = [latex.value for latex in at.latex]
    assert len(blocks) == 3  # the gates and effective weights, the running prediction, Eq. 1
    assert r"\prod_{j > k}" in blocks[0] and r"\text{(finest: unused)}" in blocks[0]
    assert r"r^{(3)}_{\text{" in blocks[1] and r"g_{\text{" in blocks[1]
    assert r"\sum_{s=1}^{S} w^{(s)}" in blocks[2]
    assert at.radio(key="inspect_eq1_merge").value == "hierarchical"
    assert not any("softmax over scales" in h.value for h in at.subheader)
    assert diag.EFFECTIVE_WEIGHTS_NOTE in texts(at.caption)
    assert "Not offered: attention, since this model has no attention head." in texts(at.caption)
    check_chain_against_the_prediction(at)


def test_inspector_chain_follows_the_pixel_and_the_chosen_class(gate_dir):
    at = open_page(INSPECTOR)
    before = [latex.value for latex in at.latex]
    at.number_input(key="inspect_row").set_value(10)
    at.number_input(key="inspect_col").set_value(20).run()
    assert_clean(at)
    assert at.latex[0].value != before[0]  # the chain of gates at the new cell
    check_chain_against_the_prediction(at)
    at.selectbox(key="inspect_class").set_value(6).run()  # "ring": the running prediction is written for it
    assert_clean(at)
    assert r"g_{\text{ring}}" in at.latex[1].value
    for method in ("average", "max", "hierarchical"):
        at.radio(key="inspect_eq1_merge").set_value(method).run()
        assert_clean(at)
    at.radio(key="inspect_grid_colour").set_value("dominant").run()
    assert_clean(at)


def test_inspector_without_a_gate_head_does_not_offer_hierarchical_and_says_why(shapes_dir):
    at = open_page(INSPECTOR)
    assert_clean(at)
    assert "hierarchical" not in at.radio(key="inspect_eq1_merge").options
    assert NO_GATE_HEAD in texts(at.caption)
    assert not any(r"\sigma(" in latex.value for latex in at.latex)


# ----------------------------------------------------------------------------- merge comparison


def test_comparison_includes_hierarchical_for_a_gate_head(gate_dir):
    at = open_page(COMPARISON)
    assert_clean(at)
    assert last_prediction(at).merge == "hierarchical"
    shown = captions(at)
    for merge in ("average", "max", "hierarchical"):
        assert any(c.startswith(f"Fused labels: {merge}") for c in shown), shown
        assert any(c.startswith(f"Errors: {merge}") for c in shown), shown
    page_text = texts(at.caption)
    assert "fused 3 ways" in page_text and "hierarchical attention (Tao et al. 2020" in page_text
    assert "learned attention weights" not in page_text
    assert "Not offered: attention, since this model has no attention head." in page_text
    scores = at.dataframe[0].value  # one column per merge, one row per measure
    assert list(scores.columns)[-3:] == ["average", "max", "hierarchical"]


def test_comparison_without_a_gate_head_says_why_hierarchical_is_missing(shapes_dir):
    at = open_page(COMPARISON)
    assert_clean(at)
    assert not any("hierarchical" in c for c in captions(at))
    assert NO_GATE_HEAD in texts(at.caption)
    assert "learned attention weights" in texts(at.caption)


# ----------------------------------------------------------------------------- scale diagnostics


def test_diagnostics_score_hierarchical_and_name_its_weights(gate_dir):
    at = open_page(DIAGNOSTICS)
    assert at.multiselect(key="diagnose_merges").value == ["average", "max", "hierarchical"]
    at.number_input(key="diagnose_count").set_value(2).run()
    at.button(key="diagnose_run").click().run()
    assert_clean(at)
    shown = captions(at)
    assert any(
        c.startswith("Mean effective weight wˢ (hierarchical) of each scale against object extent") for c in shown
    ), shown
    assert not any("attention weight" in c for c in shown)
    assert diag.EFFECTIVE_WEIGHTS_NOTE in texts(at.caption)
    assert list(at.dataframe[2].value["merge"]) == ["average", "max", "hierarchical"]


def test_diagnostics_without_a_gate_head_do_not_offer_hierarchical(shapes_dir):
    at = open_page(DIAGNOSTICS)
    assert "hierarchical" not in at.multiselect(key="diagnose_merges").options
    assert NO_GATE_HEAD in texts(at.caption)


# ----------------------------------------------------------------------------- its name and card


OLD_RULE_NAME = "scaleshapes vgg16_largefov x0.0625 shared head, hierarchical"  # how training used to name it


@pytest.fixture
def old_name_gate_dir(tmp_path, monkeypatch):
    """A tiny hierarchical checkpoint named by the old rule, which named the head kind its merge never uses."""
    import torch

    from segscale.checkpoint import save_checkpoint
    from segscale.data.scaleshapes import CLASSES, PALETTE
    from segscale.modeling import build_model
    from tests.conftest import tiny_config, tiny_metadata

    torch.manual_seed(0)
    config = tiny_config(num_classes=len(CLASSES), merge="hierarchical")
    metadata = tiny_metadata(config, CLASSES, PALETTE)
    metadata = type(metadata).from_dict({**metadata.to_dict(), "name": OLD_RULE_NAME})
    save_checkpoint(tmp_path / "gates.pt", build_model(config), metadata)
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    return tmp_path


def test_a_hierarchical_checkpoint_is_named_for_its_gate_head_in_the_sidebar_the_page_and_the_cli(
    old_name_gate_dir, capsys
):
    from segscale.cli import main
    from tests.conftest import CHECKPOINTS

    expected = "scaleshapes vgg16_largefov x0.0625 gate head, hierarchical"
    at = open_page(APP)
    sidebar = sidebar_captions(at)
    assert expected in sidebar and "shared head" not in sidebar
    assert "Gate head: hierarchical attention" in sidebar and "Attention head: none" not in sidebar

    page = open_page(CHECKPOINTS)
    names = texts(page.markdown)
    assert expected in names and "shared head" not in names

    assert main(["checkpoints", str(old_name_gate_dir / "gates.pt")]) == 0
    printed = capsys.readouterr().out
    assert expected in printed
    assert "shared head" not in printed


@pytest.mark.parametrize(
    "head, merge, ending",
    [
        ("shared", "attention", "shared head, attention"),
        ("paper", "attention", "paper head, attention"),
        ("shared", "hierarchical", "gate head, hierarchical"),
        ("shared", "average", "no attention head, average pooling"),
        ("shared", "max", "no attention head, max pooling"),
    ],
)
def test_training_names_a_checkpoint_by_the_head_its_merge_uses(head, merge, ending):
    from segscale.data.scaleshapes import CLASSES, PALETTE
    from segscale.modeling import build_model
    from segscale.training.config import TrainConfig
    from segscale.training.loop import _metadata

    config = TrainConfig(head=head, merge=merge, width=0.0625)
    model = build_model(config.model_config(len(CLASSES)))
    metadata = _metadata(config, model, CLASSES, PALETTE, {}, {})
    assert metadata.name.endswith(" " + ending), metadata.name
