"""What a page says to a person: user-supplied text made literal, error and notice boxes, and the log.

Text safety: strings a person supplies (file names) go through :func:`plain` before they reach
Markdown, and nothing is rendered with ``unsafe_allow_html``. A failure a page survives is shown
as a message (:func:`show_error`), never a traceback; the traceback goes to :data:`LOG`.
"""

from __future__ import annotations

import logging
import re

import streamlit as st

LOG = logging.getLogger("segscale.app")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it literally: no links, images, HTML, LaTeX or icons."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text).replace("\n", " "))


def show_error(message: str, title: str = "") -> None:
    """A red message box: ``title`` in bold, then the message (as literal text), never a traceback."""
    prefix = f"**{plain(title)}** " if title else ""
    st.error(prefix + plain(message), icon=":material/error:")


def show_notices(notices) -> None:
    """One blue box listing what was changed about an input (image notices), if anything was."""
    notices = list(notices)
    if notices:
        st.info("\n".join(f"- {plain(n)}" for n in notices), icon=":material/info:")
