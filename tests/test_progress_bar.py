"""segscale.progress_bar: tqdm on a terminal; a line every so often in a log; nothing with --quiet."""

from __future__ import annotations

import io

import pytest
import tqdm.std

from segscale.progress_bar import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """tqdm's clock, moved by hand: ``clock[0] += 10`` is ten seconds later."""
    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    return now


def test_a_log_gets_one_line_per_interval_plus_the_first_and_the_last(clock):
    log = io.StringIO()
    with progress_bar(100, "train", unit="step", initial=10, stream=log, log_every=30) as bar:
        for _ in range(90):
            clock[0] += 1
            bar.set_postfix(loss=0.25, refresh=False)
            bar.update()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert [line.split("|")[2].split()[0] for line in lines] == ["10/100", "40/100", "70/100", "100/100"]
    assert all(line.startswith("train:") for line in lines) and "loss=0.25" in lines[-1]


def test_a_short_run_in_a_log_prints_its_start_and_end_only(clock):
    log = io.StringIO()
    with progress_bar(5, "evaluate", unit="img", stream=log) as bar:
        for _ in range(5):
            clock[0] += 0.5
            bar.update()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "0/5" in lines[0] and "5/5" in lines[1] and "img/s" in lines[1]


def test_messages_written_beside_a_log_bar_stay_whole_lines(clock):
    log = io.StringIO()
    with progress_bar(2, "train", stream=log) as bar:
        bar.update()
        tqdm.std.tqdm.write("step 1: validation", file=log)
        bar.update()
    assert log.getvalue().splitlines()[1] == "step 1: validation"


def test_a_terminal_gets_tqdms_redrawn_line():
    terminal = Terminal()
    with progress_bar(3, "diagnose val", unit="img", stream=terminal, log_every=30) as bar:
        for _ in range(3):
            bar.update()
    text = terminal.getvalue()
    assert text.count("\r") >= 2 and "diagnose val" in text and "3/3" in text


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["log", "terminal"])
def test_quiet_prints_nothing(stream):
    with progress_bar(3, "evaluate", stream=stream, enabled=False) as bar:
        for _ in range(3):
            bar.update()
    assert stream.getvalue() == ""
