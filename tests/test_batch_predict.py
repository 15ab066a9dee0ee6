"""``python -m segscale predict FOLDER``: enumeration, mirrored outputs, broken files, resume after a kill, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segscale.batch.inputs import enumerate_inputs, is_batch_input
from segscale.batch.loading import DecodedImage, same_size_batches
from segscale.cli import main
from segscale.inference import FastPathOptions
from segscale.outputs import output_stem
from segscale.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]


def _write_images(folder: Path, count: int, sizes=((48, 64), (40, 56))) -> list[Path]:
    """``count`` random images alternating between ``sizes`` (H, W), half of them in a subfolder."""
    rng = np.random.default_rng(1)
    paths = []
    for index in range(count):
        height, width = sizes[index % len(sizes)]
        path = folder / ("sub" if index % 2 else "") / f"img_{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _labels_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*_labels.png"))}


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


# ----------------------------------------------------------------------------- which images


def test_a_folder_is_searched_recursively_and_mirrored(tmp_path):
    _write_images(tmp_path / "in", 4)
    (tmp_path / "in" / "notes.md").write_text("not an image, not picked up")
    items = enumerate_inputs(tmp_path / "in")
    assert [item.relative for item in items] == ["img_00.png", "img_02.png", "sub/img_01.png", "sub/img_03.png"]
    # Named as one image's files are (image, merge, scale set): one rule for `predict IMAGE` and a folder.
    paths = items[2].output_paths(tmp_path / "out", ["labels"], "attention", (1.0, 0.75, 0.5))
    assert paths["labels"] == tmp_path / "out" / "sub" / "img_01_attention_1-0.75-0.5_labels.png"


def test_a_glob_and_a_list_file_name_the_same_images(tmp_path):
    _write_images(tmp_path / "in", 4)
    from_glob = enumerate_inputs(str(tmp_path / "in" / "**" / "*.png"))
    listing = tmp_path / "in" / "val.txt"
    listing.write_text("# the validation images\nimg_00.png\n\nsub/img_01.png\nimg_02.png\nsub/img_03.png\n")
    assert [i.relative for i in from_glob] == [i.relative for i in enumerate_inputs(listing)]
    assert (
        is_batch_input(listing)
        and is_batch_input(tmp_path / "in")
        and not is_batch_input(tmp_path / "in" / "img_00.png")
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "empty").mkdir() or d / "empty", "names no image files"),
        (
            lambda d: (d / "l.txt").write_text("missing.png\n") and d / "l.txt",
            "l.txt line 1: missing.png: no such file",
        ),
        (
            lambda d: [Image.new("RGB", (20, 20)).save(d / n) for n in ("a.png", "a.jpg")] and d,
            "would write the same files",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors_before_the_model_loads(tmp_path, capsys, make, message):
    spec = make(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(spec), "--checkpoint", str(tmp_path / "never-read.pt"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and "Traceback" not in error


def test_same_size_batches_never_mix_sizes_and_pass_unreadable_files_alone():
    def image(size, name):
        from segscale.batch.inputs import BatchItem

        return DecodedImage(BatchItem(name, Path(name)), np.zeros((*size, 3), np.uint8), size)

    broken = DecodedImage(image((1, 1), "x").item, None, None, error="broken")
    stream = [
        image((8, 8), "a"),
        image((9, 9), "b"),
        broken,
        image((8, 8), "c"),
        image((8, 8), "d"),
        image((9, 9), "e"),
    ]
    batches = list(same_size_batches(stream, batch_size=2))
    assert sorted(len(b) for b in batches) == [1, 1, 2, 2]
    assert all(len({d.size for d in b if d.rgb is not None}) <= 1 for b in batches)
    assert sorted(d.item.relative for b in batches for d in b) == ["a", "b", "c", "d", "e", "x"]


# ----------------------------------------------------------------------------- one process


def test_folder_outputs_equal_the_one_image_prediction(make_checkpoint, tmp_path):
    checkpoint = make_checkpoint()
    paths = _write_images(tmp_path / "in", 5)
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "in"),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(out),
                "--outputs",
                "labels",
                "maps",
                "--batch-size",
                "3",
                "--workers",
                "0",
                "--precision",
                "float32",
            ]
        )
        == 0
    )
    predictor = Predictor.from_checkpoint(checkpoint, options=FastPathOptions(autocast="off"))
    for path in paths:
        relative = path.relative_to(tmp_path / "in")
        stem = out / relative.parent / output_stem(relative.name, "attention", (1.0, 0.75, 0.5))
        single = predictor.predict(np.asarray(Image.open(path).convert("RGB")))
        maps = np.load(f"{stem}_maps.npz")
        np.testing.assert_allclose(maps["fused"], single.fused, atol=1e-4)  # batched or alone: the same numbers
        agreement = (np.asarray(Image.open(f"{stem}_labels.png")) == single.labels).mean()
        assert agreement >= 0.999
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped_complete"], summary["unreadable_count"]) == (5, 0, 0)
    assert "same-size batches of up to 3" in summary["settings"]["batching"]


def test_a_folder_with_a_broken_file_completes_and_reports_it(make_checkpoint, tmp_path, capsys):
    _write_images(tmp_path / "in", 3)
    (tmp_path / "in" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "in"),
                "--checkpoint",
                str(make_checkpoint()),
                "--out",
                str(out),
                "--workers",
                "2",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == 3 and summary["unreadable_count"] == 2
    assert [entry["input"] for entry in summary["unreadable"]] == ["empty.png", "sub/broken.jpg"]
    assert "empty" in summary["unreadable"][0]["reason"]
    assert len(_labels_files(out)) == 3
    printed = capsys.readouterr().out
    assert "2 unreadable" in printed and "sub/broken.jpg" in printed


def test_a_killed_run_resumes_without_losing_or_rewriting_outputs(make_checkpoint, tmp_path):
    checkpoint = make_checkpoint()
    total = 30
    _write_images(tmp_path / "in", total, sizes=((96, 128),))  # enough work that the kill lands midway
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "segscale",
        "predict",
        str(tmp_path / "in"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--outputs",
        "labels",
        "maps",
        "--batch-size",
        "1",
        "--workers",
        "0",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(out.rglob("*_maps.npz"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*_*.*") if p.suffix != ".partial"}
    assert 3 <= len([p for p in before if p.name.endswith("_maps.npz")]) < total, "the run was not killed midway"

    assert main(command[3:]) == 0
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*_*.*") if p.suffix != ".partial"}
    assert all(after[p] == before[p] for p in before), "an output of the killed run was written again"
    assert len([p for p in after if p.name.endswith("_labels.png")]) == total and len(after) == 2 * total
    assert not list(out.rglob("*.partial")), "a temporary file was left behind"
    summary = json.loads((out / "summary.json").read_text())
    complete_before = {p.name.removesuffix("_maps.npz") for p in before if p.name.endswith("_maps.npz")}
    assert summary["skipped_complete"] == len(complete_before) and summary["done"] == total - len(complete_before)


# ----------------------------------------------------------------------------- torchrun


def test_two_gloo_processes_write_each_output_once_as_one_process_does(make_checkpoint, tmp_path):
    checkpoint = make_checkpoint()
    _write_images(tmp_path / "in", 10)
    options = ["--checkpoint", str(checkpoint), "--batch-size", "1", "--workers", "0", "--precision", "float32"]
    assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "one"), *options]) == 0
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "segscale",
        "predict",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "two"),
        *options,
    ]
    finished = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]

    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["done"] == 10
    done = [row["input"] for row in summary["rows"] if row["status"] == "done"]
    assert len(done) == len(set(done)) == 10, "an image was predicted by both ranks, or by none"
    assert {row["rank"] for row in summary["rows"]} == {0, 1}
    assert _labels_files(tmp_path / "two") == _labels_files(tmp_path / "one")


def test_resuming_with_other_settings_is_refused(make_checkpoint, tmp_path, capsys):
    checkpoint = make_checkpoint()
    _write_images(tmp_path / "in", 2)
    args = [
        "predict",
        str(tmp_path / "in"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "0",
    ]
    assert main([*args, "--scales", "1", "0.5"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--scales", "1", "0.75"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "holds outputs made with other settings (scales: [1.0, 0.5])" in error
