"""The command-line twins of the diagnostic views: inspect, compare, diagnose, describe, checkpoints."""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from segscale import cli
from segscale.architecture import architecture_summary
from segscale.checkpoint import model_from_checkpoint


def run_command(name: str, argv: list[str]) -> int:
    """Run segscale.commands.<name> in-process, as cli.main would (works for commands not yet registered)."""
    module = importlib.import_module(f"segscale.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"segscale {name}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, size=(40, 57, 3), dtype=np.uint8)).save(path)
    return path


def test_inspect_text_and_json(make_checkpoint, image_file, capsys):
    checkpoint = str(make_checkpoint())
    assert (
        cli.main(["inspect", str(image_file), "--pixel", "20", "30", "--checkpoint", checkpoint, "--device", "cpu"])
        == 0
    )
    text = capsys.readouterr().out
    assert "photo.png" in text and "Eq. 2" in text and "Eq. 1" in text and "pixel (row 20, col 30)" in text
    assert (
        cli.main(
            [
                "inspect",
                str(image_file),
                "--pixel",
                "20",
                "30",
                "--checkpoint",
                checkpoint,
                "--device",
                "cpu",
                "--json",
                "--top-k",
                "2",
                "--class",
                "bar",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    logits = np.array(data["softmax"]["logits"])
    np.testing.assert_allclose(data["softmax"]["weights"], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)
    weights = np.array(data["fusions"]["attention"]["weights"])
    for name, g in data["fusions"]["attention"]["fused"].items():
        assert g == pytest.approx(float(weights @ np.array(data["scores"][name])), rel=1e-12)
    assert "bar" in data["shown_classes"] and len(data["shown_classes"]) in (2, 3)
    assert data["cell"]["row"] == round(20 * (data["grid"][0] - 1) / 39)  # nearest cell on the aligned grid
    assert data["pixel_label"] in ("background", "disc", "bar")


def test_inspect_a_sample_shows_its_ground_truth(make_checkpoint, capsys):
    from segscale.data.scaleshapes import CLASSES, generate_sample

    checkpoint = str(make_checkpoint(scaleshapes=True, merge="average"))
    assert (
        run_command(
            "inspect", ["--sample", "val:8", "--pixel", "5", "7", "--checkpoint", checkpoint, "--device", "cpu"]
        )
        == 0
    )
    text = capsys.readouterr().out
    truth = CLASSES[generate_sample("val", 8).label[5, 7]]
    assert f"ground truth at the pixel: {truth}" in text
    assert "not shown" in text  # a model without attention head: no Eq. 2 numbers


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pixel", "0", "0"], "give an IMAGE file or --sample"),
        (["--sample", "val", "--pixel", "0", "0"], "SPLIT:INDEX"),
        (["--sample", "dev:3", "--pixel", "0", "0"], "SPLIT:INDEX"),
        (["nowhere.png", "--pixel", "0", "0"], "no such file"),
        (["IMAGE", "--pixel", "40", "0"], "outside"),
        (["IMAGE", "--pixel", "0", "0", "--top-k", "0"], "top-k"),
        (["IMAGE", "--pixel", "0", "0", "--class", "zebra"], "unknown class"),
    ],
)
def test_inspect_errors_are_one_line(make_checkpoint, image_file, capsys, argv, message):
    argv = [str(image_file) if a == "IMAGE" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["inspect", *argv, "--checkpoint", str(make_checkpoint()), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _png(path) -> np.ndarray:
    return np.array(Image.open(path))


def test_compare_writes_consistent_files(make_checkpoint, tmp_path, capsys):
    from segscale.data.scaleshapes import generate_sample

    out = tmp_path / "out"
    checkpoint = str(make_checkpoint(scaleshapes=True))
    assert (
        run_command("compare", ["--sample", "val:8", "--out", str(out), "--checkpoint", checkpoint, "--device", "cpu"])
        == 0
    )
    text = capsys.readouterr().out
    assert "mIoU" in text and "pairwise agreement" in text
    truth = generate_sample("val", 8).label
    report = json.loads((out / "val_000008_comparison.json").read_text())
    disagreement = _png(out / "val_000008_disagreement.png") > 0
    labels = {}
    for method in ("attention", "average", "max"):
        labels[method] = _png(out / f"val_000008_labels_{method}.png")  # palette indices
        errors = _png(out / f"val_000008_errors_{method}.png") > 0
        assert labels[method].shape == truth.shape
        np.testing.assert_array_equal(errors, labels[method] != truth)  # ScaleShapes has no ignore pixels
        assert report["results"][method]["wrong_pixels"] == int(errors.sum())
        assert report["results"][method]["pixel_accuracy"] == pytest.approx(1 - errors.mean())
    np.testing.assert_array_equal(
        disagreement, (labels["attention"] != labels["average"]) | (labels["average"] != labels["max"])
    )
    assert report["disagreement_share"] == pytest.approx(disagreement.mean())
    assert _png(out / "val_000008_comparison.png").ndim == 3


def test_compare_a_file_without_ground_truth_or_head(make_checkpoint, image_file, tmp_path, capsys):
    out = tmp_path / "out"
    checkpoint = str(make_checkpoint(merge="max"))
    assert cli.main(["compare", str(image_file), "--out", str(out), "--checkpoint", checkpoint, "--device", "cpu"]) == 0
    assert "no ground truth" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "photo_comparison.json",
        "photo_comparison.png",
        "photo_disagreement.png",
        "photo_labels_average.png",
        "photo_labels_max.png",
        "photo_max_deciding_scale.png",
    ]


def test_diagnose_scaleshapes_writes_table_aggregates_and_plots(make_checkpoint, tmp_path, capsys):
    from segscale.data.scaleshapes import generate_sample

    out = tmp_path / "diag"
    checkpoint = str(make_checkpoint(scaleshapes=True))
    assert (
        cli.main(
            [
                "diagnose",
                "--count",
                "2",
                "--start",
                "14",
                "--out",
                str(out),
                "--checkpoint",
                checkpoint,
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "mean attention weight per scale, by object extent" in captured.out
    assert "diagnose val" in captured.err and "2/2" in captured.err  # the progress bar
    assert "\r" not in captured.err  # stderr is no terminal here: whole lines, as in a log
    rows = list(csv.DictReader(io.StringIO((out / "objects.csv").read_text())))
    expected = [(k, o.instance_id) for k in (14, 15) for o in generate_sample("val", k).objects if o.visible_pixels]
    assert [(int(r["image_index"]), int(r["instance_id"])) for r in rows] == expected
    aggregates = json.loads((out / "aggregates.json").read_text())
    assert aggregates["images"] == 2 and aggregates["objects"] == len(rows) and aggregates["start"] == 14
    per_bin = sum(b["objects"] for b in aggregates["weight_by_extent"])
    assert per_bin == len(rows)
    for name in ("weight_by_extent", "weight_by_class", "dominant_share", "miou_by_merge"):
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_diagnose_image_files(make_checkpoint, image_file, tmp_path, capsys):
    second = tmp_path / "second.jpg"
    Image.fromarray(np.full((30, 30, 3), 120, np.uint8)).save(second)
    out = tmp_path / "diag"
    checkpoint = str(make_checkpoint())
    argv = [
        "diagnose",
        "--images",
        str(image_file),
        str(second),
        "--out",
        str(out),
        "--checkpoint",
        checkpoint,
        "--device",
        "cpu",
        "--quiet",
    ]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "entropy in bits" in captured.out and "diagnose images" not in captured.err  # --quiet: no progress bar
    rows = list(csv.DictReader(io.StringIO((out / "images.csv").read_text())))
    assert [r["image"] for r in rows] == ["photo.png", "second.jpg"] and [r["height"] for r in rows] == ["40", "30"]
    for row in rows:
        assert sum(float(row[k]) for k in row if k.startswith("weight_s")) == pytest.approx(1.0, abs=1e-5)
    assert sorted(p.name for p in out.iterdir()) == [
        "aggregates.json",
        "dominant_share.png",
        "image_weights.png",
        "images.csv",
    ]
    with pytest.raises(SystemExit):
        cli.main(
            [
                "diagnose",
                "--images",
                str(image_file),
                "--checkpoint",
                str(make_checkpoint("avg.pt", merge="average")),
                "--device",
                "cpu",
            ]
        )
    assert "neither an attention head nor a gate head" in capsys.readouterr().err


def test_describe(make_checkpoint, capsys):
    path = make_checkpoint(head="paper")
    summary = architecture_summary(model_from_checkpoint(path)[0])
    assert cli.main(["describe", "--checkpoint", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"{summary.receptive_field} x {summary.receptive_field} input pixels" in text
    assert f"{summary.total_parameters:,} in all" in text and "tiny test model" in text and "training card" in text
    assert "conv1_1_relu" not in text and "fc6" in text
    assert cli.main(["describe", "--checkpoint", str(path), "--all-layers", "--paper", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["architecture"]["output_stride"] == summary.output_stride
    assert any(layer["layer"] == "conv1_1_relu" for layer in data["architecture"]["layers"])
    assert data["paper_model"]["receptive_field"] == summary.receptive_field
    assert data["training_card"]["name"] == "tiny test model"


def test_checkpoints_listing(make_checkpoint, tmp_path, capsys):
    make_checkpoint("good.pt")
    (tmp_path / "zz_truncated.pt").write_bytes(b"PK\x03\x04 cut")
    assert run_command("checkpoints", [str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "good.pt" in text and "tiny test model" in text and "trained scales" in text
    assert "zz_truncated.pt" in text and "cannot be used" in text
    with pytest.raises(ValueError, match="no such file"):
        run_command("checkpoints", [str(tmp_path / "missing")])


def test_diagnose_images_leaves_unreadable_files_out_and_counts_them(make_checkpoint, image_file, tmp_path, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny)
    argv = [
        "diagnose",
        "--images",
        str(notes),
        str(image_file),
        str(tmp_path / "absent.jpg"),
        str(tiny),
        "--checkpoint",
        str(make_checkpoint()),
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(tmp_path / "diag"),
    ]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert any("notes.png" in w and "holds text" in w for w in warnings)
    assert any("absent.jpg" in w and "no such file" in w for w in warnings)
    assert any("tiny.png" in w and "at least 16 pixels" in w for w in warnings)
    assert "3 of 4 files left out (unreadable); 1 remain" in captured.err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "diag" / "images.csv").read_text())))
    assert [r["image"] for r in rows] == ["photo.png"]


def _label_files(tmp_path, truth: np.ndarray, palette) -> dict:
    """The same ground truth as a palette PNG, a greyscale index PNG and an RGB PNG in the class colours."""
    paths = {kind: tmp_path / f"labels_{kind}.png" for kind in ("palette", "index", "colour")}
    indexed = Image.fromarray(truth.astype(np.uint8), mode="P")
    indexed.putpalette([v for rgb in palette for v in rgb] + [255, 255, 255] * (256 - len(palette)))
    indexed.save(paths["palette"])
    Image.fromarray(truth.astype(np.uint8), mode="L").save(paths["index"])
    lookup = np.full((256, 3), 255, np.uint8)
    lookup[: len(palette)] = palette
    Image.fromarray(lookup[truth]).save(paths["colour"])
    return paths


@pytest.mark.parametrize("kind", ["palette", "index", "colour"])
def test_compare_with_a_label_file_gives_iou_and_error_maps(make_checkpoint, tmp_path, capsys, kind):
    from segscale.data.scaleshapes import PALETTE, generate_sample

    sample = generate_sample("val", 8)
    image = tmp_path / "shapes.png"
    Image.fromarray(sample.image).save(image)
    truth = sample.label.astype(np.int64)
    truth[:3] = 255  # a band left unannotated: ignored by every score
    labels = _label_files(tmp_path, truth, PALETTE)[kind]
    out = tmp_path / "out"
    checkpoint = str(make_checkpoint(scaleshapes=True))
    argv = [
        "compare",
        str(image),
        "--labels",
        str(labels),
        "--out",
        str(out),
        "--checkpoint",
        checkpoint,
        "--device",
        "cpu",
        "--json",
    ]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ground_truth"] is True
    for method in ("attention", "average", "max"):
        predicted = _png(out / f"shapes_labels_{method}.png")
        errors = _png(out / f"shapes_errors_{method}.png") > 0
        np.testing.assert_array_equal(errors, (truth != 255) & (predicted != truth))
        assert report["results"][method]["wrong_pixels"] == int(errors.sum())
        assert report["results"][method]["miou"] is not None


def test_compare_labels_follow_the_image_when_max_side_scales_it(make_checkpoint, tmp_path, capsys):
    truth = np.zeros((40, 80), np.int64)
    truth[:, 40:] = 1
    image = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, size=(40, 80, 3), dtype=np.uint8)).save(image)
    from .conftest import TINY_PALETTE

    labels = _label_files(tmp_path, truth, TINY_PALETTE)["index"]
    out = tmp_path / "out"
    argv = [
        "compare",
        str(image),
        "--labels",
        str(labels),
        "--max-side",
        "40",
        "--out",
        str(out),
        "--checkpoint",
        str(make_checkpoint()),
        "--device",
        "cpu",
    ]
    assert cli.main(argv) == 0
    errors = _png(out / "wide_errors_attention.png") > 0
    predicted = _png(out / "wide_labels_attention.png")
    assert errors.shape == predicted.shape == (20, 40)
    np.testing.assert_array_equal(errors, predicted != np.repeat([[0] * 20 + [1] * 20], 20, axis=0))
