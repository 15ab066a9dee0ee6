"""Checkpoint files: round trip, refusal of code-running pickles, clear errors for bad files."""

from __future__ import annotations

import os
import pickle
import warnings

import pytest
import torch

from segscale import Predictor
from segscale.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from segscale.modeling import build_model

from .conftest import tiny_config, tiny_metadata


def test_round_trip_keeps_weights_and_metadata(make_checkpoint):
    path = make_checkpoint(head="paper", seed=3)
    torch.manual_seed(3)
    original = build_model(tiny_config(head="paper"))
    state, metadata = load_checkpoint(path)
    assert metadata == tiny_metadata(tiny_config(head="paper"))
    assert state.keys() == original.state_dict().keys()
    for key, value in original.state_dict().items():
        torch.testing.assert_close(state[key], value)
    model, _ = model_from_checkpoint(path)
    images = torch.randn(1, 3, 40, 52)
    torch.testing.assert_close(model(images).fused, original.eval()(images).fused)


def test_metadata_is_plain_data_readable_with_weights_only(make_checkpoint):
    payload = torch.load(make_checkpoint(), weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["metadata"]["classes"] == ["background", "disc", "bar"]
    assert payload["metadata"]["model"]["trunk"]["width"] == 1 / 16


class _RunsCodeOnLoad:
    """Unpickling this calls exec(): a stand-in for a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_a_pickle_naming_a_blocked_module_is_refused_by_name(tmp_path):
    """torch words this refusal differently ("... whose module posix is blocked"); the message still says why."""
    path = tmp_path / "shell.pt"
    torch.save(
        {"format": CHECKPOINT_FORMAT, "format_version": 1, "hook": os.system}, path
    )  # names the function, calls nothing
    with pytest.raises(CheckpointError) as error:
        Predictor.from_checkpoint(path)
    assert "refused" in str(error.value) and "system" in str(error.value) and "could run code" in str(error.value)


@pytest.mark.parametrize("writer", ["torch.save", "pickle-protocol-2", "pickle-protocol-5"])
def test_a_code_running_pickle_is_refused_without_running(tmp_path, writer):
    marker, path = tmp_path / "marker.txt", tmp_path / "evil.pt"
    payload = {"format": CHECKPOINT_FORMAT, "format_version": 1, "metadata": _RunsCodeOnLoad(marker), "state_dict": {}}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(writer[-1])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's own warning about pickle protocols stays out of the user's way
        with pytest.raises(CheckpointError) as error:
            Predictor.from_checkpoint(path)
    assert str(path) in str(error.value)
    if writer != "pickle-protocol-5":  # protocol 5 stops earlier, at an opcode the safe loader lacks
        assert "refused" in str(error.value) and "exec" in str(error.value)
    else:
        assert "plain Python pickle (protocol 5)" in str(error.value) and "opcode" not in str(error.value)
    assert not marker.exists(), "the pickle's code ran"
    # The test's own check: an unrestricted load does run it.
    with open(path, "rb") as handle:
        torch.load(handle, weights_only=False) if writer == "torch.save" else pickle.load(handle)
    assert marker.read_text() == "ran"


def test_truncated_file_names_the_file(make_checkpoint, tmp_path):
    path = make_checkpoint()
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut off before its end") as error:
        load_checkpoint(truncated)
    assert str(truncated) in str(error.value)
    assert "miniz" not in str(error.value) and "central directory" not in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (
            b"this is a text file, not a checkpoint\n",
            "not a readable PyTorch file: it holds text .starting 'this is a text file",
        ),
        (bytes(range(256)) * 8, "not a readable PyTorch file: its bytes match no format"),
        (bytes(range(255, -1, -1)) * 8, "not a readable PyTorch file: its bytes match no format"),
        (b"\x80\x02garbage that no unpickler reads\xff\xfe", "plain Python pickle"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n", "Git LFS pointer"),
    ],
    ids=["empty", "text", "binary-noise", "reversed-noise", "broken-pickle", "lfs-pointer"],
)
def test_corrupt_files_get_clear_errors(tmp_path, monkeypatch, content, message):
    monkeypatch.delenv("SEGSCALE_DEBUG", raising=False)
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    for torch_words in ("Unsupported operand", "KeyError", "UnicodeDecodeError", "miniz", "torch:"):
        assert torch_words not in str(error.value)


def test_torch_text_only_with_segscale_debug(tmp_path, monkeypatch):
    path = tmp_path / "noise.pt"
    path.write_bytes(b"\x80\x02\xff\xfe noise")
    monkeypatch.setenv("SEGSCALE_DEBUG", "1")
    with pytest.raises(CheckpointError, match=r"plain Python pickle.*\[torch: UnpicklingError") as error:
        load_checkpoint(path)
    assert error.value.__cause__ is not None  # the traceback keeps torch's own error


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_foreign_pytorch_files_are_named_as_such(tmp_path):
    bare = tmp_path / "bare_state_dict.pt"
    torch.save(build_model(tiny_config()).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a segscale checkpoint.*bare state dict"):
        load_checkpoint(bare)
    other = tmp_path / "list.pt"
    torch.save([1, 2, 3], other)
    with pytest.raises(CheckpointError, match="not a segscale checkpoint"):
        load_checkpoint(other)


def test_newer_format_and_broken_metadata(make_checkpoint, tmp_path):
    payload = torch.load(make_checkpoint(), weights_only=True)
    newer = tmp_path / "newer.pt"
    torch.save({**payload, "format_version": 99}, newer)
    with pytest.raises(CheckpointError, match="version 99.*upgrade segscale"):
        load_checkpoint(newer)
    broken = tmp_path / "broken.pt"
    torch.save({**payload, "metadata": {**payload["metadata"], "classes": ["only one"]}}, broken)
    with pytest.raises(CheckpointError, match="metadata is invalid .1 class names for a model with 3"):
        load_checkpoint(broken)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({**payload, "metadata": {k: v for k, v in payload["metadata"].items() if k != "classes"}}, incomplete)
    with pytest.raises(CheckpointError, match="metadata lacks the field 'classes'"):
        load_checkpoint(incomplete)


def test_weights_that_do_not_fit_the_described_architecture(tmp_path):
    wide = build_model(tiny_config())
    metadata = CheckpointMetadata(model=tiny_config(head="paper"), classes=("a", "b", "c"), palette=((0, 0, 0),) * 3)
    path = save_checkpoint(tmp_path / "mismatch.pt", wide, metadata)
    with pytest.raises(
        CheckpointError,
        match=(
            "do not fit the architecture its metadata describes .*of another shape, e.g. attention_head.* in the file"
        ),
    ):
        model_from_checkpoint(path)


def test_save_is_atomic_and_leaves_no_temporary_files(make_checkpoint, tmp_path):
    path = make_checkpoint()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
