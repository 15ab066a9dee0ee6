"""Which images a folder job reads, and where each one's outputs go.

An input is one of:

* a folder, searched recursively for image files (by extension, see :data:`IMAGE_SUFFIXES`);
* a glob pattern (``'data/**/*.jpg'``, quoted so the shell leaves it alone; ``**`` recurses);
* a list file (``.txt`` or ``.lst``): one image path per line, relative to the list's folder;
  blank lines and lines starting with ``#`` are skipped.

Outputs mirror the input tree under ``--out``: ``photos/a/b.jpg`` read from the folder
``photos`` writes ``OUT/a/b_attention_1-0.75-0.5_labels.png`` (named as for one image: image,
merge, scale set, output). The tree's root is the folder itself, the part of a
glob before its first wildcard, or the deepest folder holding every listed file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..outputs import output_paths, safe_file_stem

# Extensions a folder or glob search picks up: the formats segscale.images.load_image reads.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
)
LIST_SUFFIXES = frozenset({".txt", ".lst"})
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True, order=True)
class BatchItem:
    """One image of a folder job: ``relative`` (its path under the tree's root, POSIX form) orders items."""

    relative: str
    source: Path

    def output_paths(self, out: Path, kinds, merge: str, scales) -> dict[str, Path]:
        """kind ("labels", "attention", ...) -> the file it is written to under ``out``.

        Named as ``segscale predict`` names one image's files (:func:`~segscale.outputs.output_stem`:
        image, merge, scale set), so a file says how it was made wherever it was written.
        """
        relative = Path(self.relative)
        return output_paths(out / relative.parent, relative.name, merge, scales, kinds)


def is_pattern(text: str) -> bool:
    return any(ch in _GLOB_CHARACTERS for ch in text)


def is_batch_input(path: Path | str) -> bool:
    """Whether ``path`` names a folder job (a folder, a glob or a list file) rather than one image."""
    text = str(path)
    return is_pattern(text) or Path(text).is_dir() or Path(text).suffix.lower() in LIST_SUFFIXES


def enumerate_inputs(spec: Path | str) -> list[BatchItem]:
    """The images named by a folder, glob or list file, sorted by their path under the root.

    Raises ValueError when nothing matches, a listed file is missing, or two images would
    write the same outputs (``a.png`` and ``a.jpg`` in one folder).
    """
    text = str(spec)
    if is_pattern(text):
        matches = [Path(p) for p in glob.glob(text, recursive=True)]
        files = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        root = _pattern_root(text)
        what = f"the pattern {text!r}"
    elif Path(text).is_dir():
        root = Path(text)
        files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        what = f"the folder {text}"
    elif Path(text).suffix.lower() in LIST_SUFFIXES:
        files, root = _read_list(Path(text))
        what = f"the list {text}"
    else:
        raise ValueError(f"{text} is not a folder, a glob pattern or a list file (.txt, .lst)")
    if not files:
        raise ValueError(f"{what} names no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    items = sorted({BatchItem(Path(os.path.relpath(p, root)).as_posix(), p) for p in files})
    _refuse_collisions(items)
    return items


def _pattern_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: ``data/val/**/*.png`` -> ``data/val``."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if is_pattern(part):
            break
        fixed.append(part)
    if len(fixed) == len(parts):  # no wildcard in any folder part: the file's own folder
        fixed = fixed[:-1]
    return Path(*fixed) if fixed else Path(".")


def _read_list(list_file: Path) -> tuple[list[Path], Path]:
    if not list_file.is_file():
        raise ValueError(f"{list_file}: no such list file")
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the list {list_file}: {error}") from None
    base = list_file.parent
    files = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else base / entry
        if not path.is_file():
            raise ValueError(f"{list_file} line {number}: {entry}: no such file")
        files.append(path)
    if not files:
        return [], base
    folders = [os.path.abspath(p.parent) for p in files]
    common = Path(os.path.commonpath(folders))
    root = base if common == Path(os.path.abspath(base)) or Path(os.path.abspath(base)) in common.parents else common
    return files, root


def _refuse_collisions(items: list[BatchItem]) -> None:
    seen: dict[Path, str] = {}
    for item in items:
        relative = Path(item.relative)
        key = relative.parent / safe_file_stem(relative.name)  # what every output name of the image starts with
        if key in seen:
            raise ValueError(
                f"{seen[key]} and {item.relative} would write the same "
                f"files ({key}); rename one or list them separately"
            )
        seen[key] = item.relative
