"""Downloads against a local HTTP server on loopback (no internet needed)."""

import hashlib
import http.server
import threading

import pytest

from graphrec.data.download import ChecksumError, download
from graphrec.errors import DatasetNotFoundError

PAYLOAD = b"graphrec test archive " * 1000


@pytest.fixture()
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/good.zip": PAYLOAD, "/corrupt.zip": PAYLOAD[:-1] + b"X"}.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "good.zip"
    download(f"{server}/good.zip", dest, md5=hashlib.md5(PAYLOAD).hexdigest(), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["good.zip"]  # no temp file left


def test_corrupt_download_never_used(server, tmp_path):
    dest = tmp_path / "corrupt.zip"
    dest_before = tmp_path / "keep.zip"
    dest_before.write_bytes(b"old")
    with pytest.raises(ChecksumError, match=r"md5 .* differs from the published"):
        download(f"{server}/corrupt.zip", dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.zip"]


def test_unreachable(server, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="could not download"):
        download(f"{server}/missing.zip", tmp_path / "x.zip")
    assert list(tmp_path.iterdir()) == []
