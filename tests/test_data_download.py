"""Download-and-verify on real MNIST files served over HTTP from ../shared/offline.

Covers: the real download path (content and per-class counts), checksum failure (nothing
left in the cache), an interrupted transfer (clear error, no half file, a rerun succeeds),
offline (the error names the URL, checksum and where to put the file), local copies via
data_dir / $DGMBENCH_DATA_DIR, $DGMBENCH_MIRROR, checksum overrides and the default home.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port, start_http_server

from dgmbench.data import get_dataset
from dgmbench.data.download import RemoteFile, cache_dir, compute_checksum, dgmbench_home, fetch
from dgmbench.data.idx import MNIST_CHECKSUMS, load_mnist, remote_files
from dgmbench.errors import ChecksumError, DataError, UsageError

# per-class counts of the official MNIST test set (LeCun et al.; also torchvision's)
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K_LABELS = "t10k-labels-idx1-ubyte.gz"
T10K_IMAGES = "t10k-images-idx3-ubyte.gz"


def _labels_file() -> RemoteFile:
    return next(f for f in remote_files("mnist", ("test",)) if f.filename == T10K_LABELS)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_mnist_downloaded_through_http_server(mnist_home, offline_dir):
    train = get_dataset("mnist", "train")
    assert train.data.shape == (60000, 1, 28, 28) and train.data.dtype == torch.float32
    assert int(train.labels[0]) == 5
    test = get_dataset("mnist", "test")
    assert len(test) == 10000
    assert torch.bincount(test.labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert test.class_names[5] == "five"
    # pixels: the IDX bytes after the 16-byte header, decoded here independently, / 255
    raw = np.frombuffer(gzip.open(offline_dir / "mnist" / T10K_IMAGES).read()[16:], dtype=np.uint8)
    assert torch.equal((test.data * 255).round().to(torch.uint8).flatten(), torch.from_numpy(raw.copy()))
    assert float(test.data.min()) == 0.0 and float(test.data.max()) == 1.0
    folder = cache_dir("mnist", mnist_home)
    assert _leftovers(folder) == sorted(MNIST_CHECKSUMS)  # four verified files, no .part leftovers


def test_recompressed_archive_passes_content_checksum(offline_dir, serve_folder, tmp_path):
    """MNIST is verified on the uncompressed content: a different gzip wrapper still passes."""
    served = tmp_path / "served" / "mnist"
    served.mkdir(parents=True)
    content = gzip.open(offline_dir / "mnist" / T10K_LABELS).read()
    (served / T10K_LABELS).write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    orig = (offline_dir / "mnist" / T10K_LABELS).read_bytes()
    assert (served / T10K_LABELS).read_bytes() != orig  # a different archive ...
    path = fetch(_labels_file(), mirror=serve_folder(tmp_path / "served"), home=tmp_path / "home", progress=False)
    assert gzip.open(path).read() == content  # ... with the same content, accepted


@pytest.mark.parametrize("corruption", ["changed_label", "truncated_gzip"])
def test_checksum_failure_leaves_nothing_in_cache(offline_dir, serve_folder, tmp_path, corruption):
    served = tmp_path / "served" / "mnist"
    served.mkdir(parents=True)
    good = (offline_dir / "mnist" / T10K_LABELS).read_bytes()
    if corruption == "changed_label":
        content = bytearray(gzip.decompress(good))
        content[8] = (content[8] + 1) % 10  # first test label 7 -> 8: still a valid gzip and IDX file
        bad = gzip.compress(bytes(content))
    else:
        bad = good[: len(good) // 2]
    (served / T10K_LABELS).write_bytes(bad)
    home = tmp_path / "home"
    with pytest.raises(ChecksumError) as exc:
        fetch(_labels_file(), mirror=serve_folder(tmp_path / "served"), home=home, progress=False)
    msg = str(exc.value)
    assert "27ae3e4e09519cfbb04c329615203637" in msg and "\n" not in msg
    assert _leftovers(cache_dir("mnist", home)) == []


class _InterruptingHandler(http.server.BaseHTTPRequestHandler):
    """Announces the full length of a real file, sends half of it, then drops the connection."""

    payload = b""
    send_length = True

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        if self.send_length:
            self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("send_length", [True, False])
def test_interrupted_download_then_rerun_succeeds(offline_dir, offline_server, tmp_path, send_length):
    payload = (offline_dir / "mnist" / T10K_IMAGES).read_bytes()
    handler = type("H", (_InterruptingHandler,), {"payload": payload, "send_length": send_length})
    server, url = start_http_server(handler)
    home = tmp_path / "home"
    images = next(f for f in remote_files("mnist", ("test",)) if f.filename == T10K_IMAGES)
    try:
        with pytest.raises(DataError) as exc:
            fetch(images, mirror=url, home=home, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    msg = str(exc.value)
    if send_length:  # the short transfer itself is detected
        assert "interrupted" in msg and f"{len(payload) // 2:,} of {len(payload):,} bytes" in msg
        assert "rerun" in msg
    else:  # without a length, the checksum catches the half file
        assert isinstance(exc.value, ChecksumError)
    assert _leftovers(cache_dir("mnist", home)) == []
    path = fetch(images, mirror=offline_server, home=home, progress=False)
    assert path.read_bytes() == payload
    assert _leftovers(cache_dir("mnist", home)) == [T10K_IMAGES]


def test_offline_error_names_url_checksum_and_manual_placement(tmp_path):
    mirror = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    home = tmp_path / "home"
    with pytest.raises(DataError) as exc:
        load_mnist("test", mirror=mirror, home=home, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and not isinstance(exc.value, ChecksumError)
    assert f"{mirror}/mnist/{T10K_IMAGES}" in msg
    assert "md5 2646ac647ad5339dbf082846283269ea of the uncompressed content" in msg
    assert str(cache_dir("mnist", home) / T10K_IMAGES) in msg and "--data-dir" in msg
    assert _leftovers(cache_dir("mnist", home)) == []


def test_local_copy_via_data_dir_and_env(offline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DGMBENCH_MIRROR", raising=False)
    ds = load_mnist("test", data_dir=offline_dir)  # found as <data_dir>/mnist/<file>
    assert torch.bincount(ds.labels).tolist() == MNIST_TEST_COUNTS
    monkeypatch.setenv("DGMBENCH_DATA_DIR", str(offline_dir / "mnist"))  # found as <data_dir>/<file>
    ds = load_mnist("test")
    assert ds.meta["files"][0] == str(offline_dir / "mnist" / T10K_IMAGES)
    assert not (tmp_path / "home").exists()  # used in place: nothing copied or downloaded
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist("test", data_dir=tmp_path / "missing")


def test_mirror_from_environment_and_cache_reuse(offline_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DGMBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("DGMBENCH_MIRROR", offline_server + "/")
    path = fetch(_labels_file(), progress=False)
    assert path == tmp_path / "home" / "datasets" / "mnist" / T10K_LABELS
    monkeypatch.setenv("DGMBENCH_MIRROR", f"http://127.0.0.1:{free_port()}")  # dead: the cache must serve
    assert fetch(_labels_file(), progress=False) == path


def test_corrupt_cached_file_is_reported(offline_server, tmp_path):
    home = tmp_path / "home"
    path = fetch(_labels_file(), mirror=offline_server, home=home, progress=False)
    path.write_bytes(gzip.compress(b"not mnist"))
    with pytest.raises(ChecksumError, match="delete .* and rerun"):
        fetch(_labels_file(), mirror=offline_server, home=home, progress=False)


def test_checksum_overrides_keyword_env_and_bad_spec(offline_dir, serve_folder, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    made_up = gzip.compress(b"made-up file")
    (served / "blob.gz").write_bytes(made_up)
    url = serve_folder(served)
    import hashlib

    f = RemoteFile("toyset", "blob.gz", "md5:" + hashlib.md5(made_up).hexdigest(), ())
    assert fetch(f, mirror=url, home=tmp_path / "h1", progress=False).read_bytes() == made_up
    # the same file declared by its uncompressed content's sha256, from an env table
    table = tmp_path / "sums.json"
    table.write_text(json.dumps({"toyset/blob.gz": "gunzip:sha256:" + hashlib.sha256(b"made-up file").hexdigest()}))
    monkeypatch.setenv("DGMBENCH_CHECKSUMS", str(table))
    from dgmbench.data.download import with_overrides

    (g,) = with_overrides([RemoteFile("toyset", "blob.gz", "md5:" + "0" * 32, ())], None)
    assert g.checksum.startswith("gunzip:sha256:")
    assert fetch(g, mirror=url, home=tmp_path / "h2", progress=False).is_file()
    assert compute_checksum(served / "blob.gz", g.checksum) == g.checksum
    with pytest.raises(UsageError, match="bad checksum"):
        with_overrides([f], {"blob.gz": "crc32:1234"})


def test_default_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DGMBENCH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dgmbench_home() == tmp_path / ".cache" / "dgmbench"
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "elsewhere"))
    assert cache_dir("mnist") == tmp_path / "elsewhere" / "datasets" / "mnist"
    assert os.fspath(dgmbench_home()) == str(tmp_path / "elsewhere")


def test_ctrl_c_during_download_leaves_no_partial_file(offline_server, tmp_path, monkeypatch):
    from dgmbench.data import download

    real = download._download_to

    def write_then_interrupt(url, dest, **kw):
        dest.write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_download_to", write_then_interrupt)
    home = tmp_path / "home"
    with pytest.raises(KeyboardInterrupt):
        fetch(_labels_file(), mirror=offline_server, home=home, progress=False)
    assert _leftovers(cache_dir("mnist", home)) == []
    monkeypatch.setattr(download, "_download_to", real)
    assert fetch(_labels_file(), mirror=offline_server, home=home, progress=False).is_file()
