"""Checkpoints to models, once per process: the checkpoint folder, its files, and the ones a session uploaded.

The model is loaded once per process (:func:`load_predictor`, ``st.cache_resource``) and shared
by every session, so it is only ever read; what a model offers (merges, scale sets) is asked of
its :class:`~segscale.predictor.Predictor`. A checkpoint uploaded on the Checkpoints page is kept
in the session (:func:`use_uploaded_checkpoint`) and offered in every checkpoint box of it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from segscale.checkpoint import DEFAULT_CHECKPOINT_NAME, CheckpointError, CheckpointMetadata, load_checkpoint_bytes
from segscale.inference import FastPathOptions
from segscale.predictor import Predictor
from ui.limits import UPLOADED_CHECKPOINTS_PER_SESSION
from ui.session import UPLOADED_CHECKPOINTS_KEY

APP_DIR = Path(__file__).resolve().parent.parent  # the folder of app.py
CHECKPOINT_DIR_ENV = "SEGSCALE_CHECKPOINT_DIR"
UPLOADED_PREFIX = "uploaded: "  # how a checkpoint uploaded this session is named in the checkpoint box


def checkpoint_dir() -> Path:
    """``$SEGSCALE_CHECKPOINT_DIR``, else ``checkpoints/`` next to app.py."""
    configured = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(configured).expanduser() if configured else APP_DIR / "checkpoints"


def checkpoint_files(folder: Path | None = None) -> list[Path]:
    """Every ``.pt`` in the folder, the shipped demo model first (the one a first visit opens), then by name."""
    folder = checkpoint_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    found = sorted(path for path in folder.glob("*.pt") if path.is_file())
    return sorted(found, key=lambda path: (path.name != DEFAULT_CHECKPOINT_NAME, path.name.lower()))


@dataclass(frozen=True)
class LoadedModel:
    """A predictor as cached for the whole process (shared by sessions, so only ever read)."""

    predictor: Predictor
    path: Path
    key: str  # path, size and modification time: a replaced file is a new model
    load_s: float

    @property
    def metadata(self) -> CheckpointMetadata:
        return self.predictor.metadata


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_model(key: str, path: str, autocast: str = "auto") -> LoadedModel:
    started = time.perf_counter()
    predictor = Predictor.from_checkpoint(path, options=FastPathOptions(autocast=autocast))
    return LoadedModel(predictor, Path(path), key, time.perf_counter() - started)


def _precision_key(autocast: str) -> str:
    return "" if autocast == "auto" else f"|autocast={autocast}"


def load_predictor(path: Path, autocast: str = "auto") -> LoadedModel:
    """The model of a checkpoint file, loaded once per process; raises CheckpointError.

    Cached on the file's size and modification time, so a checkpoint replaced on disk (a
    better model trained meanwhile) is read again. The predictor is shared by every session
    and must be used read-only (``Predictor.predict`` is). ``autocast="off"`` gives a float32
    copy (the pixel inspector's: its numbers are read digit by digit), a model of its own
    with a cache key of its own.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name}: no such file in {path.parent}")
    return _load_model(file_key(path) + _precision_key(autocast), str(path), autocast)


def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_uploaded_model(key: str, name: str, autocast: str, _data: bytes) -> LoadedModel:
    started = time.perf_counter()
    model, metadata = load_checkpoint_bytes(_data, name)
    predictor = Predictor(model, metadata, options=FastPathOptions(autocast=autocast))
    return LoadedModel(predictor, Path(name), key, time.perf_counter() - started)


def load_uploaded_predictor(name: str, data: bytes, autocast: str = "auto") -> LoadedModel:
    """The model in an uploaded checkpoint's bytes (read with ``weights_only=True``); raises CheckpointError.

    Cached on a digest of the bytes: only a session holding the file can ask for it.
    """
    return _load_uploaded_model(f"upload|{bytes_digest(data)}" + _precision_key(autocast), name, autocast, data)


def uploaded_checkpoints() -> dict[str, tuple[str, bytes]]:
    """The checkpoints this session chose to use from the Checkpoints page: {option: (file name, bytes)}."""
    return st.session_state.get(UPLOADED_CHECKPOINTS_KEY, {})


def use_uploaded_checkpoint(name: str, data: bytes) -> str:
    """Offer an uploaded checkpoint in every checkpoint box of this session, and choose it; returns its option.

    The session keeps the last :data:`UPLOADED_CHECKPOINTS_PER_SESSION` of them (their bytes stay in memory).
    """
    option = f"{UPLOADED_PREFIX}{name}"
    kept = {key: value for key, value in uploaded_checkpoints().items() if key != option}
    kept[option] = (name, data)  # the newest last; the oldest go, so a session holds a bounded number of files
    st.session_state[UPLOADED_CHECKPOINTS_KEY] = dict(list(kept.items())[-UPLOADED_CHECKPOINTS_PER_SESSION:])
    st.session_state["checkpoint"] = option
    return option
