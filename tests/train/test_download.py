"""Dataset download against a local HTTP server on loopback."""

import http.server
import io
import os
import threading
import zipfile

import pytest

from asrec.data import registry
from asrec.data.download import DatasetDownloadError, fetch_dataset
from asrec.data.load import load_dataset

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
    f"{u}\t{i}\t1\t{u * 100 + i}\n" for u in range(1, 8) for i in range(1, 8))


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("ml-1m/ml-1m.inter", INTER)
    return buffer.getvalue()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests = []

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    handler = type("Handler", (_RangeHandler,), {"payload": _zip_bytes(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(registry.BASE_URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield handler
    httpd.shutdown()
    httpd.server_close()


def test_download_extract_and_load(server, tmp_path):
    data, name, source = load_dataset("ml-1m", None, 5, cache_dir=str(tmp_path))
    assert name == "ml-1m" and source.endswith(os.path.join("ml-1m", "ml-1m.inter"))
    assert data.statistics()["users"] == 7 and data.statistics()["items"] == 7
    assert server.requests == [("/MovieLens/ml-1m.zip", None)]
    load_dataset("ml-1m", None, 5, cache_dir=str(tmp_path))  # cached: no second request
    assert len(server.requests) == 1


def test_download_resumes_a_partial_file(server, tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ml-1m.zip.part").write_bytes(server.payload[:100])
    path = fetch_dataset(registry.DATASETS["ml-1m"], str(tmp_path))
    assert server.requests == [("/MovieLens/ml-1m.zip", "bytes=100-")]
    assert open(path).read() == INTER


def test_corrupt_archive_is_deleted_with_a_clear_error(server, tmp_path):
    damaged = bytearray(server.payload)
    damaged[60] ^= 0xFF  # inside the compressed member: the CRC check fails
    server.payload = bytes(damaged)
    with pytest.raises(DatasetDownloadError, match="corrupt .* it was deleted, run again"):
        fetch_dataset(registry.DATASETS["ml-1m"], str(tmp_path))
    assert not (tmp_path / "ml-1m" / "ml-1m.zip").exists()


def test_known_digest_is_checked(server, tmp_path, monkeypatch):
    info = registry.DatasetInfo("ml-1m", "MovieLens/ml-1m.zip", "ml-1m.inter", inter_sha256="0" * 64)
    with pytest.raises(DatasetDownloadError, match="does not have the known SHA-256"):
        fetch_dataset(info, str(tmp_path))


def test_server_gone_says_to_use_data_path(tmp_path, monkeypatch):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(registry.BASE_URL_ENV, f"http://127.0.0.1:{port}/")
    with pytest.raises(DatasetDownloadError, match="offline.*--data-path"):
        fetch_dataset(registry.DATASETS["ml-100k"], str(tmp_path))
