"""Checkpoints: what each shipped checkpoint is, a checkpoint file of one's own, and how to import torchvision's.

Command-line twin: ``python -m segscale checkpoints [FILE_OR_FOLDER ...]``.
"""

import streamlit as st

from ui import checkpoints, session

st.set_page_config(page_title="Checkpoints · segscale", page_icon=":material/inventory_2:", layout="wide")
session.keep_choices()

st.title("Checkpoints")
st.caption("Every checkpoint carries its own card: architecture, trained scales, data, training run and scores.")
st.header("Shipped")
checkpoints.shipped_checkpoints_section()
st.header("Your own")
checkpoints.folder_own_checkpoints_section()
checkpoints.own_checkpoint_section()
st.header("A network trained on photos, from torchvision")
checkpoints.download_and_import_section()
checkpoints.torchvision_import_section()
