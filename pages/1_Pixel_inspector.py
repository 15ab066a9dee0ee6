"""Pixel inspector: pick a pixel, see Eq. 2 (or the chain of gates) and
Eq. 1 with its numbers, and what average and max pooling make of it.

Command-line twin: ``python -m segscale inspect IMAGE --pixel ROW COL`` (or ``--sample val:3``).
"""

import streamlit as st

from ui import common, inspector, photos

st.set_page_config(page_title="Pixel inspector · segscale", page_icon=":material/my_location:", layout="wide")
common.keep_choices()
model, scales = common.model_sidebar(autocast="off")

st.title("Pixel inspector")
st.caption(
    "Pick a pixel (click the grid, or type its row and column) and follow Eq. 2 and Eq. 1 with its numbers "
    "(for a hierarchical model, the chain of gates and Eq. 1 with its effective weights)."
)
picker_column, numbers_column = st.columns([5, 8], gap="large")
with picker_column:
    image = common.image_input(
        max_side=inspector.INSPECTOR_MAX_SIDE, photos=model is not None and photos.is_photo_model(model.metadata)
    )
    if image is not None:
        common.show_notices(image.notices)
        if model is not None:
            photos.photo_on_shapes_model_notice(model.metadata, image)
if image is None or model is None or scales is None:
    st.stop()
result = common.predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
prediction, _ = result
with picker_column:
    row, col = inspector.pixel_picker(model, prediction, image)
with numbers_column:
    inspector.pixel_equations(model, prediction, image, row, col)
