"""The merges are declared once (segscale.merges) and everything else reads them from there.

The registry agrees with the models (each merge builds the head it says it needs, fusion accepts
every name); no module branches on a merge by its name spelled out; a hierarchical checkpoint's
gate head shows in ``describe``, the layer table and How it works; and every page opens with
every shipped checkpoint.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from segscale import merges as registry
from segscale.architecture import architecture_summary
from segscale.checkpoint import model_from_checkpoint
from segscale.cli import main
from segscale.modeling import build_model, merge_score_maps
from segscale.predictor import Predictor
from tests.conftest import APP, CHECKPOINTS, COMPARISON, DIAGNOSTICS, HOW, INSPECTOR, REPO, tiny_config, tiny_metadata

SHIPPED = sorted((REPO / "checkpoints").glob("*.pt"))
# The registry itself, and the fusion arithmetic it points to (the only place that must name each
# merge to compute it).
DECLARING = {"segscale/merges.py", "segscale/modeling/fusion.py"}


def test_every_merge_declares_what_the_pages_show():
    assert registry.MERGE_NAMES == ("attention", "average", "max", "hierarchical")
    for name, merge in registry.MERGES.items():
        assert merge.name == name and str(merge) == name
        assert merge.label and merge.help.startswith(name.split()[0]) and merge.phrase and merge.formula
        assert (merge.weights is None) == bool(merge.no_weights), name  # weights, or why there are none
        assert re.fullmatch(r"#[0-9a-f]{6}", merge.colour), name
        assert (merge.head is None) == (merge.missing == ""), name  # a head, and why a model may lack it
        assert merge.learned == bool(merge.trust), name
    assert len({merge.colour for merge in registry.MERGES.values()}) == len(registry.MERGES)
    assert registry.formula("average", 3).startswith("average pooling   g_c = sum_s (1/3)")
    with pytest.raises(ValueError, match="unknown merge mode 'median'; valid: attention, average, max, hierarchical"):
        registry.merge_info("median")


@pytest.mark.parametrize("merge", registry.MERGE_NAMES)
def test_each_merge_builds_the_head_the_registry_names_and_fuses(merge):
    model = build_model(tiny_config(merge=merge)).eval()
    head = registry.head_of(merge)
    assert registry.model_head(model) == head
    for other in registry.HEADS:  # exactly that head, no other
        assert (getattr(model, other.attribute) is not None) == (other == head)
    predictor = Predictor(model, tiny_metadata(model.config), device="cpu")
    assert merge in predictor.offered_merges
    assert set(predictor.unoffered_merges) == set(registry.MERGE_NAMES) - set(predictor.offered_merges)
    with torch.no_grad():
        output = model(torch.rand(1, 3, 33, 33), merge=merge)
    assert (output.attention is None) == (registry.MERGES[merge].weights is None)
    for other in registry.HEADS:  # the logits of the head it needs, and only those
        assert (getattr(output, other.logits) is not None) == (other == head)
    fused, _ = merge_score_maps(
        output.score_maps, merge, output.attention_logits, gate_logits=output.gate_logits, scales=output.scales
    )
    torch.testing.assert_close(fused, output.fused)


def _merge_branches(path: Path) -> list[str]:
    """Comparisons of something named *merge*/*method*/*mode* with a merge's name written out,
    and literals (dicts, tuples, lists) holding two or more merge names."""
    names = set(registry.MERGE_NAMES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            spelled = [o for o in operands if isinstance(o, ast.Constant) and o.value in names]
            about_merges = any(re.search(r"merge|method|mode", ast.unparse(o)) for o in operands)
            if spelled and about_merges:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Dict, ast.Tuple, ast.List, ast.Set)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            if sum(isinstance(i, ast.Constant) and i.value in names for i in items) >= 2:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_module_spells_out_merges_outside_the_registry():
    files = [p for folder in ("segscale", "ui", "pages") for p in (REPO / folder).rglob("*.py")]
    files += [REPO / "app.py"]
    found = [hit for p in files if str(p.relative_to(REPO)) not in DECLARING for hit in _merge_branches(p)]
    assert not found, "branch on the registry (segscale.merges) instead:\n" + "\n".join(found)


def test_the_scan_finds_a_branch_on_a_merge_name():
    sample = REPO / "tests" / "_merge_scan_sample.py"  # under REPO, for the relative path the scan reports
    sample.write_text('def f(merge):\n    return 1 if merge == "max" else {"attention": 1, "average": 2}\n')
    try:
        assert len(_merge_branches(sample)) == 2
    finally:
        sample.unlink()


def test_the_gate_head_is_in_the_layer_table_and_the_totals():
    model = build_model(tiny_config(merge="hierarchical"))
    summary = architecture_summary(model)
    gate_rows = [row for row in summary.layers if row.part == "gate head"]
    assert gate_rows and sum(row.parameters for row in gate_rows) == sum(
        p.numel() for p in model.gate_head.parameters()
    )
    assert summary.parameters["gate head"] == sum(p.numel() for p in model.gate_head.parameters())
    assert summary.head == "gate head" and summary.attention_receptive_field is not None
    totals = dict(summary.totals())
    assert "sigmoid gate" in totals["gate head"] and "attention head" not in [name for name, _ in summary.totals()]
    pooling = architecture_summary(build_model(tiny_config(merge="average")))
    assert pooling.head is None and dict(pooling.totals())["attention head"] == "none (merges by average)"


def test_describe_names_the_gate_head_of_the_shipped_hierarchical_checkpoint(capsys):
    path = REPO / "checkpoints" / "scaleshapes_hierarchical.pt"
    assert main(["describe", "--checkpoint", str(path)]) == 0
    out = capsys.readouterr().out
    network, _ = model_from_checkpoint(path)
    count = sum(p.numel() for p in network.gate_head.parameters())
    assert re.search(r"^gate head +one head at every scale, a sigmoid gate logit", out, re.M), out
    assert re.search(rf"^  gate head +{count:,}$", out, re.M), out
    assert re.search(r"^gate head +conv ", out, re.M)  # its layers in the table
    assert "none (merges by hierarchical)" not in out


def _open_with(page: str, checkpoint: Path, folder: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.model_loading import CHECKPOINT_DIR_ENV

    (folder / checkpoint.name).symlink_to(checkpoint)  # the only checkpoint the page can pick
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(folder))
    at = AppTest.from_file(str(REPO / page), default_timeout=300).run()
    assert not at.exception, (page, checkpoint.name, at.exception)
    assert not at.error, (page, checkpoint.name, [e.value for e in at.error])
    return at


def test_how_it_works_shows_the_gate_head_of_a_hierarchical_checkpoint(tmp_path, monkeypatch):
    at = _open_with(HOW, REPO / "checkpoints" / "scaleshapes_hierarchical.pt", tmp_path, monkeypatch)
    text = " ".join(m.value for m in at.markdown)
    assert "**gate head**" in text
    assert any(registry.GATE_HEAD.summary in c for image in at.get("image") for c in image.captions)
    parts = set(at.dataframe[0].value["part"])
    assert "gate head" in parts and "attention head" not in parts


@pytest.mark.slow
@pytest.mark.parametrize("page", [APP, INSPECTOR, COMPARISON, DIAGNOSTICS, HOW, CHECKPOINTS])
@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda p: p.stem)
def test_every_page_opens_with_every_shipped_checkpoint(page, checkpoint, tmp_path, monkeypatch):
    at = _open_with(page, checkpoint, tmp_path, monkeypatch)
    assert at.markdown or at.caption  # it drew something


def test_three_checkpoints_are_shipped():
    assert [p.name for p in SHIPPED] == [
        "scaleshapes_demo.pt",
        "scaleshapes_hierarchical.pt",
        "scaleshapes_paper_head.pt",
    ]
