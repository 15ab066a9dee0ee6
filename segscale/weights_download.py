"""Downloading a torchvision kind's weights into the torch hub cache, with progress, checked, all or nothing.

    path = download_weights("lraspp_mobilenet_v3_large", on_progress=lambda done, total: ...)

The Checkpoints page's "Download and import" uses this (``fetch-weights`` uses torchvision's own
loader); both leave the file where torchvision's loader and ``import-torchvision`` read it. The file
is streamed to a temporary name in the cache folder, its SHA-256 computed on the way, and moved into
place with ``os.replace`` only when its length is the announced one and its hash starts with the
digits torchvision's file name carries (``...-d234d4ea.pth``). A cut-off, a wrong file, a full disk
or a read-only cache raise :class:`DownloadError` with one sentence and leave the cache as it was.

``SEGSCALE_WEIGHTS_MIRROR`` (a URL prefix) fetches the published file names from another server
(a local mirror, or the tests' server on 127.0.0.1).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.error import URLError

MIRROR_ENV = "SEGSCALE_WEIGHTS_MIRROR"
CHUNK = 1 << 16
TIMEOUT_S = 30.0


class DownloadError(OSError):
    """A download that did not end with a checked file in the cache; the message says why and what to do."""


def weights_url(kind: str) -> str:
    """Where ``kind``'s weights are fetched from: torchvision's URL, or the same file name under the mirror."""
    from .torchvision_import import kind_weights

    url = kind_weights(kind).url
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{os.path.basename(url)}" if mirror else url


def expected_prefix(kind: str) -> str:
    """The first hex digits of the SHA-256 that torchvision's file name for ``kind`` carries."""
    from .torchvision_import import kind_weights

    return os.path.basename(kind_weights(kind).url).rsplit(".", 1)[0].rsplit("-", 1)[-1]


def offline_message(kind: str, reason: str) -> str:
    from .torchvision_import import fetch_command, import_command

    return (
        f"could not download the weights of {kind} ({reason}). On a machine with the internet run "
        f"`{fetch_command(kind)}` then `{import_command(kind)}`, or copy the weights file into the torch hub cache"
    )


def remote_size(url: str, timeout: float = TIMEOUT_S) -> int | None:
    """The size in bytes the server announces for ``url`` (a HEAD request), or None when it says none."""
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _disk_error(error: OSError, folder: Path) -> DownloadError:
    if error.errno == errno.ENOSPC:
        why = f"the disk holding {folder} is full"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = f"the cache folder {folder} is not writable ({error.strerror})"
    else:
        why = f"cannot write in {folder} ({error.strerror or error})"
    return DownloadError(f"{why}; nothing was saved. Free space or set TORCH_HOME to a writable folder, and retry")


def download_weights(
    kind: str,
    *,
    url: str | None = None,
    sha256_prefix: str | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Fetch ``kind``'s weights into the cache folder and return the file's path (nothing to do if present).

    Args:
        url: where from (default :func:`weights_url`).
        sha256_prefix: the hash's expected first hex digits (default: from torchvision's file name).
        on_progress: called with (bytes so far, total or None) as the file arrives.
        cache_dir: the folder (default: torch's hub cache, ``$TORCH_HOME/hub/checkpoints``).
    """
    from .torchvision_import import cached_weights_path, check_kind, hub_checkpoint_dir

    check_kind(kind)
    folder = hub_checkpoint_dir() if cache_dir is None else Path(cache_dir)
    final = folder / cached_weights_path(kind).name
    if final.is_file():
        return final
    url = url or weights_url(kind)
    prefix = (sha256_prefix or expected_prefix(kind)).lower()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{final.name}.", suffix=".partial", delete=False)
    except OSError as error:
        raise _disk_error(error, folder) from None
    partial = Path(handle.name)
    try:
        digest = hashlib.sha256()
        done = 0
        try:
            response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
        except (URLError, TimeoutError, ConnectionError) as error:
            raise DownloadError(offline_message(kind, str(getattr(error, "reason", error)))) from None
        with response, handle:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if on_progress is not None:
                on_progress(0, total)
            while True:
                try:
                    block = response.read(CHUNK)
                except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
                    cut = type(error).__name__
                    raise DownloadError(
                        f"the download of {kind} broke off after {done} bytes ({cut}); nothing was saved, retry"
                    ) from None
                if not block:
                    break
                try:
                    handle.write(block)
                except OSError as error:
                    raise _disk_error(error, folder) from None
                digest.update(block)
                done += len(block)
                if on_progress is not None:
                    on_progress(done, total)
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as error:
                raise _disk_error(error, folder) from None
        if total is not None and done != total:
            raise DownloadError(
                f"the download of {kind} was cut off: {done} of {total} bytes arrived; nothing was saved, retry"
            )
        if not digest.hexdigest().startswith(prefix):
            raise DownloadError(
                f"the file downloaded for {kind} from {url} has SHA-256 {digest.hexdigest()[:12]}..., not the "
                f"published {prefix}...: a wrong or damaged file; it was not saved"
            )
        try:
            os.replace(partial, final)
        except OSError as error:
            raise _disk_error(error, folder) from None
        return final
    finally:
        if partial.exists():
            partial.unlink(missing_ok=True)
