"""How it works: the model for a student, with the loaded checkpoint's own architecture and training card.

Command-line twin: ``python -m segscale describe [--checkpoint FILE] [--all-layers] [--paper]``.
"""

import streamlit as st

from ui import how_it_works, model_controls, session

st.set_page_config(page_title="How it works · segscale", page_icon=":material/school:", layout="wide")
session.keep_choices()
model, _ = model_controls.model_sidebar(scale_set=False)

st.title("How it works")
st.caption(
    "Attention to Scale (Chen et al., CVPR 2016): one network at "
    "several scales, and a learned, per-pixel choice between them."
)
if model is None:
    st.stop()
how_it_works.how_it_works_section(model)
st.header("This checkpoint's architecture")
how_it_works.architecture_section(model)
st.header("This checkpoint's training card")
how_it_works.training_card_section(model.metadata)
