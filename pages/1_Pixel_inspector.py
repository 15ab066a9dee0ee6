"""Pixel inspector: pick a pixel, see Eq. 2 (or the chain of gates) and
Eq. 1 with its numbers, and what average and max pooling make of it.

Command-line twin: ``python -m segscale inspect IMAGE --pixel ROW COL`` (or ``--sample val:3``).
"""

import streamlit as st

from ui import image_sources, inspector, model_controls, session
from ui.prediction import predict

st.set_page_config(page_title="Pixel inspector · segscale", page_icon=":material/my_location:", layout="wide")
session.keep_choices()
model, scales = model_controls.model_sidebar(autocast="off")

st.title("Pixel inspector")
st.caption(
    "Pick a pixel (click the grid, or type its row and column) and follow Eq. 2 and Eq. 1 with its numbers "
    "(for a hierarchical model, the chain of gates and Eq. 1 with its effective weights)."
)
picker_column, numbers_column = st.columns([5, 8], gap="large")
with picker_column:
    image = image_sources.page_image_input(model, max_side=inspector.INSPECTOR_MAX_SIDE)
if image is None or model is None or scales is None:
    st.stop()
result = predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
prediction, _ = result
with picker_column:
    row, col = inspector.pixel_picker(model, prediction, image)
with numbers_column:
    inspector.pixel_equations(model, prediction, image, row, col)
