"""``segscale train-head``: PASCAL VOC fetched through torchvision's downloader from an HTTP server on
127.0.0.1 (a tiny archive in the VOC layout), then an attention head trained on a frozen torchvision
network with random weights; a folder in the wrong layout names the layout expected."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from segscale.cli import main

KIND = "lraspp_mobilenet_v3_large"


def voc_archive() -> bytes:
    """VOCtrainval's layout with three 40x48 images: VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets}."""
    generator = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"VOCdevkit/VOC2012/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        for k in range(3):
            picture = io.BytesIO()
            Image.fromarray(generator.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(picture, "JPEG")
            add(f"JPEGImages/2007_00000{k}.jpg", picture.getvalue())
            label = np.zeros((40, 48), np.uint8)
            label[10:30, 12:36] = 15  # a "person"
            label[9, :] = 255  # void
            png = io.BytesIO()
            image = Image.fromarray(label, mode="P")
            image.putpalette([0, 0, 0] * 256)
            image.save(png, "PNG")
            add(f"SegmentationClass/2007_00000{k}.png", png.getvalue())
        add("ImageSets/Segmentation/train.txt", b"2007_000000\n2007_000001\n")
        add("ImageSets/Segmentation/val.txt", b"2007_000002\n")
        add("ImageSets/Segmentation/trainval.txt", b"2007_000000\n2007_000001\n2007_000002\n")
    return buffer.getvalue()


@pytest.fixture
def voc_server(monkeypatch):
    import torchvision.datasets.voc as voc

    data = voc_archive()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    entry = dict(voc.DATASET_YEAR_DICT["2012"])
    entry["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/{entry['filename']}"
    entry["md5"] = hashlib.md5(data).hexdigest()  # the tiny archive's own, where torchvision checks the real one's
    monkeypatch.setitem(voc.DATASET_YEAR_DICT, "2012", entry)
    yield
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def imported(tmp_path):
    from torchvision.models import get_model

    from segscale.torchvision_import import import_to_checkpoint

    torch.manual_seed(0)
    weights = tmp_path / "random.pth"
    torch.save(get_model(KIND, weights=None, weights_backbone=None, num_classes=21).state_dict(), weights)
    return import_to_checkpoint(KIND, tmp_path / f"{KIND}.pt", weights_file=weights, progress=False)


@pytest.mark.slow
def test_train_head_downloads_voc_and_trains_a_head_on_the_frozen_network(voc_server, imported, tmp_path, capsys):
    from segscale.checkpoint import model_from_checkpoint

    root, out = tmp_path / "VOC", tmp_path / "run"
    args = ["train-head", str(imported), "--dataset", "voc", "--data-root", str(root), "--download"]
    args += ["--iterations", "2", "--batch-size", "1", "--crop-size", "64", "--workers", "0", "--val-images", "1"]
    args += ["--val-every", "2", "--checkpoint-every", "1", "--scales", "1", "0.5", "--out-dir", str(out), "--quiet"]
    args += ["--no-amp", "--threads", "1"]
    assert main(args) == 0
    assert (root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2007_000000.jpg").is_file()
    model, metadata = model_from_checkpoint(out / "model.pt")
    assert model.attention_head is not None and metadata.model.trunk.name == KIND
    assert "done: 2 steps" in capsys.readouterr().out
    # The same command again continues the run (here: already complete) rather than starting afresh.
    history = (out / "history.jsonl").read_text()
    more = [value if value != "2" or args[k - 1] != "--iterations" else "3" for k, value in enumerate(args)]
    assert main(more) == 0
    assert "done: 3 steps" in capsys.readouterr().out
    # One more step was added to the same run folder: its history grows, it does not start over.
    assert (out / "history.jsonl").read_text().startswith(history)


def test_a_folder_in_the_wrong_layout_names_the_layout_expected(imported, tmp_path, capsys):
    (tmp_path / "notvoc" / "images").mkdir(parents=True)
    with pytest.raises(SystemExit) as refused:
        main(["train-head", str(imported), "--data-root", str(tmp_path / "notvoc"), "--quiet"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert "VOCdevkit/VOC2012/{JPEGImages, SegmentationClass" in error and "--download" in error
