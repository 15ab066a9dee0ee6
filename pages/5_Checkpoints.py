"""Checkpoints: what each shipped checkpoint is, and a checkpoint file of one's own.

Command-line twin: ``python -m segscale checkpoints [FILE_OR_FOLDER ...]``.
"""

import streamlit as st

import app_helpers as helpers

st.set_page_config(page_title="Checkpoints · segscale", page_icon=":material/inventory_2:", layout="wide")
helpers.keep_choices()

st.title("Checkpoints")
st.caption("Every checkpoint carries its own card: architecture, trained scales, data, training run and scores.")
st.header("Shipped")
helpers.shipped_checkpoints_section()
st.header("Your own")
helpers.own_checkpoint_section()
