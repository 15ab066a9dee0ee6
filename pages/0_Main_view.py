"""segscale's main view: one image, every scale side by side, the fused result.

The first page of ``streamlit run app.py`` (app.py names the pages); it also runs on its own.

Layout only; the controls live in ui/model_controls.py and ui/image_sources.py, the cached model in
ui/model_loading.py, this page's sections in ui/main_view.py, the pictures in segscale/visualize.py.
"""

import time

import streamlit as st

from ui import image_sources, main_view, messages, model_controls, session
from ui.prediction import predict

started = time.perf_counter()
st.set_page_config(page_title="segscale · Attention to Scale", page_icon=":material/layers:", layout="wide")
session.keep_choices()

with st.sidebar:
    st.header("Model")
    model = model_controls.checkpoint_picker()
    merge = model_controls.merge_picker(model) if model else None
    scales = model_controls.scale_set_picker(model, merge) if model else None
    st.subheader("Where it runs")
    timings = st.empty()
    if model:
        with timings.container():
            main_view.show_device(model)

st.title("Attention to Scale")
st.caption(
    "Chen et al., CVPR 2016. The image is resized to several scales; one network with shared weights gives "
    "a score map fˢ per scale, and per-pixel weights wˢ (a softmax over scales) fuse them: g = Σ wˢ fˢ."
)
image_column, class_column = st.columns([3, 2], gap="large")
with image_column:
    image = image_sources.page_image_input(model, notices_here=False)  # listed under the image's summary below
if image is None or model is None or scales is None:
    st.stop()

result = predict(model, image, scales, merge)
if result is None:
    st.stop()
prediction, computed_now = result
with image_column:
    st.markdown(main_view.image_summary(image, prediction))
    messages.show_notices(image.notices)

view_started = time.perf_counter()
with class_column:
    class_index, score_kind = main_view.class_controls(model.metadata, prediction.labels, f"{model.key}|{image.key}")
view = main_view.build_view(
    model.key, image.key, prediction.scales, prediction.merge, class_index, score_kind, prediction, model.metadata
)
decides = main_view.build_decides_view(
    model.key, image.key, prediction.scales, prediction.merge, prediction, model.metadata
)
view_s = time.perf_counter() - view_started

st.subheader("Each scale")
main_view.per_scale_section(view, prediction, model.metadata, decides)
st.subheader("Fused")
main_view.fused_section(view, prediction, model.metadata, image)
st.subheader("What each scale decides")
main_view.decides_section(decides, prediction)
st.subheader("Downloads")
main_view.downloads_section(model, image, prediction, view)

with timings.container():
    main_view.show_timings(model, image, prediction, computed_now, view_s, time.perf_counter() - started)
