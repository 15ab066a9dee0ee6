"""What the app takes and keeps: the size of an upload, and how much each cache may hold.

A server that runs for days must not grow, so every cache that holds images or predictions has a
number of entries and a time to live, set from here (tests check that each has both).
"""

from __future__ import annotations

import streamlit as st

# st.cache_data keeps each entry pickled, once per process, shared by every session; each cached function keeps at most
# its number of entries (least recently used out first) and drops an entry CACHE_TTL_S after computing it, so an
# idle server gives its memory back. Sizes per entry, measured with the demo checkpoint at three
# scales (docs/APP.md): a Prediction is 1.6 MB for 512x512, 6.4 MB for 1024x1024 and 19 MB at
# load_image's 2048 px cap (2048x1536; uint8 labels, segscale.label_maps), a display view about 6-8 MB
# whatever the image, the view of what each scale decides 2.4 MB (index maps, coloured when shown), a
# decoded upload at most 9.4 MB: at worst 16 x 19 + 16 x 8 + 16 x 2.4 + 8 x 9.4, about 0.55 GB for these four.
# server.maxCacheDataSize (.streamlit/config.toml, 1 GB) bounds every cache together, whatever each holds.
CACHE_TTL_S = 3600  # an hour: long enough for a person's visit, short enough to free an idle server
PREDICTION_CACHE_ENTRIES = 16  # eight people at once, each with the image they look at and the one before
VIEW_CACHE_ENTRIES = 16  # display maps, inspector grids, merge comparisons: one or two per prediction
DECODED_UPLOAD_CACHE_ENTRIES = 8  # a file is decoded once per visit; only re-runs of the same page hit it
DIAGNOSTICS_CACHE_ENTRIES = 8  # scale-diagnostics runs and their figures: few people ask for them
UPLOADED_CHECKPOINTS_PER_SESSION = 3  # checkpoint bytes a session keeps to choose from (oldest dropped)


def upload_limit_mb() -> int:
    """The largest file the uploaders take, in MB: ``server.maxUploadSize`` as the server runs with it."""
    return int(st.get_option("server.maxUploadSize"))


def upload_limit_text() -> str:
    """The upload limit in plain words, for every uploader's help (Streamlit's own note says only "per file")."""
    return f"Files up to {upload_limit_mb()} MB each; the uploader refuses a larger one before sending it."
