"""A small progress bar for long commands: count, rate, time left, and free-form fields.

On a terminal it redraws one line; in a log file (not a TTY) it writes a full line every
``log_every`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressBar:
    def __init__(
        self, total: int, description: str = "", start: int = 0, unit: str = "it", stream: TextIO | None = None,
        log_every: float = 30.0, enabled: bool = True,
    ) -> None:
        self.total, self.count, self.description, self.unit = total, start, description, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every, self.enabled = log_every, enabled
        self._start_count, self._start_time = start, time.perf_counter()
        self._last_draw = 0.0
        self.fields: dict[str, str] = {}

    def update(self, steps: int = 1, **fields) -> None:
        self.count += steps
        self.fields.update({key: _format_value(value) for key, value in fields.items()})
        now = time.perf_counter()
        due = (now - self._last_draw) >= (0.2 if self.interactive else self.log_every)
        if self.enabled and (due or self.count >= self.total):
            self._last_draw = now
            self._draw(now)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self._start_time
        return (self.count - self._start_count) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        rate = self.rate()
        left = (self.total - self.count) / rate if rate > 0 else float("nan")
        share = self.count / self.total if self.total else 1.0
        filled = int(share * 24)
        bar = "#" * filled + "-" * (24 - filled)
        eta = format_duration(left) if left == left else "?"
        extra = " ".join(f"{key}={value}" for key, value in self.fields.items())
        return (
            f"{self.description} [{bar}] {self.count}/{self.total} ({share:4.0%}) "
            f"{rate:.2f} {self.unit}/s, {format_duration(now - self._start_time)} elapsed, {eta} left {extra}"
        ).strip()

    def _draw(self, now: float) -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + self.line(now))
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def write(self, message: str) -> None:
        """Print a message above the bar (also when the bar itself is switched off)."""
        if self.enabled and self.interactive:
            self.stream.write("\r\033[K" + message + "\n")
            self._draw(time.perf_counter())
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
