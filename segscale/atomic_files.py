"""Files written whole or not at all: a temporary file beside the final one, then ``os.replace``.

A reader (a folder job deciding what to resume, the app listing checkpoints, a training run reading its sample
cache) never finds a half-written file under the final name, even after a kill: ``os.replace`` within one folder
swaps the name in one step, and the old file, if any, stays whole until then. Every such writer goes through
:func:`atomic_file` (:func:`write_atomically` for bytes already in memory).

Not here: :mod:`segscale.weights_download`, which streams a download into its temporary file, checks its length
and hash on the way and maps each disk error to a message of its own before the same ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PARTIAL_SUFFIX = ".partial"


@contextmanager
def atomic_file(path: str | os.PathLike, *, unique_name: bool = False, sync: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; a clean exit renames it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The folder is created.

    unique_name: False names the temporary ``<name>.partial``: a writer killed midway leaves it behind, and the
        next writer of the same file truncates and renames it, so a rerun leaves nothing behind (folder jobs
        resume this way). True gives a hidden name no other writer has, for a file several processes may write
        at once (the ranks of one training run filling a sample cache): none truncates another's temporary.
    sync: flush the data to the disk before the rename, so a power cut cannot leave an empty file under the
        final name. Skipped for a cache whose damaged entries are made again when read (7 ms a file saved).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if unique_name:
        handle_number, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
        temporary = Path(name)
        handle = os.fdopen(handle_number, "wb")
    else:
        temporary = path.with_name(path.name + PARTIAL_SUFFIX)
        handle = open(temporary, "wb")
    try:
        with handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`; ValueError (saying which file) when it cannot."""
    try:
        with atomic_file(path) as handle:
            handle.write(data)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
