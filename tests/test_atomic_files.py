"""Files written whole or not at all (segscale.atomic_files): the one writer of folder jobs, checkpoints and caches."""

from __future__ import annotations

import pytest

from segscale.atomic_files import PARTIAL_SUFFIX, atomic_file, write_atomically


def test_a_file_appears_whole_under_its_name_and_no_temporary_stays(tmp_path):
    path = tmp_path / "deep" / "folder" / "out.bin"
    write_atomically(path, b"first")
    write_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("unique_name", [False, True])
def test_a_failed_write_leaves_the_old_file_whole_and_removes_its_temporary(tmp_path, unique_name):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(path, unique_name=unique_name) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed midway")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_rerun_reuses_what_a_killed_writer_left(tmp_path):
    """A kill leaves <name>.partial; the next writer of that file truncates it and renames it into place."""
    path = tmp_path / "a_labels.png"
    (tmp_path / ("a_labels.png" + PARTIAL_SUFFIX)).write_bytes(b"a killed run's half file, longer than the new")
    write_atomically(path, b"whole")
    assert path.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == ["a_labels.png"]


def test_unique_temporaries_of_writers_at_once_do_not_meet(tmp_path):
    """Two processes making one cache entry at once each write their own temporary file."""
    path = tmp_path / "0000001.npz"
    with atomic_file(path, unique_name=True) as first, atomic_file(path, unique_name=True) as second:
        assert len(list(tmp_path.iterdir())) == 2, "the two writers share a temporary file"
        first.write(b"one")
        second.write(b"two")
    assert path.read_bytes() in (b"one", b"two") and [p.name for p in tmp_path.iterdir()] == ["0000001.npz"]


def test_an_unwritable_place_is_a_value_error_naming_the_file(tmp_path):
    (tmp_path / "taken").write_bytes(b"a file where a folder should be")
    with pytest.raises(ValueError, match="cannot write .*taken"):
        write_atomically(tmp_path / "taken" / "out.png", b"data")
