"""A prediction for (checkpoint, image, scales, merge), computed once and cached.

Moving a display slider reruns the page but never the model: :func:`predict` is cached on the
checkpoint's key, the image's digest, the scales and the merge.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from segscale.images import ImageError
from segscale.predictor import Prediction
from ui.chosen_image import ImageInput
from ui.limits import CACHE_TTL_S, PREDICTION_CACHE_ENTRIES
from ui.messages import LOG, show_error
from ui.model_loading import LoadedModel
from ui.session import LAST_PREDICTION_KEY


@st.cache_data(max_entries=PREDICTION_CACHE_ENTRIES, ttl=CACHE_TTL_S, show_spinner=False)
def _predict(
    model_key: str,
    pixels_key: str,
    scales: tuple[float, ...],
    merge: str,
    _model: LoadedModel,
    _rgb: np.ndarray,
    _misses: list,
) -> Prediction:
    _misses.append(1)  # runs only on a cache miss: tells the caller the model really ran
    return _model.predictor.predict(_rgb, scales=scales, merge=merge)


def predict(
    model: LoadedModel, image: ImageInput, scales: tuple[float, ...], merge: str
) -> tuple[Prediction, bool] | None:
    """The prediction for (checkpoint, image, scales, merge), from the cache when it has it.

    Returns (prediction, computed_now), or None with an error on the page. Also stored in
    ``st.session_state[LAST_PREDICTION_KEY]`` for other pages.
    """
    misses: list = []
    try:
        with st.spinner(
            (
                f"Running the model at {len(scales)} "
                f"scale{'s' if len(scales) > 1 else ''} on {model.predictor.device_name}…"
            ),
            show_time=True,
        ):
            prediction = _predict(model.key, image.key, tuple(scales), merge, model, image.rgb, misses)
    except (ImageError, ValueError) as error:
        show_error(str(error), "The model cannot take this image with these settings.")
        return None
    except Exception as error:  # the page must survive anything the model does; the log keeps the traceback
        LOG.exception("prediction failed")
        show_error(f"{type(error).__name__}: {error}", "The prediction failed.")
        return None
    st.session_state[LAST_PREDICTION_KEY] = prediction
    return prediction, bool(misses)
