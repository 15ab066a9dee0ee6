"""Merge comparison: attention, average and max pooling on one image, from one forward pass.

Command-line twin: ``python -m segscale compare IMAGE`` (or ``--sample val:3`` for ground truth).
"""

import streamlit as st

import app_helpers as helpers

st.set_page_config(page_title="Merge comparison · segscale", page_icon=":material/compare:", layout="wide")
helpers.keep_choices()
model, scales = helpers.model_sidebar()

st.title("Merge comparison")
st.caption("The same score maps fˢ fused three ways: learned attention weights, average pooling (wˢ = 1/S), max pooling.")
input_column, _ = st.columns([2, 3])
with input_column:
    image = helpers.image_input()
    if image is not None:
        helpers.show_notices(image.notices)
if image is None or model is None or scales is None:
    st.stop()
result = helpers.predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
helpers.comparison_section(model, image, result[0])
