"""The Checkpoints page's "Download and import" through AppTest, against an HTTP server on 127.0.0.1 serving
a random-weight torchvision file: success imports and chooses the checkpoint; a wrong checksum is refused."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest
import torch

from segscale import weights_download as wd
from segscale.torchvision_import import cached_weights_path
from tests.conftest import CHECKPOINTS, open_page, texts

KIND = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def weights_bytes() -> bytes:
    from torchvision.models import get_model

    torch.manual_seed(0)
    model = get_model(KIND, weights=None, weights_backbone=None, num_classes=21)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture
def mirror(weights_bytes, monkeypatch, tmp_path, checkpoint_dir):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(weights_bytes)))
            self.end_headers()

        def do_GET(self):
            self.do_HEAD()
            self.wfile.write(weights_bytes)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv(wd.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield checkpoint_dir
    httpd.shutdown()
    httpd.server_close()


def click_download(at):
    at.selectbox(key="download_kind").set_value(KIND).run()
    at.button(key="download_import").click().run(timeout=120)
    return at


def test_download_and_import_chooses_the_new_checkpoint(mirror, weights_bytes, monkeypatch):
    # The random file's own hash stands in for the published one.
    monkeypatch.setattr(wd, "expected_prefix", lambda kind: hashlib.sha256(weights_bytes).hexdigest()[:8])
    at = click_download(open_page(CHECKPOINTS))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert f"{len(weights_bytes) / 1e6:.1f} MB from http://127.0.0.1" in texts(at.markdown)
    assert at.get("progress"), "no progress bar"
    assert f"Imported as {KIND}.pt and chosen" in texts(at.success)
    assert (mirror / f"{KIND}.pt").is_file() and cached_weights_path(KIND).read_bytes() == weights_bytes
    assert at.session_state["checkpoint"] == f"{KIND}.pt"


def test_a_checksum_mismatch_is_one_message_and_imports_nothing(mirror):
    at = click_download(open_page(CHECKPOINTS))
    assert not at.exception
    assert "not the published" in " ".join(e.value for e in at.error)
    assert not (mirror / f"{KIND}.pt").exists() and not cached_weights_path(KIND).exists()
