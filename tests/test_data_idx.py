"""IDX parsing errors and Fashion-MNIST (made-up files served over HTTP with overridden checksums)."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from dgmbench.data import get_dataset, prepare_dataset
from dgmbench.data.idx import FASHION_CHECKSUMS, read_idx
from dgmbench.errors import ChecksumError, DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding written from the format's definition: 0, 0, type 0x08, ndim, big-endian dims, data."""
    return bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.astype(np.uint8).tobytes()


@pytest.fixture
def fake_fashion(tmp_path):
    """Small Fashion-MNIST-format files (3 train, 2 test images) and their md5s."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "served" / "fashion-mnist"
    folder.mkdir(parents=True)
    arrays, sums = {}, {}
    for prefix, n in (("train", 3), ("t10k", 2)):
        arrays[prefix] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))
        for kind, arr in (("images-idx3", arrays[prefix][0]), ("labels-idx1", arrays[prefix][1])):
            name = f"{prefix}-{kind}-ubyte.gz"
            blob = gzip.compress(idx_bytes(arr))
            (folder / name).write_bytes(blob)
            sums[name] = "md5:" + hashlib.md5(blob).hexdigest()
    return tmp_path / "served", arrays, sums


def test_fashion_mnist_with_overridden_checksums(fake_fashion, serve_folder, tmp_path):
    served, arrays, sums = fake_fashion
    url = serve_folder(served)
    home = tmp_path / "home"
    paths = prepare_dataset("fashion-mnist", mirror=url, home=home, checksums=sums, progress=False)
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == sorted(sums)
    ds = get_dataset("fashion-mnist", "train", mirror=url, home=home, checksums=sums)
    assert ds.data.shape == (3, 1, 28, 28)
    assert torch.equal((ds.data[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(arrays["train"][0]))
    assert ds.labels.tolist() == arrays["train"][1].tolist()
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert len(get_dataset("fashion-mnist", "test", data_dir=served, checksums=sums)) == 2


def test_fashion_mnist_defaults_are_the_official_checksums(fake_fashion, serve_folder, tmp_path):
    served, _, _ = fake_fashion
    assert FASHION_CHECKSUMS["train-images-idx3-ubyte.gz"] == "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    with pytest.raises(ChecksumError, match="8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        get_dataset("fashion-mnist", "train", mirror=serve_folder(served), home=tmp_path / "home")
    assert not any((tmp_path / "home" / "datasets" / "fashion-mnist").iterdir())


def test_read_idx_real_and_raw(offline_dir, tmp_path):
    labels = read_idx(offline_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels[:3].tolist() == [7, 2, 1]
    raw = tmp_path / "raw-idx"
    raw.write_bytes(idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)))
    assert read_idx(raw).tolist() == np.arange(24).reshape(2, 3, 4).tolist()


@pytest.mark.parametrize(
    "blob, message",
    [
        (idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100], "truncated: the header says shape 10x28x28 (7,840 bytes of data), found 7,740"),
        (idx_bytes(np.zeros(5, np.uint8)) + b"xx", "longer than its header says"),
        (b"\x00\x00\x0d\x03" + b"\x00" * 40, "bad IDX magic number 0x00000d03"),
        (b"PK\x03\x04" + b"\x00" * 40, "bad IDX magic number 0x504b0304"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    ],
)
def test_corrupt_idx_is_one_line_error_naming_the_file(tmp_path, blob, message):
    path = tmp_path / "bad-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(blob))
    with pytest.raises(DataError) as exc:
        read_idx(path)
    assert str(path) in str(exc.value) and message in str(exc.value) and "\n" not in str(exc.value)


def test_corrupt_gzip_is_reported(offline_dir, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((offline_dir / "mnist" / path.name).read_bytes()[:2000])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_mismatched_images_and_labels(fake_fashion, tmp_path):
    served, _, sums = fake_fashion
    folder = served / "fashion-mnist"
    blob = gzip.compress(idx_bytes(np.zeros(4, np.uint8)))  # 4 labels for 3 images
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(blob)
    sums = {**sums, "train-labels-idx1-ubyte.gz": "md5:" + hashlib.md5(blob).hexdigest()}
    with pytest.raises(DataError, match="holds 3 images but .* holds 4 labels"):
        get_dataset("fashion-mnist", "train", data_dir=served, checksums=sums)
