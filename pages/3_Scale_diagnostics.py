"""Scale diagnostics: which scale the attention trusts, against object size and class, over many images.

Command-line twin: ``python -m segscale diagnose --count 20 --out DIR`` (or ``--images a.jpg b.png``).
"""

import streamlit as st

from ui import model_controls, scale_diagnostics, session

st.set_page_config(page_title="Scale diagnostics · segscale", page_icon=":material/query_stats:", layout="wide")
session.keep_choices()
model, scales = model_controls.model_sidebar()

st.title("Scale diagnostics")
st.caption(
    "Run the checkpoint over many images: mean weight wˢ per scale against "
    "object size and class, the pixels each scale dominates, mIoU per merge."
)
source = scale_diagnostics.diagnostics_source()
if model is None or scales is None:
    st.stop()
if source == scale_diagnostics.DIAGNOSE_SOURCES[0]:
    scale_diagnostics.scaleshapes_diagnostics(model, scales)
else:
    scale_diagnostics.upload_diagnostics(model, scales)
