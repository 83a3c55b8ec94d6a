"""CIFAR-10 from the official ``cifar-10-python.tar.gz`` and its ``cifar-10-batches-py`` pickles.

Sources, in order:

1. an extracted ``cifar-10-batches-py`` folder in ``data_dir`` (or ``$DGMBENCH_DATA_DIR``),
   directly or under ``cifar10/``; each batch file read is verified by its official md5;
2. the cache ``$DGMBENCH_HOME/datasets/cifar10/cifar-10-batches-py``, extracted by dgmbench
   from a verified archive (marked by a ``.verified`` file; a folder without the mark is
   verified file by file);
3. the archive ``cifar-10-python.tar.gz`` (a local copy in ``data_dir``, the cache, or a
   download; see :mod:`dgmbench.data.download`), verified by md5 and then extracted into
   the cache through a temporary folder and one rename.

Pickles are read with an unpickler that only admits the NumPy array constructors the
official files use, so a tampered file cannot run code. Images come back as float32
(N, 3, 32, 32) in [0, 1] (uint8 / 255; CIFAR stores 1024 red, 1024 green, then 1024 blue
values per image, row-major), labels int64 0..9 (airplane ... truck). Train is
``data_batch_1`` .. ``data_batch_5`` in order (50,000), test is ``test_batch`` (10,000).
Checksums can be overridden with ``checksums={"cifar-10-python.tar.gz" | "data_batch_1" | ...:
"md5:..."}`` or ``$DGMBENCH_CHECKSUMS`` (keys ``"cifar10/<file>"``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, UsageError
from .base import DataSplit
from .download import RemoteFile, cache_dir, checksum_overrides, fetch, resolve_data_dir, verify_file

NAME = "cifar10"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
VERIFIED_MARK = ".verified"
CHECKSUMS = {
    ARCHIVE: "md5:c58f30108f718f92721af3b95e74349a",
    "data_batch_1": "md5:c99cafc152244af753f735de768cd75f",
    "data_batch_2": "md5:d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "md5:54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "md5:634d18415352ddfa80567beed471001a",
    "data_batch_5": "md5:482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "md5:40351d587109b95175f43aff81a1287e",
}
SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
EXTRACTED = SPLIT_FILES["train"] + SPLIT_FILES["test"] + ("batches.meta",)
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BATCH_CACHE: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a NumPy array constructor)")
        return super().find_class(module, name)


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``cifar-10-batches-py`` pickle: (uint8 (N, 3072), int64 (N,)).

    Any problem (not a pickle, truncated, missing keys, wrong shapes) is a one-line
    :class:`DataError` naming the file.
    """
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key in _BATCH_CACHE:
        return _BATCH_CACHE[key]
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, OSError) as e:
        raise DataError(f"{path}: not a readable CIFAR batch pickle ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise DataError(f"{path}: expected a dict with keys b'data' and b'labels', got {keys}")
    data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' should be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but b'labels' has shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels outside 0..9 (found {labels.min()}..{labels.max()})")
    out = (data, labels.astype(np.int64))
    if len(_BATCH_CACHE) >= 8:
        _BATCH_CACHE.pop(next(iter(_BATCH_CACHE)))
    _BATCH_CACHE[key] = out
    return out


def _archive(checksums: Mapping[str, str]) -> RemoteFile:
    return RemoteFile(NAME, ARCHIVE, checksums.get(ARCHIVE, CHECKSUMS[ARCHIVE]), (ARCHIVE_URL,))


def _verify_folder(folder: Path, names: tuple[str, ...], checksums: Mapping[str, str]) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; it should be the complete extracted {ARCHIVE}")
    if (folder / VERIFIED_MARK).is_file():
        return
    for n in names:
        verify_file(folder / n, checksums.get(n, CHECKSUMS[n]))


def extract_archive(archive: str | os.PathLike, dest_parent: str | os.PathLike) -> Path:
    """Extract the batch files of ``archive`` into ``dest_parent/cifar-10-batches-py`` atomically.

    Only the known regular files under ``cifar-10-batches-py/`` are written (never paths
    from the archive itself); the folder appears only once complete, marked as verified.
    """
    dest_parent = Path(dest_parent)
    dest_parent.mkdir(parents=True, exist_ok=True)
    final = dest_parent / FOLDER
    tmp = Path(tempfile.mkdtemp(dir=dest_parent, prefix=f".{FOLDER}.", suffix=".part"))
    try:
        found = set()
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    parts = member.name.strip("/").split("/")
                    if member.isfile() and len(parts) == 2 and parts[0] == FOLDER and parts[1] in EXTRACTED:
                        src = tar.extractfile(member)
                        with open(tmp / parts[1], "wb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                        found.add(parts[1])
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DataError(f"{archive}: corrupt or truncated tar.gz archive ({type(e).__name__}: {e})") from e
        missing = [n for n in SPLIT_FILES["train"] + SPLIT_FILES["test"] if n not in found]
        if missing:
            raise DataError(f"{archive}: the archive has no {', '.join(FOLDER + '/' + n for n in missing)}")
        (tmp / VERIFIED_MARK).write_text(f"extracted from a verified {ARCHIVE}\n")
        if final.exists():  # a concurrent run finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def batches_folder(
    names: tuple[str, ...],
    *,
    data_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
    home: str | os.PathLike | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> Path:
    """A verified ``cifar-10-batches-py`` folder holding ``names`` (extracting or downloading as needed)."""
    table = checksum_overrides(NAME, checksums)
    local = resolve_data_dir(data_dir)
    if local is not None:
        for cand in (local / FOLDER, local / NAME / FOLDER):
            if cand.is_dir():
                _verify_folder(cand, names, table)
                return cand
    cached = cache_dir(NAME, home) / FOLDER
    if cached.is_dir():
        _verify_folder(cached, names, table)
        return cached
    archive = fetch(_archive(table), data_dir=data_dir, mirror=mirror, home=home, progress=progress)
    return extract_archive(archive, cache_dir(NAME, home))


def prepare(name: str = NAME, *, data_dir=None, mirror=None, home=None, checksums=None, progress=None) -> list[str]:
    """Fetch, verify and extract CIFAR-10; return the batch files' paths."""
    names = SPLIT_FILES["train"] + SPLIT_FILES["test"]
    folder = batches_folder(names, data_dir=data_dir, mirror=mirror, home=home, checksums=checksums, progress=progress)
    return [str(folder / n) for n in names]


def load_cifar10(split: str = "train", *, data_dir=None, mirror=None, home=None, checksums=None, progress=None) -> DataSplit:
    """CIFAR-10 ``split`` as float32 (N, 3, 32, 32) in [0, 1] with labels 0..9 (airplane ... truck).

    Keywords: ``data_dir``, ``mirror``, ``home``, ``checksums``, ``progress`` (see :func:`batches_folder`).
    """
    if split not in SPLIT_FILES:
        raise UsageError(f"cifar10 has splits 'train' and 'test', not '{split}'")
    names = SPLIT_FILES[split]
    folder = batches_folder(names, data_dir=data_dir, mirror=mirror, home=home, checksums=checksums, progress=progress)
    parts = [read_batch(folder / n) for n in names]
    data = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    images = torch.from_numpy(np.ascontiguousarray(data)).view(-1, 3, 32, 32).float().div_(255.0)
    return DataSplit(
        name=NAME,
        split=split,
        data=images,
        labels=torch.from_numpy(labels.copy()),
        class_names=list(CLASSES),
        meta={"folder": str(folder), "files": list(names), "levels": 256},
    )
