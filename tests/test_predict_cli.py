"""``python -m segscale predict``: the page's files without a browser, and clean one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segscale.cli import main
from segscale.outputs import OUTPUT_KINDS


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo one.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)).save(path, quality=95)
    return path


def test_writes_every_map_and_the_figure(make_checkpoint, photo, tmp_path, capsys):
    checkpoint = make_checkpoint()
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(photo),
            "--checkpoint",
            str(checkpoint),
            "--scales",
            "1",
            "0.75",
            "0.5",
            "--merge",
            "attention",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"photo_one_attention_1-0.75-0.5{kind.suffix}" for kind in OUTPUT_KINDS.values())
    labels = Image.open(out / "photo_one_attention_1-0.75-0.5_labels.png")
    assert labels.mode == "P" and labels.size == (70, 50)
    maps = np.load(out / "photo_one_attention_1-0.75-0.5_maps.npz", allow_pickle=False)
    assert maps["score_maps"].shape[:2] == (3, 3) and tuple(maps["scales"]) == (1.0, 0.75, 0.5)
    np.testing.assert_array_equal(np.asarray(labels), maps["labels"])
    assert Image.open(out / "photo_one_attention_1-0.75-0.5_figure.png").format == "PNG"
    assert Image.open(out / "photo_one_attention_1-0.75-0.5_attention.png").size == (3 * 70 + 2 * 8, 50)
    assert "photo one.jpg: 70x50" in capsys.readouterr().out


def test_max_pooling_writes_no_attention_file(make_checkpoint, photo, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                str(photo),
                "--checkpoint",
                str(make_checkpoint()),
                "--merge",
                "max",
                "--scales",
                "1",
                "0.5",
                "--class",
                "bar",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert not (out / "photo_one_attention_1-0.75-0.5_attention.png").exists()
    assert str(np.load(out / "photo_one_max_1-0.5_maps.npz")["merge"]) == "max"


@pytest.mark.parametrize(
    "content, message",
    [(b"not an image at all", "holds text, not an image"), (b"", "empty")],
)
def test_a_bad_image_is_a_one_line_error_with_exit_code_2(make_checkpoint, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(bad), "--checkpoint", str(make_checkpoint()), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "segscale predict: error:" in error and message in error and "Traceback" not in error


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--class", "dragon"], "unknown class 'dragon'"),
        (["--checkpoint", "missing.pt"], "no such file"),
        (["--scales", "1", "1"], "repeats a scale"),
    ],
)
def test_bad_options_are_one_line_errors(make_checkpoint, photo, tmp_path, capsys, extra, message):
    args = ["predict", str(photo), "--checkpoint", str(make_checkpoint()), "--out", str(tmp_path / "out"), *extra]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_missing_image_fails_before_the_model_loads(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "predict",
                str(tmp_path / "nope.png"),
                "--checkpoint",
                str(tmp_path / "never-read.pt"),
                "--out",
                str(tmp_path),
            ]
        )
    assert "nope.png: no such file" in capsys.readouterr().err


def test_exif_rotation_reaches_the_cli(make_checkpoint, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.new("RGB", (40, 24), (10, 120, 200)).save(path, exif=exif)
    assert main(["predict", str(path), "--checkpoint", str(make_checkpoint()), "--out", str(tmp_path / "out")]) == 0
    labels = next((tmp_path / "out").glob("turned_*_labels.png"))  # the checkpoint's own merge and scales
    assert Image.open(labels).size == (24, 40)  # upright: width and height swapped


def test_a_scaleshapes_model_on_an_image_says_the_apps_one_line(make_checkpoint, photo, tmp_path, capsys):
    from segscale.data.scaleshapes import CLASSES
    from segscale.photos import shapes_model_on_photo_note

    note = shapes_model_on_photo_note(CLASSES)
    assert note and "knows only ScaleShapes" in note and "circle, triangle" in note
    shapes = make_checkpoint("shapes.pt", scaleshapes=True)
    assert main(["predict", str(photo), "--checkpoint", str(shapes), "--out", str(tmp_path / "a")]) == 0
    assert f"note: {note}" in capsys.readouterr().out.splitlines()
    other = make_checkpoint("other.pt")  # its own three classes: not a ScaleShapes model, no such note
    assert main(["predict", str(photo), "--checkpoint", str(other), "--out", str(tmp_path / "b")]) == 0
    assert "knows only ScaleShapes" not in capsys.readouterr().out
