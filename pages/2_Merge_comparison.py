"""Merge comparison: attention (or hierarchical attention), average and max pooling on one image, from one forward pass.

Command-line twin: ``python -m segscale compare IMAGE`` (or ``--sample val:3`` for ground truth).
"""

import streamlit as st

from ui import comparison, image_sources, model_controls, session
from ui.prediction import predict

st.set_page_config(page_title="Merge comparison · segscale", page_icon=":material/compare:", layout="wide")
session.keep_choices()
model, scales = model_controls.model_sidebar()

st.title("Merge comparison")
st.caption(comparison.page_caption(model))
input_column, _ = st.columns([2, 3])
with input_column:
    image = image_sources.page_image_input(model)
if image is None or model is None or scales is None:
    st.stop()
result = predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
comparison.comparison_section(model, image, result[0])
