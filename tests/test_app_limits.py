"""Bounded memory through AppTest, so that a long-running server does not grow: cache limits, one image per
session, the upload limit.

The memory the app holds after many uploads and many sessions is measured, not tested here:
scripts/measure_app_memory.py, figures in docs/APP.md. These tests check the mechanisms that
make it flat: a prediction cache that forgets its oldest entry past ``PREDICTION_CACHE_ENTRIES``,
session state that replaces its image rather than piling them up, a session's uploaded
checkpoints capped, and an upload limit the page states in plain words, read from Streamlit's
config when the page runs.
"""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import numpy as np
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from segscale.predictor import Prediction
from tests.conftest import CHECKPOINTS, TIMEOUT, assert_clean, last_prediction, noise, open_page, png
from tests.conftest import upload_image as upload
from ui.limits import PREDICTION_CACHE_ENTRIES, UPLOADED_CHECKPOINTS_PER_SESSION
from ui.session import LAST_PREDICTION_KEY, LAST_UPLOAD_KEY, UPLOADED_CHECKPOINTS_KEY


def model_caption(at: AppTest) -> str:
    """The sidebar's "Model: ..." line: says "prediction cached" when the model did not run."""
    return next(c.value for c in at.sidebar.caption if "Model: " in c.value)


def replace_upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").upload(name, data, "image/png")
    return at.run()


def held_images(at: AppTest) -> list[tuple[str, int]]:
    """(key, bytes) of every session-state value that holds image data: bytes, arrays, predictions."""
    found = []
    for key, value in at.session_state.to_dict().items():
        values = value if isinstance(value, (tuple, list)) else (value,)
        for item in values:
            if isinstance(item, (bytes, bytearray)):
                found.append((key, len(item)))
            elif isinstance(item, io.BytesIO):  # the uploader's UploadedFile
                found.append((key, item.getbuffer().nbytes))
            elif isinstance(item, np.ndarray):
                found.append((key, item.nbytes))
            elif isinstance(item, Prediction):
                found.append((key, item.image.nbytes + item.labels.nbytes + item.score_maps.nbytes))
    return found


def test_the_prediction_cache_forgets_its_oldest_entry_and_the_session_keeps_one_image(checkpoint_dir):
    """PREDICTION_CACHE_ENTRIES + 1 different uploads: the first one's prediction has left the cache,
    a recent one's has not, and the session holds one upload and one prediction, the latest."""
    images = [noise(24, 32, seed=seed) for seed in range(PREDICTION_CACHE_ENTRIES + 1)]
    at = open_page()
    upload(at, "image_0.png", png(images[0]))
    assert "prediction cached" not in model_caption(at)
    for index, rgb in enumerate(images[1:], start=1):
        replace_upload(at, f"image_{index}.png", png(rgb))
        assert_clean(at)
    held = held_images(at)
    assert sorted(key for key, _ in held) == sorted([LAST_PREDICTION_KEY, LAST_UPLOAD_KEY, "upload"]), held
    assert at.session_state[LAST_UPLOAD_KEY][0] == f"image_{len(images) - 1}.png"
    np.testing.assert_array_equal(last_prediction(at).image, images[-1])

    replace_upload(at, "again_1.png", png(images[2]))  # within the last PREDICTION_CACHE_ENTRIES: still cached
    assert "prediction cached" in model_caption(at)
    replace_upload(at, "again_0.png", png(images[0]))  # the oldest: dropped, so the model runs again
    assert_clean(at)
    assert "prediction cached" not in model_caption(at)
    np.testing.assert_array_equal(last_prediction(at).image, images[0])


def test_the_upload_help_names_the_size_limit_the_server_runs_with(checkpoint_dir):
    at = upload(open_page(), "small.png", png(noise(24, 32)))
    uploader = at.file_uploader(key="upload")
    assert uploader.proto.max_upload_size_mb == 50  # .streamlit/config.toml, what Streamlit's uploader enforces
    assert "Files up to 50 MB each" in uploader.help

    original = streamlit_config.get_option("server.maxUploadSize")
    streamlit_config.set_option("server.maxUploadSize", 7)
    try:
        at = upload(open_page(), "small.png", png(noise(24, 32)))
        uploader = at.file_uploader(key="upload")
        assert uploader.proto.max_upload_size_mb == 7
        assert "Files up to 7 MB each" in uploader.help and "50 MB" not in uploader.help
    finally:
        streamlit_config.set_option("server.maxUploadSize", original)


def test_the_checkpoint_uploader_names_the_size_limit_too(shapes_dir):
    at = open_page(CHECKPOINTS)
    assert "Files up to 50 MB each" in at.file_uploader(key="checkpoint_upload").help


def _use_several_checkpoints(count: int) -> None:
    from ui.model_loading import use_uploaded_checkpoint

    for index in range(count):
        use_uploaded_checkpoint(f"model_{index}.pt", bytes([index]) * 1000)
    use_uploaded_checkpoint("model_1.pt", b"chosen again")  # chosen again: it becomes the newest, not a second copy


def test_a_session_keeps_only_its_last_uploaded_checkpoints():
    count = UPLOADED_CHECKPOINTS_PER_SESSION + 2
    at = AppTest.from_function(_use_several_checkpoints, args=(count,), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    kept = at.session_state[UPLOADED_CHECKPOINTS_KEY]
    assert len(kept) == UPLOADED_CHECKPOINTS_PER_SESSION
    assert list(kept)[-1] == "uploaded: model_1.pt" and kept["uploaded: model_1.pt"] == ("model_1.pt", b"chosen again")
    expected_rest = [f"uploaded: model_{index}.pt" for index in range(count) if index != 1][
        -(UPLOADED_CHECKPOINTS_PER_SESSION - 1) :
    ]
    assert list(kept)[:-1] == expected_rest
    assert at.session_state["checkpoint"] == "uploaded: model_1.pt"


def test_the_cache_limits_are_set_on_every_cache_of_images_and_predictions():
    """Each st.cache_data that holds predictions, maps, comparisons, diagnostics or decoded uploads
    has both a number of entries and a time to live (read from the decorated functions' own settings)."""
    from ui import comparison, image_sources, inspector, limits, main_view, prediction, scale_diagnostics

    cached = {
        "predictions": prediction._predict,
        "decoded uploads": image_sources.decode_upload,
        "views": main_view.build_view,
        "inspector grids": inspector._grid_frame,
        "comparisons": comparison._comparison,
        "diagnostics": scale_diagnostics._scale_diagnostics,
        "image diagnostics": scale_diagnostics._image_diagnostics,
        "diagnostics figures": scale_diagnostics._diagnostics_pngs,
        "image diagnostics figures": scale_diagnostics._image_set_pngs,
    }
    for what, function in cached.items():
        info = function._info if hasattr(function, "_info") else None
        assert info is not None, f"{what}: not an st.cache_data function"
        assert info.max_entries is not None and info.max_entries <= 16, (what, info.max_entries)
        assert info.ttl is not None and info.ttl == limits.CACHE_TTL_S, (what, info.ttl)


def test_the_config_bounds_the_caches_bytes_and_the_uploads():
    """The byte budget over all caches is set and at least the worst case of the per-function limits."""
    from streamlit.byte_util import config_max_cache_data_size_to_bytes

    server = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())["server"]
    budget = config_max_cache_data_size_to_bytes(server["maxCacheDataSize"])
    assert budget is not None and budget >= 0.85e9, server
    assert server["maxUploadSize"] == 50
