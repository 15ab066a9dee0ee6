"""Decoding images in worker processes and grouping them into same-size batches.

A :class:`torch.utils.data.DataLoader` over :class:`ImageFiles` decodes with
:func:`segscale.images.load_image` (the app's reader: EXIF orientation, transparency, size
cap, refusals) in ``workers`` processes, so decoding overlaps the model. A file that cannot
be read comes back as a :class:`DecodedImage` with ``error`` set instead of pixels; nothing
raises, so one broken file never stops a job.

:func:`same_size_batches` then groups decoded images by size: images of one size form a batch
of up to ``batch_size`` (one tensor, one model call); images of different sizes never share a
batch, and nothing is resized to make them fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..images import ImageError, load_image
from .inputs import BatchItem


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """One image as read by a worker: ``rgb`` (H, W, 3) uint8, or None and ``error`` saying why not."""

    item: BatchItem
    rgb: np.ndarray | None
    original_size: tuple[int, int] | None
    notices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        assert self.rgb is not None, "an unreadable image has no size"
        return tuple(self.rgb.shape[:2])  # type: ignore[return-value]


class ImageFiles(Dataset):
    """Image files decoded for prediction; never raises for a bad file (see :class:`DecodedImage`)."""

    def __init__(self, items: list[BatchItem], max_side: int | None) -> None:
        self.items = list(items)
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> DecodedImage:
        item = self.items[index]
        try:
            loaded = load_image(item.source.read_bytes(), item.source.name, max_side=self.max_side)
        except ImageError as error:
            return DecodedImage(item, None, None, error=str(error))
        except OSError as error:  # vanished, unreadable permissions, a folder named like an image
            return DecodedImage(item, None, None, error=f"cannot read the file: {error.strerror or error}")
        return DecodedImage(item, loaded.rgb, tuple(loaded.original_size), tuple(loaded.notices))


def keep_as_is(decoded: DecodedImage) -> DecodedImage:
    """The loader's collate function: images stay separate (their sizes may differ, some have no pixels)."""
    return decoded


def decoding_loader(items: list[BatchItem], max_side: int | None, workers: int) -> DataLoader:
    """Images decoded in ``workers`` processes (0: in this process), in ``items`` order, a few ahead."""
    return DataLoader(
        ImageFiles(items, max_side),
        batch_size=None,  # one image at a time; same_size_batches groups them
        shuffle=False,
        num_workers=workers,
        collate_fn=keep_as_is,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
    )


def same_size_batches(
    images: Iterable[DecodedImage], batch_size: int, max_waiting: int | None = None
) -> Iterator[list[DecodedImage]]:
    """Group decoded images into lists of one size, each of at most ``batch_size`` images.

    Unreadable images come out at once, alone (a list of one with ``rgb`` None). A group is
    released when it is full; when more than ``max_waiting`` images (default 4 x batch_size)
    wait in unfinished groups, the fullest group goes early, so memory stays bounded on a
    folder where every image has its own size. The rest are released at the end.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    max_waiting = 4 * batch_size if max_waiting is None else max_waiting
    groups: dict[tuple[int, int], list[DecodedImage]] = {}
    for decoded in images:
        if decoded.rgb is None:
            yield [decoded]
            continue
        group = groups.setdefault(decoded.size, [])
        group.append(decoded)
        if len(group) >= batch_size:
            yield groups.pop(decoded.size)
        elif sum(len(g) for g in groups.values()) > max_waiting:
            fullest = max(groups, key=lambda size: len(groups[size]))
            yield groups.pop(fullest)
    yield from groups.values()
