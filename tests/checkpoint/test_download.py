"""resolve_weights against a local HTTP server (127.0.0.1, ephemeral port): no internet needed."""
import glob
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
from torch import nn

from seg_research.checkpoint import Checkpointer
from seg_research.utils import download
from seg_research.utils.download import (
    DETECTRON2_URL_PREFIX,
    WeightsDownloadError,
    WeightsHashMismatchError,
    cached_path_for_url,
    get_cache_dir,
    resolve_weights,
    weights_url,
)
from seg_research.utils.file_io import PathManager

PAYLOAD = b"weights" * 1000


class _Server:
    """Serves ``root``; ``/truncated/<name>`` announces more bytes than it sends, then closes."""

    def __init__(self, root):
        self.root = str(root)
        self.requests = []
        self.release = threading.Event()  # lets a held ``/stalled/`` response finish
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=server.root, **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                if self.path.startswith("/truncated/"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    self.wfile.write(PAYLOAD[:100])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if self.path.startswith("/stalled/"):  # half the body, then wait (the client gets killed)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
                    self.wfile.flush()
                    server.release.wait(10)
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def put(self, relpath, data=PAYLOAD):
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return f"{self.base}/{relpath}"

    def shutdown(self):
        self.release.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.httpd = None


@pytest.fixture
def server(tmp_path):
    s = _Server(tmp_path / "served")
    yield s
    s.shutdown()


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def _leftovers(cache_dir):
    """Temporary download folders/files anywhere in the cache."""
    return [p for p in glob.glob(os.path.join(cache_dir, "**", ".*"), recursive=True) if ".part" in p or ".tmp" in p]


def _resolve_with_plain_server(server, url, cache):
    """``resolve_weights(url)`` with the server answering every path as a plain file server
    (no truncation, no stall); checks the cached file holds the whole payload."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(server.httpd.RequestHandlerClass, "do_GET", http.server.SimpleHTTPRequestHandler.do_GET)
    try:
        cached = resolve_weights(url, cache_dir=cache)
    finally:
        monkeypatch.undo()
    with open(cached, "rb") as f:
        assert f.read() == PAYLOAD
    return cached


def test_local_path_unchanged(tmp_path):
    assert resolve_weights("output/model_final.pth") == "output/model_final.pth"
    assert resolve_weights(str(tmp_path / "missing.pkl")) == str(tmp_path / "missing.pkl")
    assert weights_url("/a/b.pth") is None


def test_downloads_once_then_serves_from_cache(server, cache):
    url = server.put("models/sub/w.pth")
    local = resolve_weights(url, cache_dir=cache)
    assert local == cached_path_for_url(url, cache_dir=cache)
    assert local == os.path.join(cache, f"127.0.0.1_{server.httpd.server_address[1]}", "models", "sub", "w.pth")
    with open(local, "rb") as f:
        assert f.read() == PAYLOAD
    assert resolve_weights(url, cache_dir=cache) == local
    assert server.requests == ["/models/sub/w.pth"]
    server.shutdown()
    assert resolve_weights(url, cache_dir=cache) == local  # no network needed any more
    assert _leftovers(cache) == []


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path / "env_cache"))
    assert get_cache_dir() == str(tmp_path / "env_cache")
    local = resolve_weights(server.put("w.pkl"))
    assert local.startswith(str(tmp_path / "env_cache") + os.sep) and os.path.isfile(local)

    monkeypatch.delenv("SEG_RESEARCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_cache_dir() == str(tmp_path / "home" / ".cache" / "seg_research")


def test_detectron2_prefix(server, cache, monkeypatch):
    name = "ImageNetPretrained/MSRA/R-50.pkl"
    assert weights_url("detectron2://" + name) == DETECTRON2_URL_PREFIX + name
    assert cached_path_for_url(DETECTRON2_URL_PREFIX + name, cache_dir=cache) == os.path.join(
        cache, "dl.fbaipublicfiles.com", "detectron2", *name.split("/")
    )

    server.put("mirror/detectron2/" + name)
    monkeypatch.setattr(download, "DETECTRON2_URL_PREFIX", server.base + "/mirror/detectron2/")
    local = resolve_weights("detectron2://" + name, cache_dir=cache)
    assert local.endswith(os.path.join("mirror", "detectron2", "ImageNetPretrained", "MSRA", "R-50.pkl"))
    assert server.requests == ["/mirror/detectron2/" + name]


def test_path_manager_resolves_detectron2_and_http(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "DETECTRON2_URL_PREFIX", server.base + "/d2/")
    server.put("d2/x/y.pkl")
    local = PathManager.get_local_path("detectron2://x/y.pkl")
    assert local == resolve_weights("detectron2://x/y.pkl") and os.path.isfile(local)
    with PathManager.open(server.base + "/d2/x/y.pkl", "rb") as f:
        assert f.read() == PAYLOAD


def test_hash_suffix_verified(server, cache):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    local = resolve_weights(server.put(f"resnet-{digest[:10]}.pth"), cache_dir=cache)
    assert os.path.isfile(local)

    url = server.put("resnet-deadbeef00.pth")
    with pytest.raises(WeightsHashMismatchError) as e:
        resolve_weights(url, cache_dir=cache)
    assert url in str(e.value) and "deadbeef00" in str(e.value) and digest in str(e.value)
    assert not os.path.exists(cached_path_for_url(url, cache_dir=cache))
    assert _leftovers(cache) == []


def test_unreachable_server_names_url_and_cache_path(cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/models/w.pth"
    with pytest.raises(WeightsDownloadError) as e:
        resolve_weights(url, cache_dir=cache)
    assert url in str(e.value) and cached_path_for_url(url, cache_dir=cache) in str(e.value)
    assert _leftovers(cache) == []


def test_http_error_and_empty_file(server, cache):
    missing = f"{server.base}/nope/w.pth"
    with pytest.raises(WeightsDownloadError, match="404"):
        resolve_weights(missing, cache_dir=cache)
    empty = server.put("empty.pth", b"")
    with pytest.raises(WeightsDownloadError, match="empty"):
        resolve_weights(empty, cache_dir=cache)
    assert not os.path.exists(cached_path_for_url(empty, cache_dir=cache))
    assert _leftovers(cache) == []


def test_truncated_download_leaves_nothing_trusted(server, cache):
    url = f"{server.base}/truncated/w.pth"
    cached = cached_path_for_url(url, cache_dir=cache)
    with pytest.raises(WeightsDownloadError, match="truncated") as e:
        resolve_weights(url, cache_dir=cache)
    assert url in str(e.value) and cached in str(e.value)
    assert not os.path.exists(cached)
    assert _leftovers(cache) == []

    # Once the server sends the whole file, the next call downloads it afresh.
    server.put("truncated/w.pth")
    server.requests.clear()
    assert _resolve_with_plain_server(server, url, cache) == cached


def test_killed_download_leftovers_are_removed_not_trusted(server, cache):
    url = server.put("w.pth")
    cached = cached_path_for_url(url, cache_dir=cache)
    stale = os.path.join(os.path.dirname(cached), ".w.pth.abc123.part")  # what a killed process leaves
    os.makedirs(stale)
    with open(os.path.join(stale, "w.pth.tmp"), "wb") as f:
        f.write(b"half")
    assert resolve_weights(url, cache_dir=cache) == cached
    with open(cached, "rb") as f:
        assert f.read() == PAYLOAD
    assert not os.path.exists(stale)


def test_url_without_file_name(cache):
    with pytest.raises(ValueError, match="file name"):
        resolve_weights("https://example.com/models/", cache_dir=cache)


def test_interrupted_download_leaves_nothing(server, cache, monkeypatch):
    url = server.put("w.pth")

    def interrupted(url, dir, *, filename, progress):  # Ctrl-C halfway through writing
        with open(os.path.join(dir, filename + ".tmp"), "wb") as f:
            f.write(PAYLOAD[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_iopath_download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resolve_weights(url, cache_dir=cache)
    assert not os.path.exists(cached_path_for_url(url, cache_dir=cache))
    assert _leftovers(cache) == []


_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("download", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)  # the file alone: no torch import, the child starts fast
module.resolve_weights(sys.argv[2], cache_dir=sys.argv[3])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_process_leaves_no_final_file(server, cache):
    url = f"{server.base}/stalled/w.pth"
    cached = cached_path_for_url(url, cache_dir=cache)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, download.__file__, url, cache])
    try:
        deadline = time.monotonic() + 10
        while not glob.glob(os.path.join(os.path.dirname(cached), ".w.pth.*.part", "w.pth.tmp")):
            assert child.poll() is None and time.monotonic() < deadline, "the child never started downloading"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    server.release.set()
    assert not os.path.exists(cached)  # only the temporary folder is left, never the final path

    server.put("stalled/w.pth")
    assert _resolve_with_plain_server(server, url, cache) == cached
    assert _leftovers(cache) == []  # the killed run's temporary folder was removed


def test_checkpointer_loads_model_weights_from_a_url_once(server, tmp_path, monkeypatch):
    source = nn.Linear(3, 2)
    served = tmp_path / "served" / "zoo" / "model_final.pth"
    served.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": source.state_dict()}, served)
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path / "env_cache"))
    monkeypatch.setattr(download, "DETECTRON2_URL_PREFIX", server.base + "/")
    for path in ("detectron2://zoo/model_final.pth", f"{server.base}/zoo/model_final.pth"):
        model = nn.Linear(3, 2)
        Checkpointer(model).load(path)
        assert torch.equal(model.weight, source.weight) and torch.equal(model.bias, source.bias)
    assert server.requests == ["/zoo/model_final.pth"]  # the second load read the cached file


def test_checkpoint_download_keeps_detectron2_style_import_path():
    """seg_research.checkpoint.download (the old home) re-exports the names of utils.download, the same objects."""
    from seg_research.checkpoint import download as old_path

    for name in old_path.__all__:
        assert getattr(old_path, name) is getattr(download, name)
