"""Driving `streamlit run app.py` in Debian's Chromium through Playwright.

Shared by the end-to-end test (tests/test_browser.py), the latency harness
(scripts/measure_app_latency.py) and the screenshots in docs/. Playwright never downloads a
browser here: it launches /usr/bin/chromium (`apt-get install -y chromium`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SEGSCALE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MISSING_CHROMIUM = (
    f"Chromium is not at {CHROMIUM}. The browser test drives Debian's chromium package: "
    "run `apt-get install -y chromium` (Playwright's own browser download is not used)."
)
# The attribute Streamlit's frontend sets on its root while a script runs.
APP = '[data-testid="stApp"]'
_COUNT_RUNS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (window.__segscaleRuns === undefined) {
        window.__segscaleRuns = 0;
        // Counts runs that ended, from each record's old value: a run that starts and ends before the
        // observer's callback is delivered still leaves its own record (reading the attribute's value in
        // the callback would see 'notRunning' twice and count nothing).
        new MutationObserver(records => {
            for (const record of records) if (record.oldValue === 'running') window.__segscaleRuns += 1;
        }).observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
    }
    return window.__segscaleRuns;
}"""
_SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app.getAttribute('data-test-script-state') === 'notRunning'
        && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""
_RUN_FINISHED = """([before, text]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    return window.__segscaleRuns > before && app.getAttribute('data-test-script-state') === 'notRunning'
        && document.querySelectorAll('[data-stale="true"]').length === 0
        && (text === null || document.body.innerText.includes(text));
}"""
_IMAGES_LOADED = """() => {
    const images = [...document.images];
    return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);
}"""
_NO_IMAGE_PENDING = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
_IMAGE_STATUS = (
    "() => [...document.images].map(i => ("
    "{src: i.src.slice(0, 120), complete: i.complete, naturalWidth: i.naturalWidth}))"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, timeout_s: float = 120.0, app: str = "app.py"):
    """`streamlit run app.py` on a free localhost port; yields its URL and always stops it."""
    with streamlit_process(env, timeout_s, app) as (url, _):
        yield url


@contextlib.contextmanager
def streamlit_process(env: dict[str, str] | None = None, timeout_s: float = 120.0, app: str = "app.py"):
    """As :func:`streamlit_server`, yielding (URL, the server's Popen): its pid is the app's process.

    The server runs in its own process group, which is what is ended afterwards (and only it).
    Its output goes to a temporary log, quoted in the error if it never answers.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        app,
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = tempfile.NamedTemporaryFile("w+", prefix="streamlit-", suffix=".log", delete=False)
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{Path(log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"streamlit did not answer within {timeout_s:.0f} s:\n{Path(log.name).read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def chromium_page(width: int = 1500, height: int = 1000):
    """A Playwright page in Debian's Chromium; raises RuntimeError naming the package if it is missing."""
    with chromium_browser() as browser:
        yield browser.new_page(viewport={"width": width, "height": height})


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium under Playwright, for several sessions at once: each
    ``browser.new_context().new_page()`` is a browser of its own to the app (its own Streamlit session)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(MISSING_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_app(page, url: str, timeout_s: float = 120.0) -> None:
    """Load the app and wait for its first run to finish and its images to load."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', timeout=timeout_s * 1000)
    page.wait_for_function(_IMAGES_LOADED, timeout=timeout_s * 1000)
    start_counting_runs(page)


def start_counting_runs(page) -> int:
    return page.evaluate(_COUNT_RUNS)


def wait_for_rerun(
    page, before: int, timeout_s: float = 120.0, images: bool = True, expect_text: str | None = None
) -> None:
    """Wait for a script run that started after ``before`` (a :func:`start_counting_runs` count) to finish,
    as :func:`after_rerun` does; for actions fired on several pages before waiting on any."""
    page.wait_for_function(_RUN_FINISHED, arg=[before, expect_text], timeout=timeout_s * 1000)
    if images:
        page.wait_for_function(_IMAGES_LOADED, timeout=timeout_s * 1000)


def after_rerun(page, action, timeout_s: float = 120.0, images: bool = True, expect_text: str | None = None) -> None:
    """Do ``action()`` (a click, an upload) and wait for the script run it causes to finish.

    Finished means: a new run started and ended, no element is left stale, the page shows
    ``expect_text`` (if given), and (``images``) every image of the page has loaded.
    ``expect_text`` matters for uploads that replace a file: the page first runs once with
    the old file removed, then again with the new one.
    """
    before = start_counting_runs(page)
    action()
    page.wait_for_function(_RUN_FINISHED, arg=[before, expect_text], timeout=timeout_s * 1000)
    if images:
        page.wait_for_function(_IMAGES_LOADED, timeout=timeout_s * 1000)


def nav_labels(page) -> list[str]:
    """The page names in the sidebar navigation, in order (a link's text ends with its name, after its icon's)."""
    return [
        link.inner_text().strip().splitlines()[-1] for link in page.locator('[data-testid="stSidebarNavLink"]').all()
    ]


def go_to_page(page, label: str, timeout_s: float = 120.0, images: bool = True) -> None:
    """Click the sidebar navigation link named ``label`` (same session) and wait for the page's run and images."""
    link = page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=label).first
    after_rerun(page, link.click, timeout_s=timeout_s, images=images)


def all_images_loaded(page) -> list[dict]:
    """The <img> elements that did not load (empty when all did, or when there are none)."""
    return [image for image in image_status(page) if not (image["complete"] and image["naturalWidth"] > 0)]


def image_status(page) -> list[dict]:
    """src (shortened), complete and naturalWidth of every <img> on the page."""
    return page.evaluate(_IMAGE_STATUS)


def exceptions_on_page(page) -> list[str]:
    """Texts of Streamlit exception elements (tracebacks) on the page; empty when there are none."""
    return [element.inner_text()[:500] for element in page.query_selector_all('[data-testid="stException"]')]


def upload(page, path: Path) -> None:
    """Put a file into the page's file uploader (the first one)."""
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(path))


def choose_radio(page, label: str) -> None:
    """Click the radio option whose visible text is exactly ``label``."""
    _radio_option(page, label).click()


def _radio_option(page, label: str):
    return page.locator('[data-testid="stRadio"] label').filter(has=page.get_by_text(label, exact=True)).first


def choose_radio_until(page, label: str, shown: str, timeout_s: float = 120.0, tries: int = 3) -> None:
    """Choose the radio option ``label`` and wait until the element ``shown`` (a CSS selector) is on the
    page and the app is idle with nothing stale.

    It waits for what the choice shows rather than for a counted run, and clicks again if the option
    is still unchecked after a while: on a slow, loaded machine a click on a page that was still
    settling was seen to be lost (CI, a 120 s wait that never ended), and one lost click must not
    fail the test it is only a step of.
    """
    option = _radio_option(page, label)
    per_try_ms = timeout_s * 1000 / tries
    for attempt in range(tries):
        page.wait_for_function(_SETTLED, timeout=timeout_s * 1000)
        if not option.locator("input").is_checked():
            option.click()
        try:
            page.locator(shown).first.wait_for(state="visible", timeout=per_try_ms)
            page.wait_for_function(_SETTLED, timeout=timeout_s * 1000)
            return
        except Exception:
            if attempt == tries - 1:
                raise


def full_page_screenshot(page, path: Path | str, width: int | None = None) -> None:
    """A screenshot of the whole page. Streamlit scrolls inside its main container rather than
    the document, so the viewport is made as tall as that content for the shot, then restored."""
    viewport = page.viewport_size
    width = width or viewport["width"]
    height = page.evaluate(
        """() => Math.max(
            ...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', '[data-testid="stSidebarContent"]']
                .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight),
            document.body.scrollHeight)"""
    )
    page.set_viewport_size({"width": width, "height": int(height) + 40})
    page.wait_for_timeout(500)  # let the layout settle at the new size
    page.wait_for_function(_NO_IMAGE_PENDING, timeout=60_000)  # a page may have no image at all
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)
