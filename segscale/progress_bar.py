"""Progress bars for long commands: tqdm, set up so that a log file gets readable lines too.

On a terminal tqdm redraws one line, as usual. Written to a file or a pipe (a job's log),
tqdm would glue every redraw into one endless line of carriage returns, or with
``disable=None`` print nothing at all; here each redraw becomes a line of its own, at most
one every ``log_every`` seconds, plus the first and the last.

    with progress_bar(500, "evaluate", unit="img") as bar:
        for image in images:
            ...
            bar.update()
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def progress_bar(
    total: int,
    description: str,
    *,
    unit: str = "it",
    initial: int = 0,
    enabled: bool = True,
    stream: TextIO | None = None,
    log_every: float = 30.0,
) -> tqdm:
    """A tqdm bar on ``stream`` (default: stderr); ``enabled=False`` (``--quiet``) prints nothing."""
    stream = sys.stderr if stream is None else stream
    common = dict(total=total, desc=description, unit=unit, initial=initial, disable=not enabled)
    if _is_terminal(stream):
        return tqdm(file=stream, dynamic_ncols=True, **common)
    # maxinterval too: tqdm's monitor thread would otherwise force a redraw every 10 s.
    return tqdm(file=_LogLines(stream), mininterval=log_every, maxinterval=log_every, ascii=True, **common)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class _LogLines:
    """The stream tqdm writes to for a log: each redraw (``"\\r" + bar + padding``) becomes one line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_line = ""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        # Clearing writes and the closing newline carry no text; closing redraws the last
        # state, which a redraw at the last step may already have written.
        if line and line != self.last_line:
            self.stream.write(line + "\n")
            self.last_line = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
