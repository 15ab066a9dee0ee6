"""The Checkpoints page's sections: a card per shipped checkpoint,
a checkpoint file of one's own, importing torchvision's.

Widget keys: ``checkpoint_upload``, ``checkpoint_use``. The cards come from
:mod:`segscale.checkpoint_cards`, as in ``python -m segscale checkpoints``. An uploaded file is read
with ``weights_only=True``, and kept in the session only.
"""

from __future__ import annotations

import streamlit as st

from segscale import architecture as arch
from segscale import checkpoint_cards
from segscale.checkpoint import (
    SHIPPED_CHECKPOINTS,
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint_bytes,
)
from ui import widgets
from ui.limits import upload_limit_text
from ui.messages import LOG, plain, show_error
from ui.model_loading import (
    UPLOADED_PREFIX,
    bytes_digest,
    checkpoint_dir,
    checkpoint_files,
    file_key,
    uploaded_checkpoints,
    use_uploaded_checkpoint,
)


@st.cache_data(max_entries=32, show_spinner=False)
def _cached_checkpoint_card(cache_key: str, path: str) -> checkpoint_cards.CheckpointCard:
    return checkpoint_cards.read_checkpoint_card(path)


@st.cache_data(max_entries=4, show_spinner=False)
def _read_uploaded_checkpoint(
    digest: str, name: str, _data: bytes
) -> tuple[CheckpointMetadata, arch.ArchitectureSummary]:
    """Metadata and architecture of an uploaded checkpoint; raises CheckpointError (not cached)."""
    model, metadata = load_checkpoint_bytes(_data, name)
    return metadata, arch.architecture_summary(model)


def _show_card(metadata: CheckpointMetadata, caption: str, extra=()) -> None:
    """A checkpoint's card: its name, a caption (file, size), what it is in short, the whole training card folded."""
    full = checkpoint_cards.training_card(metadata)
    short = checkpoint_cards.short_card(full) + list(extra)
    with st.container(border=True):
        st.markdown(f"**{plain(metadata.name or 'unnamed model')}**")
        st.caption(plain(caption))
        widgets.pairs_table(short)
        with st.expander("Full training card"):
            widgets.pairs_table(full)


def _is_shipped(path) -> bool:
    return path.name in SHIPPED_CHECKPOINTS


def shipped_checkpoints_section() -> None:
    """A card per shipped checkpoint in the checkpoint folder: trunk, head, scales, data, steps, metrics."""
    folder = checkpoint_dir()
    paths = checkpoint_files(folder)
    if not paths:
        show_error(f"No checkpoint (.pt file) in {folder}.", "No checkpoints.")
        return
    shipped = [path for path in paths if _is_shipped(path)]
    if not shipped:
        st.caption(f"None of the shipped checkpoints ({', '.join(SHIPPED_CHECKPOINTS)}) is in {plain(folder)}.")
    _cards(shipped, "shipped with segscale (checkpoints/README.md)")


def folder_own_checkpoints_section() -> None:
    """A card per other checkpoint in the folder: one the person imported, trained or copied there."""
    own = [path for path in checkpoint_files(checkpoint_dir()) if not _is_shipped(path)]
    if own:
        st.markdown(f"**In the checkpoint folder** ({plain(checkpoint_dir())}), besides the shipped ones:")
        _cards(own, "yours, in the checkpoint folder")


def _cards(paths, origin: str) -> None:
    """Two columns of cards, each captioned with its file, size and where it comes from (or why it cannot be used)."""
    if not paths:
        return
    columns = st.columns(2, gap="medium")
    for k, path in enumerate(paths):
        card = _cached_checkpoint_card(file_key(path), str(path))
        with columns[k % 2]:
            caption = f"{path.name} · {card.size_bytes / 1e6:.1f} MB · {origin}"
            if not card.ok:
                with st.container(border=True):
                    st.markdown(f"**{plain(path.name)}**")
                    show_error(card.error or "unreadable", "Cannot be used.")
                continue
            _show_card(card.metadata, caption)


def own_checkpoint_section() -> None:
    """Upload a .pt: read with weights_only=True, its card shown, and on request used on every page of this session."""
    uploaded = st.file_uploader(
        "A checkpoint file of your own (.pt)",
        key="checkpoint_upload",
        help="A segscale checkpoint (python -m segscale train writes them). It is read with "
        "torch.load(weights_only=True): a file whose pickle would build "
        f"arbitrary objects is refused, never run. {upload_limit_text()}",
    )
    if uploaded is None:
        st.caption(
            "Read with `weights_only=True`: only tensors and plain data "
            "are unpickled, never code. It stays in this session only."
        )
        return
    data = uploaded.getvalue()
    try:
        metadata, summary = _read_uploaded_checkpoint(bytes_digest(data), uploaded.name, data)
    except CheckpointError as error:
        show_error(str(error), "This file cannot be used as a checkpoint.")
        return
    except Exception as error:  # anything else a hostile or odd file provokes: a message, not a traceback
        LOG.exception("reading an uploaded checkpoint failed")
        show_error(f"{uploaded.name}: {type(error).__name__}: {error}", "This file cannot be used as a checkpoint.")
        return
    option = f"{UPLOADED_PREFIX}{uploaded.name}"
    totals = [
        ("parameters", f"{summary.total_parameters:,}"),
        ("output stride", str(summary.output_stride)),
        (
            "receptive field",
            arch.NOT_COMPUTED_BRANCHED if summary.receptive_field is None else f"{summary.receptive_field} px",
        ),
    ]
    _show_card(metadata, f"{uploaded.name} · {len(data) / 1e6:.1f} MB · uploaded, read with weights_only=True", totals)
    if option in uploaded_checkpoints():
        st.success(
            f"In use for this session: choose “{plain(option)}” in the Checkpoint box of any page.",
            icon=":material/check:",
        )
    else:
        st.button(
            "Use it in the app for this session",
            key="checkpoint_use",
            icon=":material/input:",
            on_click=use_uploaded_checkpoint,
            args=(uploaded.name, data),
        )


def torchvision_import_section() -> None:
    """How to bring one of torchvision's photo networks in: fetch,
    import, optionally train a head; which weights are cached here."""
    from segscale.config import TORCHVISION_TRUNKS
    from segscale.torchvision_import import (
        cached_kinds,
        fetch_command,
        hub_checkpoint_dir,
        import_command,
        train_head_command,
    )

    example = "deeplabv3_mobilenet_v3_large"
    st.markdown(
        "torchvision's semantic segmentation networks, trained on photos for the 21 PASCAL VOC classes (person, cat, "
        "car, ...), work here as the share-net: their backbone is the trunk, their classifier the score head. Three "
        "steps, each one command, run from the folder of app.py (shown for "
        f"{example}; any of {plain(', '.join(TORCHVISION_TRUNKS))}):"
    )
    st.markdown("**1. Fetch the weights** (once, on a machine with the internet) into torchvision's cache:")
    st.code(fetch_command(example), language="bash")
    st.markdown(
        "**2. Import** them as a segscale checkpoint in the checkpoint folder, where every page lists it (it merges by "
        "average and max: it has no attention head yet):"
    )
    st.code(import_command(example), language="bash")
    st.markdown(
        "**3. Optionally, train an attention head** on PASCAL VOC 2012 (downloaded with a progress bar; add `--sbd` "
        "for SBD's train_aug) with the network frozen: only the head learns, and a killed run resumes. See "
        "docs/TORCHVISION.md for the data and the cost:"
    )
    st.code(train_head_command(f"checkpoints/{example}.pt"), language="bash")
    cached = cached_kinds()
    imported = _imported_kinds()
    for kind, files in imported.items():
        in_use = st.session_state.get("checkpoint") in files
        st.success(
            f"{plain(kind)} is imported: {plain(', '.join(files))} in the checkpoint folder"
            + (", in use now" if in_use else "; choose it in the Checkpoint box of any page")
            + ". Step 3 trains an attention head on it.",
            icon=":material/check:",
        )
    found = [kind for kind, path in cached.items() if path is not None and kind not in imported]
    folder = hub_checkpoint_dir()
    if found:
        st.success(
            f"Already in this machine's cache ({plain(folder)}), ready for step 2 without the internet: "
            f"{plain(', '.join(found))}.",
            icon=":material/check:",
        )
    elif not imported:
        st.info(
            f"No torchvision weights in this machine's cache ({plain(folder)}) yet: start with step 1.",
            icon=":material/download:",
        )
    st.caption(
        "Without the internet, copy the weights file into that folder from a machine that has it, or import any local "
        "state dict with `--weights FILE`."
    )


def _imported_kinds() -> dict[str, list[str]]:
    """Each torchvision kind imported into the checkpoint folder -> the file names that hold it."""
    from segscale.torchvision_import import is_imported

    kinds: dict[str, list[str]] = {}
    for path in checkpoint_files(checkpoint_dir()):
        card = _cached_checkpoint_card(file_key(path), str(path))
        if card.ok and is_imported(card.metadata):
            kinds.setdefault(card.metadata.model.trunk.name, []).append(path.name)
    return kinds


def _megabytes(size: int | None) -> str:
    return "size unknown" if size is None else f"{size / 1e6:.1f} MB"


def download_and_import_section() -> None:
    """One click for a user who is online: download a torchvision kind's weights (its size first, then a progress
    bar), import them into the checkpoint folder and choose the new checkpoint. Offline or on an error: one
    message with the commands that do the same by hand."""
    from segscale import weights_download as wd
    from segscale.checkpoint import CheckpointError
    from segscale.config import TORCHVISION_TRUNKS
    from segscale.torchvision_import import MissingWeightsError, cached_weights_path, import_to_checkpoint

    kind = st.selectbox("torchvision network", TORCHVISION_TRUNKS, key="download_kind")
    out = checkpoint_dir() / f"{kind}.pt"
    cached = cached_weights_path(kind).is_file()
    if out.is_file():
        st.caption(f"Already imported as {plain(out.name)}: pick it in the Checkpoint box of any page.")
    elif cached:
        st.caption("Its weights are already in this machine's cache: importing needs no download.")
    if not st.button(f"Download and import {kind}", key="download_import", icon=":material/download:"):
        return
    if not cached:
        url = wd.weights_url(kind)
        try:
            size = wd.remote_size(url)
        except (OSError, ValueError) as error:  # URLError is an OSError
            show_error(wd.offline_message(kind, str(getattr(error, "reason", error))), "No download.")
            return
        st.markdown(f"**{plain(kind)}**: {_megabytes(size)} from {plain(url)}")
        bar = st.progress(0.0, text=f"Downloading {_megabytes(size)}…")

        def on_progress(done: int, total: int | None) -> None:
            share = min(1.0, done / total) if total else 0.0
            bar.progress(share, text=f"Downloading: {done / 1e6:.1f} of {_megabytes(total)}")

        try:
            wd.download_weights(kind, on_progress=on_progress)
        except wd.DownloadError as error:
            show_error(str(error), "The download did not complete.")
            return
    try:
        with st.spinner(f"Importing {kind}…"):
            import_to_checkpoint(kind, out, download=False, progress=False)
    except (CheckpointError, MissingWeightsError, ValueError, OSError) as error:
        show_error(str(error), "The import failed.")
        return
    st.session_state["checkpoint"] = out.name
    st.success(
        f"Imported as {plain(out.name)} and chosen: every page now uses it (it merges by average and max; "
        "the views of what each scale decides work without an attention head).",
        icon=":material/check:",
    )
