"""``segscale train-head``: PASCAL VOC (and SBD) fetched through torchvision's downloaders from an HTTP server
on 127.0.0.1 (tiny archives in the real layouts), then an attention head trained on a frozen torchvision
network with random weights, also under torchrun; a folder in the wrong layout names the layout expected."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from segscale.cli import main

KIND = "lraspp_mobilenet_v3_large"
# Two steps of one 64x64 crop at two scales, on one thread: seconds, not the 6000 steps of the real settings.
TINY_HEAD_RUN = ["--iterations", "2", "--batch-size", "1", "--crop-size", "64", "--workers", "0", "--val-images", "1"]
TINY_HEAD_RUN += ["--val-every", "2", "--checkpoint-every", "1", "--scales", "1", "0.5", "--quiet", "--no-amp"]
TINY_HEAD_RUN += ["--threads", "1"]


def jpeg(generator: np.random.Generator, height: int = 40, width: int = 48) -> bytes:
    picture = io.BytesIO()
    Image.fromarray(generator.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(picture, "JPEG")
    return picture.getvalue()


def tar_archive(files: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def voc_archive() -> bytes:
    """VOCtrainval's layout with three 40x48 images: VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets}."""
    generator = np.random.default_rng(0)
    files = {}
    for k in range(3):
        files[f"JPEGImages/2007_00000{k}.jpg"] = jpeg(generator)
        label = np.zeros((40, 48), np.uint8)
        label[10:30, 12:36] = 15  # a "person"
        label[9, :] = 255  # void
        png = io.BytesIO()
        image = Image.fromarray(label, mode="P")
        image.putpalette([0, 0, 0] * 256)
        image.save(png, "PNG")
        files[f"SegmentationClass/2007_00000{k}.png"] = png.getvalue()
    files["ImageSets/Segmentation/train.txt"] = b"2007_000000\n2007_000001\n"
    files["ImageSets/Segmentation/val.txt"] = b"2007_000002\n"
    files["ImageSets/Segmentation/trainval.txt"] = b"2007_000000\n2007_000001\n2007_000002\n"
    return tar_archive({f"VOCdevkit/VOC2012/{name}": data for name, data in files.items()})


# SBD's own splits overlap VOC's: 2007_000001 is in VOC train too, 2007_000002 is VOC val (so never train_aug).
SBD_TRAIN = ("2007_000001", "2007_000002", "2008_000010")
SBD_VAL = ("2008_000011",)
SBD = SBD_TRAIN + SBD_VAL
SBD_CLASS = 3  # a "bird" in every SBD label, where VOC's tiny labels hold a "person"
TRAIN_AUG = ["2007_000000", "2007_000001", "2008_000010", "2008_000011"]


def sbd_archive() -> bytes:
    """benchmark.tgz's layout: benchmark_RELEASE/dataset/{img/*.jpg, cls/*.mat, inst/, train.txt, val.txt}."""
    from scipy.io import savemat

    generator = np.random.default_rng(1)
    files = {}
    for name in SBD:
        # The ids VOC has too get VOC's image size; SBD's own a size of their own.
        height, width = (40, 48) if name.startswith("2007") else (36, 44)
        files[f"img/{name}.jpg"] = jpeg(generator, height, width)
        segmentation = np.zeros((height, width), np.uint8)
        segmentation[5:25, 6:30] = SBD_CLASS
        mat = io.BytesIO()
        # The struct SBD's MATLAB files hold, read by torchvision as GTcls[0]["Segmentation"][0].
        savemat(mat, {"GTcls": {"Segmentation": segmentation, "CategoriesPresent": np.array([SBD_CLASS], np.uint8)}})
        files[f"cls/{name}.mat"] = mat.getvalue()
        files[f"inst/{name}.mat"] = mat.getvalue()
    files["train.txt"] = "".join(f"{name}\n" for name in SBD_TRAIN).encode()
    files["val.txt"] = "".join(f"{name}\n" for name in SBD_VAL).encode()
    # Gzipped, as torchvision extracts a .tgz.
    return tar_archive({f"benchmark_RELEASE/dataset/{name}": data for name, data in files.items()}, mode="w:gz")


@pytest.fixture
def http_files():
    """An HTTP server on 127.0.0.1: (the files it serves by path, filled in by the test; its base URL; seconds to
    wait before answering, by path)."""
    files: dict[str, bytes] = {}
    delays: dict[str, float] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delays.get(self.path, 0.0))
            data = files.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield files, f"http://127.0.0.1:{httpd.server_address[1]}", delays
    httpd.shutdown()
    httpd.server_close()


def serve_voc(files: dict[str, bytes], base_url: str) -> dict[str, str]:
    """Serve the tiny VOC archive; returns torchvision's VOC 2012 entry pointing at it."""
    import torchvision.datasets.voc as voc

    data = voc_archive()
    entry = dict(voc.DATASET_YEAR_DICT["2012"])
    files[f"/{entry['filename']}"] = data
    entry["url"] = f"{base_url}/{entry['filename']}"
    entry["md5"] = hashlib.md5(data).hexdigest()  # the tiny archive's own, where torchvision checks the real one's
    return entry


@pytest.fixture
def voc_server(http_files, monkeypatch):
    import torchvision.datasets.voc as voc

    files, base_url, _ = http_files
    monkeypatch.setitem(voc.DATASET_YEAR_DICT, "2012", serve_voc(files, base_url))
    return http_files


@pytest.fixture
def sbd_server(voc_server, monkeypatch):
    from torchvision.datasets import SBDataset

    files, base_url, _ = voc_server
    data = sbd_archive()
    files["/benchmark.tgz"] = data
    monkeypatch.setattr(SBDataset, "url", f"{base_url}/benchmark.tgz")
    monkeypatch.setattr(SBDataset, "md5", hashlib.md5(data).hexdigest())
    # Not served: train_aug is built from SBD's train and val lists, without torchvision's extra train_noval list.
    monkeypatch.setattr(SBDataset, "voc_train_url", f"{base_url}/train_noval.txt")


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
    args = ["train-head", str(imported), "--dataset", "voc", "--data-root", str(root), "--download", *TINY_HEAD_RUN]
    args += ["--out-dir", str(out)]
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


# torchrun's processes are fresh interpreters, where a monkeypatch does not reach: Python imports a
# sitecustomize module found on PYTHONPATH at start-up, and this one points torchvision at the test's server.
POINT_TORCHVISION_AT_TEST_SERVER = """
import os

if "TEST_VOC_URL" in os.environ:
    import torchvision.datasets.voc as voc

    entry = voc.DATASET_YEAR_DICT["2012"]
    voc.DATASET_YEAR_DICT["2012"] = {**entry, "url": os.environ["TEST_VOC_URL"], "md5": os.environ["TEST_VOC_MD5"]}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_train_head(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    command += ["--master_port", str(free_port()), "-m", "segscale", "train-head", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_train_head_under_torchrun_waits_for_rank_0s_download_then_resumes(http_files, imported, tmp_path):
    from segscale.checkpoint import model_from_checkpoint

    files, base_url, delays = http_files
    entry = serve_voc(files, base_url)
    # Rank 0's download takes seconds here, as it takes minutes for real: rank 1 must wait for it, not look
    # for the data at once and stop.
    delays[f"/{entry['filename']}"] = 3.0
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(POINT_TORCHVISION_AT_TEST_SERVER)
    python_path = os.pathsep.join(path for path in (str(hooks), os.environ.get("PYTHONPATH")) if path)
    env = {**os.environ, "PYTHONPATH": python_path, "TEST_VOC_URL": entry["url"], "TEST_VOC_MD5": entry["md5"]}
    root, out = tmp_path / "VOC", tmp_path / "run"
    args = [str(imported), "--data-root", str(root), *TINY_HEAD_RUN, "--out-dir", str(out)]
    first = torchrun_train_head([*args, "--download"], env, tmp_path)
    assert first.stdout.count("done: 2 steps") == 1  # one report for the whole run, from rank 0
    model, metadata = model_from_checkpoint(out / "model.pt")
    assert model.attention_head is not None and metadata.training["processes"] == 2
    # Again, on the tree now on disk and with one more step: the run continues where it stopped.
    history = (out / "history.jsonl").read_text()
    more = [value if value != "2" or args[k - 1] != "--iterations" else "3" for k, value in enumerate(args)]
    second = torchrun_train_head(more, env, tmp_path)
    assert second.stdout.count("done: 3 steps") == 1
    assert (out / "history.jsonl").read_text().startswith(history)
    assert model_from_checkpoint(out / "model.pt")[1].training["steps"] == 3


@pytest.mark.slow
def test_train_head_with_sbd_builds_train_aug_from_voc_and_sbd_and_trains_on_it(sbd_server, imported, tmp_path, capsys):
    from segscale.data.pascal import VOC2012Segmentation

    root, out = tmp_path / "VOC", tmp_path / "run"
    args = ["train-head", str(imported), "--data-root", str(root), "--download", "--sbd", *TINY_HEAD_RUN]
    assert main([*args, "--out-dir", str(out)]) == 0
    assert "done: 2 steps" in capsys.readouterr().out
    voc2012 = root / "VOCdevkit" / "VOC2012"
    assert (voc2012 / "ImageSets" / "Segmentation" / "train_aug.txt").read_text().split() == TRAIN_AUG
    train_aug = VOC2012Segmentation(root, "train_aug")
    labels = {sample.name: label for sample, (_, label) in zip(train_aug.samples, train_aug)}
    # Where SBD has the image its .mat label is used; elsewhere VOC's, void border included.
    assert set(np.unique(labels["2007_000001"])) == {0, SBD_CLASS} and labels["2008_000011"].shape == (36, 44)
    assert set(np.unique(labels["2007_000000"])) == {0, 15, 255}
    sbd_image = root / "SBD" / "img" / "2008_000010.jpg"
    assert (voc2012 / "JPEGImages" / "2008_000010.jpg").read_bytes() == sbd_image.read_bytes()


def test_train_aug_conversion_resumes_after_an_interruption_and_keeps_what_it_finished(tmp_path):
    from segscale.data.voc_aug import build_train_aug

    with tarfile.open(fileobj=io.BytesIO(voc_archive())) as archive:
        archive.extractall(tmp_path, filter="data")
    with tarfile.open(fileobj=io.BytesIO(sbd_archive())) as archive:
        archive.extractall(tmp_path, filter="data")
    voc2012, sbd_dir = tmp_path / "VOCdevkit" / "VOC2012", tmp_path / "benchmark_RELEASE" / "dataset"
    list_path = build_train_aug(voc2012, sbd_dir, progress=False)
    assert list_path.read_text().split() == TRAIN_AUG
    labels = voc2012 / "SegmentationClassAug"
    assert sorted(path.stem for path in labels.iterdir()) == TRAIN_AUG  # and no partial files left
    # As if killed before the list was written: one label is missing, the others were done.
    list_path.unlink()
    (labels / "2008_000011.png").unlink()
    finished = labels / "2008_000010.png"
    finished.write_bytes(b"kept")  # a stand-in: a finished label is not converted again
    build_train_aug(voc2012, sbd_dir, progress=False)
    assert list_path.read_text().split() == TRAIN_AUG
    assert (labels / "2008_000011.png").is_file() and finished.read_bytes() == b"kept"
    # A list on disk means a complete set: nothing is looked at again.
    (labels / "2008_000011.png").unlink()
    build_train_aug(voc2012, sbd_dir, progress=False)
    assert not (labels / "2008_000011.png").exists()


def test_a_broken_off_sbd_fetch_is_redone_rather_than_skipped(sbd_server, tmp_path):
    from segscale.commands.train_head import download_voc

    root = tmp_path / "VOC"
    # A fetch stopped while torchvision moved SBD's folders out of the unpacked archive: no val.txt yet.
    (root / "SBD" / "cls").mkdir(parents=True)
    (root / "SBD" / "cls" / "2008_000010.mat").write_bytes(b"cut short")
    download_voc(root, sbd=True, progress=False)
    assert sorted(path.name for path in (root / "SBD" / "cls").iterdir()) == [f"{name}.mat" for name in sorted(SBD)]
    list_path = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "train_aug.txt"
    assert list_path.read_text().split() == TRAIN_AUG
