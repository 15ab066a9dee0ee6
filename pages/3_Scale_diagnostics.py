"""Scale diagnostics: which scale the attention trusts, against object size and class, over many images.

Command-line twin: ``python -m segscale diagnose --count 20 --out DIR`` (or ``--images a.jpg b.png``).
"""

import streamlit as st

import app_helpers as helpers

st.set_page_config(page_title="Scale diagnostics · segscale", page_icon=":material/query_stats:", layout="wide")
helpers.keep_choices()
model, scales = helpers.model_sidebar()

st.title("Scale diagnostics")
st.caption("Run the checkpoint over many images: mean weight wˢ per scale against object size and class, the pixels each scale dominates, mIoU per merge.")
source = helpers.diagnostics_source()
if model is None or scales is None:
    st.stop()
if source == helpers.DIAGNOSE_SOURCES[0]:
    helpers.scaleshapes_diagnostics(model, scales)
else:
    helpers.upload_diagnostics(model, scales)
