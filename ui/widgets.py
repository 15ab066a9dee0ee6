"""Small drawing helpers every page uses: maps, colour bars and legends, tables, figures.

Tables go through ``st.dataframe`` or Markdown with every cell made literal (whatever a
checkpoint or file name holds); pictures through ``st.image`` with a caption naming the scale
and the quantity. The pictures themselves come from :mod:`segscale.visualize` and
:mod:`segscale.plots`.
"""

from __future__ import annotations

import io

import numpy as np
import streamlit as st

from segscale import visualize as viz
from segscale.formatting import format_percent, scale_label
from segscale.palette import scale_colour
from ui.messages import plain

KEY_WIDTH = 240  # px of colour bars and legends, drawn at the size they are shown (a column at 1500 px)
TABLE_CHAR_PX, TABLE_CELL_PADDING = 7, 18  # px per character of a table's text (14 px font) and a cell's margins
TABLE_HEADER_PX, TABLE_ROW_PX = 38, 35  # st.dataframe's header and row heights


@st.cache_data(max_entries=32, show_spinner=False)
def colorbar(vmin: float, vmax: float, cmap: str, label: str) -> np.ndarray:
    """A colour bar image (drawn once per process for each range, map and label)."""
    return viz.colorbar_image(vmin, vmax, cmap, width=KEY_WIDTH, bar_height=14, font_size=13, label=label)


@st.cache_data(max_entries=32, show_spinner=False)
def swatches(names: tuple[str, ...], colours: tuple[tuple[int, int, int], ...], columns: int = 1) -> np.ndarray:
    """A legend of coloured squares and names as an image (cached)."""
    return viz.swatch_legend_image(names, colours, width=KEY_WIDTH, font_size=13, columns=columns)


def class_swatches(classes, palette) -> np.ndarray:
    """The legend of a checkpoint's classes in its palette, in two columns past four classes."""
    return swatches(tuple(classes), tuple(palette), 2 if len(classes) > 4 else 1)


def scale_swatches(scales) -> np.ndarray:
    """The legend of the scales' colours (dominant-scale maps), one scale a line."""
    names = tuple(f"scale {scale_label(s)}" for s in scales)
    colours = tuple(scale_colour(k) for k in range(len(names)))
    return swatches(names, colours, 1)


def image(array: np.ndarray, caption: str, photo: bool = False) -> None:
    """One map at the column's width. Maps go as PNG (hard label edges stay hard); photos
    (the input, overlays) as JPEG, which encodes some 20 times faster."""
    st.image(array, caption=caption, width="stretch", output_format="JPEG" if photo else "PNG")


def colour_key(array: np.ndarray, alt: str | None = None) -> None:
    """A colour bar or legend at its natural size, so its text keeps its size whatever the column."""
    st.image(array, width=min(KEY_WIDTH, array.shape[1]), output_format="PNG", alt=alt)


def table(rows: list[dict], digits: int = 4, height: int | str = "auto", key: str | None = None) -> None:
    """Rows of flat dicts as a read-only table: floats to ``digits`` decimals, text shown literally."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    config = {
        column: st.column_config.NumberColumn(format=f"%.{digits}f")
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column])
    }
    config.update(
        {
            column: st.column_config.TextColumn(width=text_column_width(column, frame[column]))
            for column in frame.columns
            if pd.api.types.is_string_dtype(frame[column])
        }
    )
    st.dataframe(frame, hide_index=True, column_config=config, height=height, key=key)


def table_by_column(rows: list[dict], header: str, digits: int = 4) -> None:
    """Rows of flat dicts turned on their side: one column per row, named by its ``header`` field, and one
    row per other field. A table of a few scales or merges with many fields then fits a page's narrow
    column (a wide one hides its last columns behind a scroll bar that shows only on hover)."""
    fields = list(dict.fromkeys(name for row in rows for name in row if name != header))

    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    turned = [{header: field, **{str(row[header]): cell(row.get(field)) for row in rows}} for field in fields]
    table(turned, height=whole_table_height(len(turned)))


def whole_table_height(rows: int) -> int:
    """px that show every one of ``rows`` rows (and the header) without a scroll bar: "auto" stops at ten."""
    return TABLE_HEADER_PX + TABLE_ROW_PX * rows


def text_column_width(header: str, values) -> int:
    """px a text column needs for its longest cell. Set on every run: left to itself, the table
    keeps the widths of its first run, which cut a later, longer class name ("backgrou")."""
    longest = max([len(str(header)), *(len(str(v)) for v in values)])
    return TABLE_CHAR_PX * longest + TABLE_CELL_PADDING


def pairs_table(pairs) -> None:
    """(field, value) pairs as a two-column Markdown table: long values wrap, every cell shown literally."""
    lines = ["| field | value |", "|---|---|"]
    lines += [
        f"| {'↳ ' if name.startswith('  ') else ''}{plain(name.strip())} | {plain(value)} |" for name, value in pairs
    ]  # "  x": a part of the row above
    st.markdown("\n".join(lines))


def percent(value: float | None) -> str:
    """A share as a table cell: ``format_percent``, or a dash where there is no value."""
    return "–" if value is None else format_percent(value)


def figure(png: bytes, caption: str) -> None:
    """A matplotlib figure's PNG at the column's width."""
    st.image(png, caption=caption, width="stretch", output_format="PNG")


def figure_row(figures: list[tuple[bytes, str]]) -> None:
    """Figures side by side in columns as wide as the figures
    are, so that all are scaled alike and share one text size."""
    from PIL import Image

    widths = [Image.open(io.BytesIO(png)).width for png, _ in figures]
    for column, (png, caption) in zip(st.columns(widths, gap="medium"), figures):
        with column:
            figure(png, caption)
