"""Every command refuses bad input in one line: ``segscale COMMAND: error: ...`` and exit code 2, never a traceback.

One table of bad invocations across all commands, run in-process through ``segscale.cli.main``
(fast), plus two real subprocesses that check that no traceback reaches stderr. ``bench`` is
represented by argparse-level cases and its --device (its code is being moved into
segscale/benchmark/ by another change, so its own checks are left to that change).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segscale import cli
from segscale.checkpoint import CheckpointError, save_checkpoint
from segscale.cli import main
from segscale.modeling import build_model

from .conftest import tiny_config, tiny_metadata

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Every file the table names, made once: good ones to get past the first check, bad ones to fail the next."""
    folder = tmp_path_factory.mktemp("bad-input")
    torch.manual_seed(0)
    paths: dict[str, Path] = {"tmp": folder}

    config = tiny_config()
    paths["ckpt"] = save_checkpoint(folder / "tiny.pt", build_model(config), tiny_metadata(config))
    # A model that claims to take scales up to 100, so that only the pixel budget stops --scales 100.
    paths["wide"] = save_checkpoint(
        folder / "wide.pt", build_model(config), tiny_metadata(config, scale_range=(0.25, 100.0))
    )
    paper = tiny_config(head="paper")
    paths["paper"] = save_checkpoint(folder / "paper.pt", build_model(paper), tiny_metadata(paper))

    whole = paths["ckpt"].read_bytes()
    for name, content in {
        "truncated.pt": whole[: len(whole) // 2],
        "noise.pt": bytes(range(256)) * 16,
        "notes.pt": b"these are my notes, not weights\n",
        "empty.pt": b"",
        "words.png": b"this file only pretends to be an image\n",
        "broken.jpg": b"\xff\xd8\xff\xe0 cut",
    }.items():
        (folder / name).write_bytes(content)
        paths[name.replace(".", "_")] = folder / name
    torch.save({"format": "segscale-checkpoint", "format_version": 1, "hook": Path("x")}, folder / "foreign.pt")
    paths["foreign_pt"] = folder / "foreign.pt"
    (folder / "a_folder.pt").mkdir()
    paths["folder_pt"] = folder / "a_folder.pt"
    (folder / "plain_file").write_text("not a folder")
    paths["plain_file"] = folder / "plain_file"

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)).save(folder / "photo.png")
    paths["photo"] = folder / "photo.png"
    Image.fromarray(np.zeros((20, 30), np.uint8), mode="L").save(folder / "small_labels.png")
    paths["small_labels"] = folder / "small_labels.png"
    Image.fromarray(np.full((40, 60), 7, np.uint8), mode="L").save(folder / "class7_labels.png")
    paths["class7_labels"] = folder / "class7_labels.png"
    return {key: str(value) for key, value in paths.items()}


# (command line with {placeholders} from `files`, exit code, words the message must hold)
BAD_INVOCATIONS = [
    # predict
    ("predict {photo} --out {tmp}/o --checkpoint {ckpt} --scales 100", 2, ["outside this model's range 0.25 to 2"]),
    (
        "predict {photo} --out {tmp}/o --checkpoint {wide} --scales 100",
        2,
        ["over the budget of 16.8 Mpx", "largest scale that fits is 83.6"],
    ),
    (
        "predict {photo} --out {tmp}/o --checkpoint {paper} --scales 1 0.5",
        2,
        ["'paper' kind", "fuses only that set", "got [1.0, 0.5]"],
    ),
    (
        "predict {photo} --out {tmp}/o --checkpoint {ckpt} --merge hierarchical",
        2,
        ["no gate head for hierarchical attention", "use one of: attention, average, max"],
    ),
    (
        "evaluate --checkpoint {ckpt} --count 1 --merge hierarchical",
        2,
        ["no gate head", "cannot merge with 'hierarchical'"],
    ),
    (
        "predict {photo} --out {tmp}/o --checkpoint {ckpt} --device banana",
        2,
        ["unknown device 'banana'", "this machine has: cpu"],
    ),
    ("predict {photo} --out {tmp}/o --checkpoint {ckpt} --device cuda:99", 2, ["device 'cuda:99'", "has: cpu"]),
    ("predict {photo} --out {tmp}/o --checkpoint {truncated_pt}", 2, ["truncated.pt", "cut off before its end"]),
    (
        "predict {photo} --out {tmp}/o --checkpoint {noise_pt}",
        2,
        ["noise.pt", "not a readable PyTorch file: its bytes match no format"],
    ),
    (
        "predict {photo} --out {tmp}/o --checkpoint {notes_pt}",
        2,
        ["notes.pt", "not a readable PyTorch file: it holds text"],
    ),
    ("predict {photo} --out {tmp}/o --checkpoint {empty_pt}", 2, ["empty.pt", "empty (0 bytes)"]),
    ("predict {photo} --out {tmp}/o --checkpoint {folder_pt}", 2, ["a_folder.pt", "is a folder"]),
    ("predict {photo} --out {tmp}/o --checkpoint {foreign_pt}", 2, ["foreign.pt", "refused", "pathlib"]),
    ("predict {photo} --out {tmp}/o --checkpoint {tmp}/absent.pt", 2, ["absent.pt: no such file"]),
    ("predict {words_png} --out {tmp}/o --checkpoint {ckpt}", 2, ["words.png", "holds text, not an image"]),
    ("predict {tmp}/absent.png --out {tmp}/o --checkpoint {ckpt}", 2, ["absent.png: no such file"]),
    ("predict {photo} --out {plain_file} --checkpoint {ckpt}", 2, ["exists and is not a folder"]),
    ("predict {photo} --out {tmp}/o --checkpoint {ckpt} --max-side 5", 2, ["--max-side must be at least 16"]),
    (
        "predict {photo} --out {tmp}/o --checkpoint {ckpt} --scales x",
        2,
        ["argument --scales: invalid float value: 'x'"],
    ),
    ("predict {photo} --checkpoint {ckpt}", 2, ["the following arguments are required: --out"]),
    # inspect
    ("inspect {photo} --checkpoint {ckpt}", 2, ["the following arguments are required: --pixel"]),
    ("inspect --sample val:x --pixel 1 1 --checkpoint {ckpt}", 2, ["--sample must be SPLIT:INDEX"]),
    ("inspect {photo} --sample val:1 --pixel 1 1 --checkpoint {ckpt}", 2, ["one of the two"]),
    ("inspect {photo} --pixel 1 1 --top-k 0 --checkpoint {ckpt}", 2, ["--top-k must be at least 1"]),
    ("inspect {photo} --pixel 100 1 --checkpoint {ckpt}", 2, ["outside the 60x40 image"]),
    ("inspect {photo} --pixel 1 1 --scales 3 --checkpoint {ckpt}", 2, ["scale 3 is outside this model's range"]),
    ("inspect {photo} --pixel 1 1 --class dragon --checkpoint {ckpt}", 2, ["unknown class 'dragon'"]),
    # compare
    ("compare {photo} --labels {tmp}/absent.png --checkpoint {ckpt}", 2, ["--labels", "absent.png: no such file"]),
    ("compare --sample val:1 --labels {small_labels} --checkpoint {ckpt}", 2, ["--labels is for an IMAGE file"]),
    ("compare {photo} --labels {small_labels} --checkpoint {ckpt}", 2, ["is 30x20, the image 60x40"]),
    ("compare {photo} --labels {class7_labels} --checkpoint {ckpt}", 2, ["holds the value 7", "0 to 2"]),
    ("compare {photo} --labels {words_png} --checkpoint {ckpt}", 2, ["label image", "holds text, not an image"]),
    ("compare {photo} --out {plain_file} --checkpoint {ckpt}", 2, ["exists and is not a folder"]),
    ("compare {broken_jpg} --checkpoint {ckpt}", 2, ["broken.jpg"]),
    ("compare {photo} --checkpoint {ckpt} --device banana", 2, ["unknown device 'banana'"]),
    # diagnose
    ("diagnose --count 0 --checkpoint {ckpt}", 2, ["--count must be at least 1"]),
    ("diagnose --start -1 --checkpoint {ckpt}", 2, ["--start must be 0 or more"]),
    ("diagnose --split banana --checkpoint {ckpt}", 2, ["unknown ScaleShapes split 'banana'"]),
    ("diagnose --dataset folder --images {tmp} --checkpoint {ckpt}", 2, ["needs --images DIR and --masks DIR"]),
    ("diagnose --dataset cityscapes --data-root {tmp} --checkpoint {ckpt}", 2, ["leftImg8bit/ and gtFine/"]),
    ("diagnose --count 1 --scales 100 --checkpoint {ckpt} --quiet", 2, ["outside this model's range 0.25 to 2"]),
    (
        "diagnose --count 1 --scales 100 --checkpoint {wide} --quiet",
        2,
        ["ScaleShapes images reach 640x640", "over the budget"],
    ),
    ("diagnose --images {words_png} {tmp}/absent.png --checkpoint {ckpt}", 2, ["none of the 2 files could be read"]),
    ("diagnose --images {photo} --scales 100 --checkpoint {wide}", 2, ["photo.png", "over the budget"]),
    (
        "diagnose --count 1 --checkpoint {noise_pt}",
        2,
        ["noise.pt", "not a readable PyTorch file: its bytes match no format"],
    ),
    # evaluate
    ("evaluate --count 0 --checkpoint {ckpt}", 2, ["--count must be at least 1"]),
    ("evaluate --dataset voc --checkpoint {ckpt}", 2, ["--dataset voc needs --data-root"]),
    ("evaluate --dataset voc --data-root {tmp}/nothing --checkpoint {ckpt} --quiet", 2, ["nothing does not exist"]),
    ("evaluate --split banana --checkpoint {ckpt}", 2, ["unknown ScaleShapes split 'banana'"]),
    (
        "evaluate --count 1 --scales 100 --checkpoint {wide} --quiet",
        2,
        ["ScaleShapes images reach 640x640", "largest scale that fits"],
    ),
    ("evaluate --count 1 --scales 0.1 --checkpoint {ckpt} --quiet", 2, ["scale 0.1 is outside this model's range"]),
    ("evaluate --checkpoint {ckpt} --device banana", 2, ["unknown device 'banana'"]),
    ("evaluate --checkpoint {truncated_pt}", 2, ["cut off before its end"]),
    ("evaluate --json {tmp} --checkpoint {ckpt}", 2, ["is a folder; give a file name"]),
    ("evaluate --dataset imagenet", 2, ["argument --dataset: invalid choice: 'imagenet'"]),
    # describe, checkpoints
    ("describe --checkpoint {noise_pt}", 2, ["noise.pt", "not a readable PyTorch file: its bytes match no format"]),
    ("describe --checkpoint {tmp}/absent.pt", 2, ["absent.pt: no such file"]),
    ("checkpoints {tmp}/absent", 2, ["absent: no such file or folder"]),
    (
        "checkpoints {noise_pt}",
        1,
        ["cannot be used", "not a readable PyTorch file: its bytes match no format"],
    ),  # a listing: the bad file is named, exit 1
    # shapes
    ("shapes --count 3", 2, ["nothing to do"]),
    ("shapes --split banana --preview {tmp}/sheet.png", 2, ["unknown split 'banana'"]),
    ("shapes --preview {tmp}/sheet.jpg", 2, ["--preview must name a .png file"]),
    ("shapes --count 0 --preview {tmp}/sheet.png", 2, ["--count must be at least 1"]),
    ("shapes --min-side 5 --preview {tmp}/sheet.png", 2, ["min_side"]),
    ("shapes --out {plain_file}", 2, ["exists and is not a folder"]),
    # train
    ("train --config {tmp}/absent.toml", 2, ["absent.toml: no such file"]),
    ("train --config {notes_pt}", 2, ["use a .toml or .json file"]),
    ("train --lr fast", 2, ["argument --lr: invalid float value: 'fast'"]),
    ("train --dataset banana", 2, ["unknown dataset 'banana'"]),
    ("train --iterations 0", 2, ["iterations must be at least 1"]),
    ("train-head {tmp}/absent.pt --data-root {tmp}", 2, ["absent.pt: no such checkpoint file"]),
    ("train-head {ckpt} --data-root {tmp}/nowhere", 2, ["expected the layout DIR/VOCdevkit/VOC2012/", "--download"]),
    ("train --dataset voc", 2, ["needs --data-root"]),
    ("train --head paper --scale-sampling random", 2, ["tied to one scale set"]),
    # bench (argparse level and its --device; see the module docstring)
    ("bench --precision banana", 2, ["argument --precision: invalid choice: 'banana'"]),
    ("bench --repeats many", 2, ["argument --repeats: invalid int value: 'many'"]),
    ("bench --device banana", 2, ["unknown device 'banana'", "this machine has: cpu"]),
    # fetch-weights, import-torchvision (nothing here depends on what the torch hub cache holds)
    ("fetch-weights banana", 2, ["argument KIND: invalid choice: 'banana'"]),
    ("import-torchvision banana --out {tmp}/tv.pt", 2, ["argument KIND: invalid choice: 'banana'"]),
    ("import-torchvision lraspp_mobilenet_v3_large", 2, ["the following arguments are required: --out"]),
    (
        "import-torchvision lraspp_mobilenet_v3_large --weights {tmp}/absent.pth --out {tmp}/tv.pt",
        2,
        ["absent.pth: no such file"],
    ),
    (
        "import-torchvision lraspp_mobilenet_v3_large --weights {notes_pt} --out {tmp}/tv.pt",
        2,
        ["notes.pt: not a readable PyTorch file", "text"],
    ),
    # import-transformers, import-smp, import-network (offline: nothing here reaches the Hugging Face Hub)
    ("import-transformers {tmp} --offline --out {tmp}/hf.pt", 2, ["not a transformers model folder (no config.json)"]),
    ("import-transformers {tmp}/absent --offline --out {tmp}/hf.pt", 2, ["absent: no such folder"]),
    ("import-transformers {tmp} --offline --out {tmp}/hf.txt", 2, ["name the checkpoint with a .pt suffix"]),
    ("import-smp --arch Unet --out {tmp}/smp.pt", 2, ["missing: --encoder, --weights, --num-classes"]),
    ("import-smp {tmp} --out {tmp}/smp.pt", 2, ["not an smp model folder"]),
    (
        "import-smp --arch Unet --encoder resnet18 --num-classes 0 --weights {notes_pt} --out {tmp}/smp.pt",
        2,
        ["at least 1"],
    ),
    (
        "import-network --factory nowhere --classes {notes_pt} --out {tmp}/f.pt",
        2,
        ["write it as package.module:function"],
    ),
    ("import-network --factory no_such_module_here:build --classes {notes_pt} --out {tmp}/f.pt", 2, ["cannot import"]),
    ("import-network --factory os:getcwd --classes {tmp}/absent.txt --out {tmp}/f.pt", 2, ["absent.txt: no such file"]),
    # no command, an unknown one
    ("frobnicate", 2, ["invalid choice: 'frobnicate'"]),
]
if not torch.cuda.is_available():
    BAD_INVOCATIONS.append(
        (
            "predict {photo} --out {tmp}/o --checkpoint {ckpt} --device cuda",
            2,
            ["this machine has no CUDA GPU", "it has: cpu"],
        )
    )


def test_the_table_covers_every_command():
    assert len(BAD_INVOCATIONS) >= 25
    covered = {line.split()[0] for line, _, _ in BAD_INVOCATIONS}
    assert set(cli.COMMANDS) <= covered, f"no bad invocation of {set(cli.COMMANDS) - covered}"


@pytest.mark.parametrize(
    "line, code, words", BAD_INVOCATIONS, ids=[line.split(" --checkpoint")[0][:60] for line, _, _ in BAD_INVOCATIONS]
)
def test_a_bad_invocation_is_one_clear_line(files, capsys, monkeypatch, line, code, words):
    monkeypatch.delenv("SEGSCALE_DEBUG", raising=False)
    argv = [part.format(**files) for part in line.split()]
    with pytest.raises(SystemExit) as exit_info:
        returned = main(argv)
        raise SystemExit(returned)  # a command that returns its code instead of exiting
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert exit_info.value.code == code, text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert "Traceback" not in text
    if code == 2:
        command = argv[0]
        errors = [row for row in captured.err.splitlines() if ": error: " in row]
        assert len(errors) == 1, captured.err
        if command in cli.COMMANDS:
            assert errors[0].startswith(f"segscale {command}: error: "), errors[0]


def test_segscale_debug_shows_the_real_error(files, monkeypatch):
    monkeypatch.setenv("SEGSCALE_DEBUG", "1")
    with pytest.raises(CheckpointError, match=r"cut off before its end.*\[torch: ") as error:
        main(["describe", "--checkpoint", files["truncated_pt"]])
    assert error.value.__cause__ is not None


@pytest.mark.parametrize(
    "argv, words",
    [
        (["predict", "{photo}", "--out", "{tmp}/o", "--checkpoint", "{truncated_pt}"], "cut off before its end"),
        (["evaluate", "--device", "banana"], "unknown device 'banana'"),
    ],
)
def test_no_traceback_reaches_stderr_of_a_real_process(files, argv, words):
    env = {key: value for key, value in __import__("os").environ.items() if key != "SEGSCALE_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-m", "segscale", *(a.format(**files) for a in argv)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "warn" not in done.stderr.lower()
    assert (
        done.stderr.count("\n") == 1
        and done.stderr.startswith(f"python -m segscale {argv[0]}: error: ")
        and words in done.stderr
    )


# ----------------------------------------------------------------------------- --help


def _options(command: str) -> list[argparse.Action]:
    parser, commands = cli.build_parser()
    __import__(cli.COMMANDS[command][0], fromlist=["add_arguments"]).add_arguments(commands[command])
    return [action for action in commands[command]._actions if not isinstance(action, argparse._HelpAction)]


HELP_CHECKED = list(cli.COMMANDS)


@pytest.mark.parametrize("command", HELP_CHECKED)
def test_every_flag_says_what_it_does_and_its_default(command):
    for action in _options(command):
        flag = action.option_strings[-1] if action.option_strings else action.dest
        text = action.help or ""
        assert len(text) > 12, f"{command} {flag}: no help"
        bare_name = action.dest.replace("_", " ")
        assert not text.lower().startswith(bare_name + " ("), (
            f"{command} {flag}: help only repeats the flag name: {text!r}"
        )
        is_switch = isinstance(action, argparse._StoreTrueAction)
        if action.option_strings and not action.required and not is_switch:
            assert "default" in text, f"{command} {flag}: help does not show the default: {text!r}"


def test_train_has_a_sentence_for_every_setting():
    from dataclasses import fields

    from segscale.commands.train import HELP
    from segscale.training.config import TrainConfig

    missing = [f.name for f in fields(TrainConfig) if f.name not in HELP]
    assert not missing, f"TrainConfig fields without help: {missing}"


def test_help_names_python_m_segscale(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "python -m segscale COMMAND --help" in " ".join(text.split())
