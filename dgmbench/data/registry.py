"""Dataset registry: names -> loaders, plus ``folder:``/``npz:``/``pt:`` custom sources.

``get_dataset(name, split)`` always returns a :class:`DataSplit` with float data in [0, 1]
(images) or float (N, 2) points (toys).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError, suggest
from .base import DataSplit

CUSTOM_PREFIXES = ("folder:", "npz:", "pt:")


@dataclass(frozen=True)
class DatasetInfo:
    """What ``dgmbench datasets info`` prints about a dataset."""

    name: str
    kind: str  # "image" or "points"
    shape: tuple[int, ...]
    num_classes: int | None
    splits: tuple[str, ...]
    source: str  # "embedded", "download", "generated"
    description: str
    loader: str  # "module:function", imported lazily
    downloads: bool = False


def _toy(name: str, desc: str) -> DatasetInfo:
    return DatasetInfo(name, "points", (2,), None, ("train", "val", "test"), "generated", desc, "dgmbench.data.toys:load_toy")


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", "image", (1, 8, 8), 10, ("train", "test"), "embedded",
        "scikit-learn's 8x8 handwritten digits (1,797 images; fixed stratified 80/20 split, seed 0)",
        "dgmbench.data.embedded:load_digits",
    ),
    "ring8": _toy("ring8", "8 Gaussians on the unit circle, std 0.01 (mode-coverage benchmark)"),
    "grid25": _toy("grid25", "25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (mode-coverage benchmark)"),
    "moons": _toy("moons", "two interleaving half circles (scikit-learn make_moons, noise 0.05)"),
    "checkerboard": _toy("checkerboard", "uniform on the black squares of a 4x4 checkerboard"),
    "swissroll": _toy("swissroll", "2-D swiss roll (scikit-learn make_swiss_roll, noise 0.5, scaled 1/5)"),
    "pinwheel": _toy("pinwheel", "5-armed pinwheel"),
    "mnist": DatasetInfo(
        "mnist", "image", (1, 28, 28), 10, ("train", "test"), "download",
        "MNIST handwritten digits, 60,000 train / 10,000 test, official IDX files",
        "dgmbench.data.idx:load_mnist", True,
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "image", (1, 28, 28), 10, ("train", "test"), "download",
        "Fashion-MNIST, 60,000 train / 10,000 test, official IDX files",
        "dgmbench.data.idx:load_fashion_mnist", True,
    ),
    "cifar10": DatasetInfo(
        "cifar10", "image", (3, 32, 32), 10, ("train", "test"), "download",
        "CIFAR-10, 50,000 train / 10,000 test, official cifar-10-batches-py pickles",
        "dgmbench.data.cifar:load_cifar10", True,
    ),
}


def _import(spec: str) -> Callable:
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def list_datasets() -> list[DatasetInfo]:
    return list(DATASETS.values())


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UsageError(suggest(name, list(DATASETS) + [p + "PATH" for p in CUSTOM_PREFIXES], "dataset"))
    return DATASETS[name]


# options of downloaded datasets (see dgmbench.data.download); other datasets ignore them, so
# callers can pass e.g. ``data_dir=args.data_dir`` whatever the dataset
DOWNLOAD_OPTIONS = ("data_dir", "mirror", "home", "checksums", "progress")


def _check_options(loader: Callable, name: str, kwargs: dict) -> None:
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    bad = sorted(k for k in kwargs if k not in params)
    if bad:
        takes = [p for p in params if p not in ("name", "split", "path")]
        raise UsageError(
            f"dataset '{name}' does not take option(s) {', '.join(bad)}"
            + (f"; it takes {', '.join(takes)}" if takes else "; it takes no options")
        )


def get_dataset(name: str, split: str = "train", **kwargs) -> DataSplit:
    """Load ``name`` (registered name or ``folder:PATH`` / ``npz:PATH`` / ``pt:PATH``).

    Keyword arguments go to the loader (``seed``/``n``/``std`` for toys; ``data_dir``,
    ``mirror``, ``home``, ``checksums``, ``progress`` for downloaded datasets, ignored by
    the others; ``resize``/``alpha``/``channels`` for folders).
    """
    for prefix in CUSTOM_PREFIXES:
        if name.startswith(prefix):
            loader = _import("dgmbench.data.files:load_" + prefix[:-1])
            kwargs = {k: v for k, v in kwargs.items() if k not in DOWNLOAD_OPTIONS}
            _check_options(loader, name, kwargs)
            return loader(name[len(prefix):], split=split, **kwargs)
    info = dataset_info(name)
    if split not in info.splits:
        raise UsageError(suggest(split, info.splits, f"split of {name}"))
    loader = _import(info.loader)
    if not info.downloads:
        kwargs = {k: v for k, v in kwargs.items() if k not in DOWNLOAD_OPTIONS}
    _check_options(loader, name, kwargs)
    if info.loader.endswith(":load_toy"):
        return loader(name, split, **kwargs)
    return loader(split, **kwargs)


def prepare_dataset(name: str, **kwargs) -> list[str]:
    """Download and verify a dataset's files (no-op for embedded ones); return the file paths."""
    info = dataset_info(name)
    if not info.downloads:
        return []
    mod = importlib.import_module(info.loader.split(":")[0])
    _check_options(mod.prepare, name, kwargs)
    return mod.prepare(name, **kwargs)
