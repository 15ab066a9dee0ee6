"""segscale's app: the main view and five pages on one sidebar.

    streamlit run app.py

The sidebar names each page by what it shows, the main view included (a script run on its own would
be listed under its file name, "app"). Each page's code lives with it in pages/, the sections in ui/.
"""

import streamlit as st

# Each page sets its own title and icon when it runs; this is the tab's until then.
st.set_page_config(page_title="segscale · Attention to Scale", page_icon=":material/layers:", layout="wide")

PAGES = [
    st.Page("pages/0_Main_view.py", title="Main view", icon=":material/layers:", default=True),
    st.Page("pages/1_Pixel_inspector.py", title="Pixel inspector", icon=":material/my_location:"),
    st.Page("pages/2_Merge_comparison.py", title="Merge comparison", icon=":material/compare:"),
    st.Page("pages/3_Scale_diagnostics.py", title="Scale diagnostics", icon=":material/query_stats:"),
    st.Page("pages/4_How_it_works.py", title="How it works", icon=":material/school:"),
    st.Page("pages/5_Checkpoints.py", title="Checkpoints", icon=":material/inventory_2:"),
]
st.navigation(PAGES).run()
