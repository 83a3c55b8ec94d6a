"""MNIST and Fashion-MNIST from their official IDX files (gzip-compressed).

Files are fetched and verified by :mod:`dgmbench.data.download` (local copy in
``data_dir``, cache under ``$DGMBENCH_HOME``, or a download from ``mirror`` / the official
URLs). MNIST is verified by the md5 of the *uncompressed* IDX content, so the official
archives and recompressed copies of the same bytes both pass; Fashion-MNIST by the md5 of
the official ``.gz`` files. Images come back as float32 (N, 1, 28, 28) in [0, 1]
(uint8 / 255), labels as int64 (N,).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Mapping

import numpy as np
import torch

from ..errors import DataError, UsageError
from .base import DataSplit
from .download import RemoteFile, fetch, with_overrides

MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# md5 of the uncompressed IDX content (the same for the official .gz and recompressed copies)
MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "gunzip:md5:6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "gunzip:md5:a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "gunzip:md5:2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "gunzip:md5:27ae3e4e09519cfbb04c329615203637",
}
# md5 of the official .gz files
FASHION_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
}

MNIST_CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_DATASETS = {
    "mnist": (MNIST_URLS, MNIST_CHECKSUMS, MNIST_CLASSES),
    "fashion-mnist": (FASHION_URLS, FASHION_CHECKSUMS, FASHION_CLASSES),
}

IDX_TYPES = {0x08: np.uint8}  # the only element type MNIST-style files use
_ARRAY_CACHE: dict[tuple[str, int, int], np.ndarray] = {}
_ARRAY_CACHE_MAX = 8


def remote_files(name: str, splits: tuple[str, ...] = ("train", "test")) -> list[RemoteFile]:
    """The official files of ``name`` ('mnist' or 'fashion-mnist') for ``splits``, images then labels."""
    if name not in _DATASETS:
        raise UsageError(f"idx.remote_files: '{name}' is not an IDX dataset (known: {', '.join(_DATASETS)})")
    urls, checksums, _ = _DATASETS[name]
    out = []
    for split in splits:
        for kind in ("images-idx3", "labels-idx1"):
            fn = f"{_SPLIT_PREFIX[split]}-{kind}-ubyte.gz"
            out.append(RemoteFile(name, fn, checksums[fn], tuple(u + fn for u in urls)))
    return out


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip-compressed or raw) of unsigned bytes into an array.

    Raises a one-line :class:`DataError` naming the file for corrupt gzip data, a bad magic
    number, or a data size that does not match the header's shape.
    """
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key in _ARRAY_CACHE:
        return _ARRAY_CACHE[key]
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes, too short to be an IDX file")
    magic = int.from_bytes(raw[:4], "big")
    dtype_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or dtype_code not in IDX_TYPES or not 1 <= ndim <= 4:
        raise DataError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x00000801 for labels or 0x00000803 "
            "for images); this is not an MNIST-style IDX file"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, the header needs {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = int(np.prod(shape))
    have = len(raw) - header
    if have != need:
        what = "truncated" if have < need else "longer than its header says"
        raise DataError(
            f"{path}: IDX file is {what}: the header says shape {'x'.join(map(str, shape))} "
            f"({need:,} bytes of data), found {have:,} bytes"
        )
    arr = np.frombuffer(raw, dtype=IDX_TYPES[dtype_code], offset=header).reshape(shape)
    if len(_ARRAY_CACHE) >= _ARRAY_CACHE_MAX:
        _ARRAY_CACHE.pop(next(iter(_ARRAY_CACHE)))
    _ARRAY_CACHE[key] = arr
    return arr


def prepare(name: str, *, data_dir=None, mirror=None, home=None, checksums: Mapping[str, str] | None = None,
            progress: bool | None = None) -> list[str]:
    """Fetch and verify every file of ``name`` ('mnist' / 'fashion-mnist'); return their paths.

    Keywords: ``data_dir``, ``mirror``, ``home``, ``progress`` (see :func:`download.fetch`)
    and ``checksums`` (``{filename: "md5:..."}`` overrides of the official values).
    """
    files = with_overrides(remote_files(name), checksums)
    return [str(fetch(f, data_dir=data_dir, mirror=mirror, home=home, progress=progress)) for f in files]


def load_idx_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
    home: str | os.PathLike | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> DataSplit:
    """Load one split of an IDX dataset as float32 (N, 1, 28, 28) in [0, 1] with labels.

    ``data_dir`` / ``mirror`` / ``home`` / ``progress``: see :func:`dgmbench.data.download.fetch`;
    ``checksums``: ``{filename: "md5:..."}`` overrides of the official values.
    """
    if split not in _SPLIT_PREFIX:
        raise UsageError(f"{name} has splits 'train' and 'test', not '{split}'")
    kw = {"data_dir": data_dir, "mirror": mirror, "home": home, "progress": progress}
    img_file, lab_file = with_overrides(remote_files(name, (split,)), checksums)
    img_path, lab_path = fetch(img_file, **kw), fetch(lab_file, **kw)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected a 3-D IDX image array, got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{lab_path}: expected a 1-D IDX label array, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    classes = _DATASETS[name][2]
    if labels.size and int(labels.max()) >= len(classes):
        raise DataError(f"{lab_path}: label {int(labels.max())} is out of range for {len(classes)} classes")
    data = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    return DataSplit(
        name=name,
        split=split,
        data=data,
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=list(classes),
        meta={"files": [str(img_path), str(lab_path)], "levels": 256},
    )


def load_mnist(split: str = "train", *, data_dir=None, mirror=None, home=None, checksums=None, progress=None) -> DataSplit:
    """MNIST (60,000 train / 10,000 test), float32 (N, 1, 28, 28) in [0, 1]; see :func:`load_idx_dataset`."""
    return load_idx_dataset("mnist", split, data_dir=data_dir, mirror=mirror, home=home, checksums=checksums,
                            progress=progress)


def load_fashion_mnist(split: str = "train", *, data_dir=None, mirror=None, home=None, checksums=None,
                       progress=None) -> DataSplit:
    """Fashion-MNIST (60,000 train / 10,000 test), float32 (N, 1, 28, 28) in [0, 1]; see :func:`load_idx_dataset`."""
    return load_idx_dataset("fashion-mnist", split, data_dir=data_dir, mirror=mirror, home=home,
                            checksums=checksums, progress=progress)
