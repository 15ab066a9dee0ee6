"""The main view's "what each scale decides" rows and section, through AppTest: leave one scale out,
per-scale confidence, and max pooling's deciding scale as its weight row."""

from __future__ import annotations

import pytest

from segscale.diagnostics import SINGLE_SCALE_ABLATION
from tests.conftest import assert_clean, captions, last_prediction, open_page, unescaped


def test_every_scale_has_its_row_without_it_and_its_confidence(checkpoint_dir):
    at = open_page()
    assert_clean(at)
    prediction = last_prediction(at)
    ablation = prediction.scale_ablation()
    shown = captions(at)
    for scale, share in zip(prediction.scales, ablation.shares):
        assert f"Scale {scale:g} · left out: {100 * share:.1f}% of labels change" in shown, shown
        assert f"Scale {scale:g} · confidence: its top class's probability, 0-1" in shown
    assert f"Decided by one scale (attention): {100 * ablation.any_share:.1f}% of pixels" in shown
    assert any(c.startswith("Most confident scale where the scales disagree") for c in shown)
    assert "Max pooling's deciding scale" in shown
    table = at.dataframe[-1].value
    assert list(table["scale"]) == ["1", "0.75", "0.5"]
    assert list(table["changes without it"]) == [f"{100 * s:.1f}%" for s in ablation.shares]


def test_max_pooling_shows_its_deciding_scale_as_its_weight_row(checkpoint_dir):
    at = open_page()
    at.radio(key="merge").set_value("max").run()
    assert_clean(at)
    shown = captions(at)
    for scale in (1.0, 0.75, 0.5):
        assert any(c.startswith(f"Scale {scale:g} · taken for the predicted class") for c in shown), shown
    texts = [unescaped(m.value) for m in at.markdown]
    assert any("Max pooling: deciding scale" in t and "per class" in t for t in texts)
    assert not any("no weight map wˢ shared by the classes" in unescaped(c.value) for c in at.caption)


@pytest.mark.parametrize("merge", ["attention", "max"])
def test_one_scale_says_there_is_nothing_to_leave_out(checkpoint_dir, merge):
    at = open_page()
    at.radio(key="merge").set_value(merge).run()
    at.radio(key="scale_preset").set_value((1.0,)).run()
    assert_clean(at)
    notes = [unescaped(m.value) for m in at.markdown] + [unescaped(c.value) for c in at.caption]
    assert sum(SINGLE_SCALE_ABLATION in text for text in notes) == 2  # the per-scale row and the section
    assert not any(c.startswith(("Decided by one scale", "Max pooling's deciding")) for c in captions(at))
