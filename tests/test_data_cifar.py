"""CIFAR-10 through the real loader, on the real subset from ../shared/offline.

The subset's arrays are written here in the official ``cifar-10-batches-py`` format
(pickled dicts with b'data' and b'labels'; the 4,000 training images split over
data_batch_1..5 in order) and as a ``cifar-10-python.tar.gz`` of that folder. Their
checksums are not the official ones, so the tests pass them as overrides.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port

from dgmbench.data import get_dataset, prepare_dataset
from dgmbench.data.cifar import CHECKSUMS, read_batch
from dgmbench.errors import ChecksumError, DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cifar_subset(offline_dir, tmp_path_factory):
    """(root holding cifar-10-batches-py, tar.gz path, checksums, train npz, test npz)."""
    train = dict(np.load(offline_dir / "cifar10-subset" / "cifar10_train_first4000.npz"))
    test = dict(np.load(offline_dir / "cifar10-subset" / "cifar10_test_first1000.npz"))
    root = tmp_path_factory.mktemp("cifar_local")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    per = len(train["labels"]) // 5
    batches = {f"data_batch_{i + 1}": slice(i * per, (i + 1) * per) for i in range(5)}
    for name, sl in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": train["data"][sl], b"labels": train["labels"][sl].tolist()}, f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"test", b"data": test["data"], b"labels": test["labels"].tolist()}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}, f, protocol=2)
    sums = {n: md5(folder / n) for n in (*batches, "test_batch")}
    served = tmp_path_factory.mktemp("cifar_served") / "cifar10"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    sums["cifar-10-python.tar.gz"] = md5(archive)
    return root, archive, sums, train, test


def _check_test_split(ds, test):
    assert ds.data.shape == (1000, 3, 32, 32) and ds.data.dtype == torch.float32
    assert int(ds.labels[0]) == 3 and ds.class_names[int(ds.labels[0])] == "cat"
    assert ds.class_names == CLASSES
    assert ds.labels.tolist() == test["labels"].tolist()
    # CIFAR layout: 1024 red, 1024 green, 1024 blue values per image, each row-major 32x32
    x = test["data"][7]
    for c in range(3):
        for (r, col) in ((0, 0), (5, 17), (31, 31)):
            assert round(float(ds.data[7, c, r, col]) * 255) == x[c * 1024 + r * 32 + col]


def test_extracted_folder_in_data_dir(cifar_subset, tmp_path):
    root, _, sums, train, test = cifar_subset
    _check_test_split(get_dataset("cifar10", "test", data_dir=root, checksums=sums, home=tmp_path), test)
    tr = get_dataset("cifar10", "train", data_dir=root, checksums=sums, home=tmp_path)
    assert len(tr) == 4000 and tr.labels.tolist() == train["labels"].tolist()  # batches 1..5 in order
    assert torch.equal((tr.data * 255).round().to(torch.uint8).reshape(4000, -1), torch.from_numpy(train["data"]))
    assert not any(tmp_path.iterdir())  # used in place


def test_extracted_folder_is_verified_with_official_checksums(cifar_subset, tmp_path):
    root, _, _, _, _ = cifar_subset
    assert CHECKSUMS["test_batch"] == "md5:40351d587109b95175f43aff81a1287e"
    with pytest.raises(ChecksumError, match="40351d587109b95175f43aff81a1287e"):
        get_dataset("cifar10", "test", data_dir=root, home=tmp_path)


def test_tar_gz_downloaded_verified_and_extracted(cifar_subset, serve_folder, tmp_path):
    _, archive, sums, _, test = cifar_subset
    url = serve_folder(archive.parent.parent)
    home = tmp_path / "home"
    with pytest.raises(ChecksumError, match="c58f30108f718f92721af3b95e74349a"):  # the official md5 by default
        get_dataset("cifar10", "test", mirror=url, home=home)
    cache = home / "datasets" / "cifar10"
    assert sorted(os.listdir(cache)) == []
    paths = prepare_dataset("cifar10", mirror=url, home=home, checksums=sums, progress=False)
    assert [Path(p).name for p in paths] == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    assert sorted(os.listdir(cache)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no .part leftovers
    # now served from the cache: the mirror is no longer needed
    _check_test_split(get_dataset("cifar10", "test", mirror=f"http://127.0.0.1:{free_port()}", home=home), test)


def test_tar_gz_as_local_copy(cifar_subset, tmp_path):
    _, archive, sums, _, test = cifar_subset
    ds = get_dataset("cifar10", "test", data_dir=archive.parent.parent, checksums=sums, home=tmp_path)
    _check_test_split(ds, test)
    assert ds.meta["folder"] == str(tmp_path / "datasets" / "cifar10" / "cifar-10-batches-py")


def test_corrupt_archive_leaves_no_folder(cifar_subset, tmp_path):
    _, archive, _, _, _ = cifar_subset
    local = tmp_path / "local"
    local.mkdir()
    bad = local / "cifar-10-python.tar.gz"
    bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        get_dataset("cifar10", "test", data_dir=local, checksums={bad.name: md5(bad)}, home=tmp_path / "home")
    assert str(bad) in str(exc.value) and "corrupt or truncated tar.gz" in str(exc.value)
    assert os.listdir(tmp_path / "home" / "datasets" / "cifar10") == []


def _batch_file(tmp_path, payload: bytes) -> Path:
    p = tmp_path / "test_batch"
    p.write_bytes(payload)
    return p


class _Evil:
    def __reduce__(self):
        return (os.getpid, ())


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"garbage", "not a readable CIFAR batch pickle"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)[:-40], "not a readable CIFAR batch pickle"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2), "expected a dict with keys b'data' and b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2), "should be uint8 (N, 3072)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2), "2 images but b'labels'"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}, protocol=2), "labels outside 0..9"),
        (pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2), "refusing to load"),
    ],
)
def test_corrupt_batch_is_one_line_error(tmp_path, payload, message):
    path = _batch_file(tmp_path, payload)
    with pytest.raises(DataError) as exc:
        read_batch(path)
    assert str(path) in str(exc.value) and message in str(exc.value) and "\n" not in str(exc.value)


def test_numpy_arrays_pickled_at_any_protocol_are_read(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for proto in (2, 4, 5):
        buf = io.BytesIO()
        pickle.dump({b"data": data, b"labels": [3, 9]}, buf, protocol=proto)
        d, labels = read_batch(_batch_file(tmp_path, buf.getvalue()))
        assert np.array_equal(d, data) and labels.tolist() == [3, 9]
