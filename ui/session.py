"""What a session remembers across pages: the keys of its state, and the choices that follow a person.

:func:`keep_choices` carries the checkpoint, scale set and image choice from page to page; the
latest uploaded image (:data:`LAST_UPLOAD_KEY`) lets another page show it without a new upload;
a checkpoint uploaded on the Checkpoints page (:data:`UPLOADED_CHECKPOINTS_KEY`) can be used on
every page of the session; the latest prediction shown (:data:`LAST_PREDICTION_KEY`) is there
for other pages and for tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

LAST_PREDICTION_KEY = "segscale.last_prediction"  # session state: the latest Prediction shown, for other pages
LAST_UPLOAD_KEY = "segscale.last_upload"  # session state: (name, bytes) of the latest usable image uploaded on any page
UPLOADED_CHECKPOINTS_KEY = "segscale.uploaded_checkpoints"  # session state: {option: (file name, bytes)}
# Widgets whose choice follows the person from page to page (see keep_choices).
SHARED_CHOICES = (
    "checkpoint",
    "merge",
    "scale_preset",
    "custom_scales",
    "image_source",
    "gallery_index",
    "photo",
    "photo_size",
)


def keep_choices(keys: Sequence[str] = SHARED_CHOICES) -> None:
    """Carry the sidebar and image choices from page to page; call it at the top of every page.

    Streamlit forgets a widget's value at the end of a run that does not draw it (any other
    page). Writing the value back into the session state before the widgets are drawn keeps
    it, Streamlit's documented way; a value the next page does not offer falls back to that
    page's default.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
