"""Pixel inspector: pick a pixel, see Eq. 2 and Eq. 1 with its numbers, and what average and max pooling make of it.

Command-line twin: ``python -m segscale inspect IMAGE --pixel ROW COL`` (or ``--sample val:3``).
"""

import streamlit as st

import app_helpers as helpers

st.set_page_config(page_title="Pixel inspector · segscale", page_icon=":material/my_location:", layout="wide")
helpers.keep_choices()
model, scales = helpers.model_sidebar(autocast="off")

st.title("Pixel inspector")
st.caption("Pick a pixel (click the grid, or type its row and column) and follow Eq. 2 and Eq. 1 with its numbers.")
picker_column, numbers_column = st.columns([5, 8], gap="large")
with picker_column:
    image = helpers.image_input(max_side=helpers.INSPECTOR_MAX_SIDE)
    if image is not None:
        helpers.show_notices(image.notices)
if image is None or model is None or scales is None:
    st.stop()
result = helpers.predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
prediction, _ = result
with picker_column:
    row, col = helpers.pixel_picker(model, prediction, image)
with numbers_column:
    helpers.pixel_equations(model, prediction, image, row, col)
