"""The files of a prediction (segscale.outputs): one registry, read alike by predict, folder jobs and the app.

Each test fails when one place offers, names or makes a kind of file differently from the others: a kind
added to the registry must come out of ``predict`` on an image, a folder job and (unless it says otherwise)
the main view's download buttons, with the same name and the same bytes.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from segscale import outputs
from segscale import visualize as viz
from segscale.cli import main
from segscale.outputs import APP_DOWNLOADS, OUTPUT_KINDS, OUTPUT_NAMES, output_name
from segscale.predictor import Predictor

from .conftest import noise

SCALES = (1.0, 0.75, 0.5)
IMAGE = "photo.png"


def test_each_kind_is_declared_once_with_its_own_suffix_and_everything_a_download_needs():
    assert OUTPUT_NAMES == tuple(OUTPUT_KINDS) and len(set(OUTPUT_NAMES)) == len(OUTPUT_NAMES)
    suffixes = [kind.suffix for kind in OUTPUT_KINDS.values()]
    assert len(set(suffixes)) == len(suffixes), "two kinds would write the same file"
    for name, kind in OUTPUT_KINDS.items():
        assert kind.name == name and kind.suffix.startswith("_") and "." in kind.suffix
        assert kind.mime and kind.label and kind.what and callable(kind.make)
    assert set(APP_DOWNLOADS) <= set(OUTPUT_NAMES)


def test_which_kinds_apply_follows_the_merge_and_the_scales():
    assert outputs.kinds_that_apply(None, "attention", SCALES) == OUTPUT_NAMES
    assert "attention" not in outputs.kinds_that_apply(None, "max", SCALES)
    assert "ablation" not in outputs.kinds_that_apply(None, "average", (1.0,))
    assert OUTPUT_KINDS["attention"].missing_reason("max", SCALES) == "No attention maps: max pooling has no weights."


def test_predict_offers_every_kind_of_the_registry():
    from segscale.commands import predict

    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    (outputs_option,) = [action for action in parser._actions if action.dest == "outputs"]
    assert tuple(outputs_option.choices) == OUTPUT_NAMES


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith((".", "summary"))}


@pytest.mark.parametrize("merge", ["attention", "max"])
def test_predict_and_a_folder_job_write_every_kind_alike(make_checkpoint, tmp_path, merge):
    """The same image, predicted alone and as a folder job asked for every kind, gives the same files."""
    checkpoint = make_checkpoint()
    (tmp_path / "in").mkdir()
    Image.fromarray(noise(48, 64, seed=3)).save(tmp_path / "in" / IMAGE)
    scales = [str(scale) for scale in SCALES]
    common = ["--checkpoint", str(checkpoint), "--merge", merge, "--scales", *scales]
    assert main(["predict", str(tmp_path / "in" / IMAGE), "--out", str(tmp_path / "one"), *common]) == 0
    folder_options = ["--workers", "0", "--precision", "float32", "--outputs", *OUTPUT_NAMES]
    assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "folder"), *common, *folder_options]) == 0

    expected = {output_name(IMAGE, merge, SCALES, kind) for kind in outputs.kinds_that_apply(None, merge, SCALES)}
    alone, folder = _files(tmp_path / "one"), _files(tmp_path / "folder")
    assert set(alone) == set(folder) == expected
    for name in expected:
        assert alone[name] == folder[name], f"predict and the folder job wrote different {name}"


class _FakeStreamlit:
    """What ``downloads_section`` asks of Streamlit, recorded instead of drawn."""

    def __init__(self) -> None:
        self.buttons: list[dict] = []
        self.captions: list[str] = []

    def columns(self, count):
        return [nullcontext() for _ in range(count)]

    def caption(self, text):
        self.captions.append(text)

    def download_button(self, label, data, file_name, mime, **kwargs):
        self.buttons.append({"label": label, "data": data, "file_name": file_name, "mime": mime, **kwargs})


@pytest.mark.parametrize("merge", ["attention", "max"])
def test_the_apps_downloads_are_the_registrys_and_give_what_predict_writes(
    make_checkpoint, tmp_path, monkeypatch, merge
):
    from ui import main_view

    checkpoint = make_checkpoint()
    rgb = noise(48, 64, seed=3)
    Image.fromarray(rgb).save(tmp_path / IMAGE)
    scales = [str(scale) for scale in SCALES]
    out = tmp_path / "predicted"
    assert main(["predict", str(tmp_path / IMAGE), "--out", str(out), "--checkpoint", str(checkpoint)]
                + ["--merge", merge, "--scales", *scales]) == 0  # fmt: skip
    written = _files(out)

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    prediction = predictor.predict(np.asarray(Image.open(tmp_path / IMAGE)), scales=SCALES, merge=merge)
    metadata = predictor.metadata
    # The page's view with its first choices: the most frequent object class, as a probability.
    class_index = viz.default_class(prediction.labels, len(metadata.classes))
    view = viz.build_view(prediction, metadata.classes, metadata.palette, class_index)
    page = _FakeStreamlit()
    monkeypatch.setattr(main_view, "st", page)
    main_view.downloads_section(SimpleNamespace(metadata=metadata), SimpleNamespace(name=IMAGE), prediction, view)

    offered = [name for name in APP_DOWNLOADS if OUTPUT_KINDS[name].applies(merge, SCALES)]
    assert [b["label"] for b in page.buttons] == [OUTPUT_KINDS[name].label for name in offered]
    assert [b["mime"] for b in page.buttons] == [OUTPUT_KINDS[name].mime for name in offered]
    assert [b["key"] for b in page.buttons] == [f"download_{name}" for name in offered]
    assert page.captions == [OUTPUT_KINDS[n].missing_reason(merge, SCALES) for n in APP_DOWNLOADS if n not in offered]
    for button in page.buttons:
        assert button["file_name"] in written, f"the page offers {button['file_name']}, which predict does not write"
        assert button["data"]() == written[button["file_name"]], f"the page's {button['file_name']} differs"
