"""What fits the page only a real browser shows: at 1,280 px, the legends and colour bars keep their size
beside five scales, Eq. 1 and the score tables stay inside their columns.

A tiny ScaleShapes checkpoint built here (the layout, not the model, is under test), Debian's Chromium.
"""

from __future__ import annotations

import pytest

from tests import browser_support as browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDTH = 1280  # the narrowest common laptop window: what fits here fits wider ones

# Every colour key (a legend or colour bar drawn as a captionless image): its shown and natural widths.
_KEYS = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
    .filter(i => !i.closest('[data-testid="stImageContainer"]')?.parentElement
        ?.querySelector('[data-testid="stImageCaption"]'))
    .map(i => [i.getBoundingClientRect().width, i.naturalWidth])"""
# Elements wider (or a table taller) than the box that shows them, past KaTeX's 2 px of rounding: "equation"
# or "table K of N" (a table draws on a canvas, so it is named by its place among the page's tables).
_OVERFLOWING = """() => {
    const tables = [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')];
    return [...document.querySelectorAll('.katex-display'), ...tables]
        .filter(e => e.scrollWidth > e.clientWidth + 4 || (tables.includes(e) && e.scrollHeight > e.clientHeight + 4))
        .map(e => tables.includes(e) ? `table ${tables.indexOf(e) + 1} of ${tables.length}` : 'equation');
}"""


def test_keys_equations_and_tables_fit_at_1280_px(make_checkpoint, tmp_path):
    make_checkpoint("shapes.pt", scaleshapes=True)
    with (
        browser.chromium_page(WIDTH, 950) as page,
        browser.streamlit_server(env={"SEGSCALE_CHECKPOINT_DIR": str(tmp_path)}) as url,
    ):
        browser.open_app(page, url)
        browser.after_rerun(page, lambda: browser.choose_radio(page, "custom…"))
        field = page.locator('[data-testid="stMultiSelect"] input').first
        for value in ("1.5", "0.25"):  # five scales
            field.click()
            field.fill(value)
            browser.after_rerun(page, page.get_by_role("option", name=value, exact=True).click)
        page.keyboard.press("Escape")
        assert page.get_by_text("Scale 0.25 · input resized to").count() == 1
        keys = page.evaluate(_KEYS)
        assert len(keys) >= 4, keys  # class legend, score bar, weight bar, the fused section's keys
        shrunk = [(shown, natural) for shown, natural in keys if shown < 0.9 * natural]
        assert not shrunk, f"colour keys drawn smaller than their size (shown, natural px): {shrunk}"

        browser.go_to_page(page, "Merge comparison")
        page.locator('[data-testid="stDataFrame"] .dvn-scroller').nth(1).wait_for()  # scores and agreement
        assert not page.evaluate(_OVERFLOWING)

        browser.go_to_page(page, "Pixel inspector")
        page.locator(".katex-display").first.wait_for()
        assert "equation" not in page.evaluate(_OVERFLOWING)

        browser.go_to_page(page, "Scale diagnostics", images=False)
        field = page.get_by_label("Images (N)")
        field.fill("2")
        browser.after_rerun(page, lambda: field.press("Enter"), images=False)
        run = page.get_by_role("button", name="Run diagnostics")
        browser.after_rerun(page, run.click, timeout_s=300, expect_text="images 0 to 1")
        page.locator('[data-testid="stDataFrame"] .dvn-scroller').nth(3).wait_for()
        tables = page.evaluate(_OVERFLOWING)
        # "Every object" (the fourth, before the leave-one-scale-out table) is the one table meant to scroll (its
        # CSV holds the same); all others fit.
        assert tables in ([], ["table 4 of 5"]), tables
