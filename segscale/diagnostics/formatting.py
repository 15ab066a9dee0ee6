"""The diagnostics' numbers as text: terminal tables, LaTeX for
``st.latex``, CSV, and plain float tuples for the frozen results.

Scales, scale sets and plain numbers are written by :mod:`segscale.formatting`, as everywhere.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from ..formatting import format_number


def floats(values) -> tuple[float, ...]:
    """Any array or sequence as a flat tuple of Python floats (hashable, picklable, JSON-ready)."""
    return tuple(float(v) for v in np.asarray(values).ravel())


def rows_to_csv(rows: list[dict], fields: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def signed(value: float) -> str:
    return f"({format_number(value, 4)})" if value < 0 else format_number(value, 4)


def latex_number(value: float, digits: int = 3, operand: bool = True) -> str:
    """``value`` for LaTeX; as an ``operand`` of a product or sum, in parentheses when negative or scientific.

    A number that stands alone (a result after "=", an item of a list) is written plainly: "= −0.640".
    """
    text = format_number(value, digits)
    scientific = "e" in text
    if scientific:
        mantissa, exponent = text.split("e")
        text = rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return f"({text})" if operand and (value < 0 or scientific) else text


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "^": r"\^{}",
    "#": r"\#",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "~": r"\~{}",
}


def latex_text(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
