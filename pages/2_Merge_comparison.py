"""Merge comparison: attention (or hierarchical attention), average and max pooling on one image, from one forward pass.

Command-line twin: ``python -m segscale compare IMAGE`` (or ``--sample val:3`` for ground truth).
"""

import streamlit as st

from ui import common, comparison, photos

st.set_page_config(page_title="Merge comparison · segscale", page_icon=":material/compare:", layout="wide")
common.keep_choices()
model, scales = common.model_sidebar()

st.title("Merge comparison")
st.caption(comparison.page_caption(model))
input_column, _ = st.columns([2, 3])
with input_column:
    image = common.image_input(photos=model is not None and photos.is_photo_model(model.metadata))
    if image is not None:
        common.show_notices(image.notices)
        if model is not None:
            photos.photo_on_shapes_model_notice(model.metadata, image)
if image is None or model is None or scales is None:
    st.stop()
result = common.predict(model, image, scales, model.predictor.inspection_merge)
if result is None:
    st.stop()
comparison.comparison_section(model, image, result[0])
