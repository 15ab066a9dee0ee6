"""Every number a person reads, written one way: scales, scale sets, shares and scores.

The app's pages, the command line's tables and the saved figures format through here, so
that "{1, 0.75, 0.5}" or "12.5%" reads the same everywhere.
"""

from __future__ import annotations


def scale_label(scale: float) -> str:
    """``1``, ``0.75``, ``0.5``: a scale as people write it."""
    return f"{float(scale):g}"


def format_scale_set(scales) -> str:
    """``{1, 0.75, 0.5}``."""
    return "{" + ", ".join(scale_label(s) for s in scales) + "}"


def format_percent(share: float, digits: int = 1) -> str:
    """A share in 0-1 as a percentage: ``format_percent(0.1234)`` is ``12.3%``."""
    return f"{100 * share:.{digits}f}%"


def format_number(value: float, digits: int) -> str:
    """``digits`` fixed decimals, or 3 significant digits for values
    too small to show that way (an untrained model's scores)."""
    if value != 0 and abs(value) < 0.5 * 10 ** (1 - digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def count_of(number: int, noun: str) -> str:
    """A count with its noun in the right number: ``count_of(1, "image")`` is ``1 image``, else ``2 images``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def format_fraction(value: float) -> str:
    """A width multiplier as people write it: ``1/8`` for 0.125, ``1`` for 1, ``0.3`` for 0.3."""
    if value < 1 and abs(1 / value - round(1 / value)) < 1e-9:
        return f"1/{round(1 / value)}"
    return f"{value:g}"
