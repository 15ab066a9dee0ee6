"""Downloading torchvision weights into the cache from an HTTP server on 127.0.0.1: a checked file arrives
whole or not at all (cut off, wrong checksum, read-only cache), with progress and the mirror setting."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading

import pytest

from segscale import weights_download as wd
from segscale.torchvision_import import cached_weights_path

KIND = "lraspp_mobilenet_v3_large"
PAYLOAD = os.urandom(300_000)  # stands in for a weights file: the download never reads what it holds


class Handler(http.server.BaseHTTPRequestHandler):
    body = PAYLOAD
    cut_at: int | None = None  # close the connection after this many bytes, announcing them all

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body if self.cut_at is None else self.body[: self.cut_at])
        self.wfile.flush()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    handler = type("Serving", (Handler,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(wd.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/mirror")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield handler
    httpd.shutdown()
    httpd.server_close()


def cache_files():
    folder = cached_weights_path(KIND).parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_checked_download_lands_in_the_cache_with_progress(server):
    url = wd.weights_url(KIND)
    assert url.endswith("/mirror/" + cached_weights_path(KIND).name) and url.startswith("http://127.0.0.1:")
    assert wd.remote_size(url) == len(PAYLOAD)
    seen = []
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    path = wd.download_weights(KIND, sha256_prefix=prefix, on_progress=lambda done, total: seen.append((done, total)))
    assert path == cached_weights_path(KIND) and path.read_bytes() == PAYLOAD
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 3
    assert cache_files() == [path.name]  # no temporary file left beside it


def test_a_download_cut_off_halfway_is_refused_and_leaves_nothing(server):
    server.cut_at = len(PAYLOAD) // 2
    with pytest.raises(wd.DownloadError, match="cut off|broke off") as refused:
        wd.download_weights(KIND, sha256_prefix=hashlib.sha256(PAYLOAD).hexdigest()[:8])
    assert "nothing was saved" in str(refused.value)
    assert cache_files() == []


def test_a_checksum_mismatch_is_refused_saying_so(server):
    # The published file name's hash digits do not match these random bytes.
    with pytest.raises(wd.DownloadError, match="SHA-256 .* not the published") as refused:
        wd.download_weights(KIND)
    assert wd.expected_prefix(KIND) in str(refused.value)
    assert cache_files() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_is_a_clear_error_and_stays_unchanged(server, tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    (folder / "other.pth").write_bytes(b"kept")
    folder.chmod(0o555)
    try:
        with pytest.raises(wd.DownloadError, match="not writable"):
            wd.download_weights(KIND, cache_dir=folder, sha256_prefix=hashlib.sha256(PAYLOAD).hexdigest()[:8])
        assert sorted(p.name for p in folder.iterdir()) == ["other.pth"]
    finally:
        folder.chmod(0o755)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(server, monkeypatch):
    import errno
    import tempfile

    real = tempfile.NamedTemporaryFile

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.name = handle, handle.name

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(wd.tempfile, "NamedTemporaryFile", lambda **kw: FullDisk(real(**kw)))
    with pytest.raises(wd.DownloadError, match="is full; nothing was saved"):
        wd.download_weights(KIND, sha256_prefix=hashlib.sha256(PAYLOAD).hexdigest()[:8])
    assert cache_files() == []


def test_offline_names_the_commands(monkeypatch, tmp_path):
    monkeypatch.setenv(wd.MIRROR_ENV, "http://127.0.0.1:9/nowhere")  # port 9: nothing listens
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(wd.DownloadError, match=f"segscale fetch-weights {KIND}.*import-torchvision {KIND}"):
        wd.download_weights(KIND)
    assert cache_files() == []


def test_a_read_only_file_system_is_a_clear_error_and_the_cache_stays(server, monkeypatch):
    import errno

    folder = cached_weights_path(KIND).parent
    folder.mkdir(parents=True)
    (folder / "other.pth").write_bytes(b"kept")

    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(wd.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(wd.DownloadError, match="is not writable \\(Read-only file system\\); nothing was saved"):
        wd.download_weights(KIND)
    assert cache_files() == ["other.pth"] and (folder / "other.pth").read_bytes() == b"kept"
