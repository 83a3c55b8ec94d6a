"""Reference sets: which real items a score compares with, their cache names, and the
validation split KDE chooses its bandwidth on.

Policies (each stated in the Record):

- The reference is ``ref`` when given (a registered dataset name, a ``folder:``/``npz:``/
  ``pt:`` source, a DataSplit or a tensor), else the scored split itself.
- It holds ``n_ref`` items: ``min(n, len(reference))`` unless given; a larger set is cut to
  a fixed seed-0 random subset (independent of the run's seed, hence cacheable).
- Cached features are named by (dataset, split) for registered datasets and by a content
  hash for anything else, plus ``subset-perm-seed0`` when subset.
- KDE's bandwidth is chosen on a seed-0 subset of at most :data:`KDE_VAL_MAX` items of the
  dataset's ``val`` split, else of ``train``, else of a seeded half of the scored split (then
  only the other half is scored).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from .data.base import DataSplit
from .data.registry import DATASETS, get_dataset
from .errors import DataError, UsageError
from .features.cache import CachedReference, cached_reference_features
from .features.registry import feature_pass
from .metrics.kde import kde_val_test_split

KDE_VAL_MAX = 1000
CUSTOM_PREFIXES = ("folder:", "npz:", "pt:")


def content_id(t: torch.Tensor) -> str:
    """sha256 (16 hex) of a tensor's shape, dtype and bytes: names custom reference sets in the cache."""
    h = hashlib.sha256()
    t = t.detach().cpu().contiguous()
    h.update(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def is_registered(name: str) -> bool:
    return name in DATASETS


def load_split(name: str, split: str, data_dir: str | None = None) -> DataSplit:
    """A dataset split by name; ``data_dir`` applies to datasets that download their files."""
    info = DATASETS.get(name)
    use_dir = data_dir and not name.startswith(CUSTOM_PREFIXES) and info is not None and info.downloads
    return get_dataset(name, split, **({"data_dir": data_dir} if use_dir else {}))


class ReferenceSet:
    """The reference a scored split is compared with (see the module docstring)."""

    def __init__(self, data: DataSplit, *, ref: str | DataSplit | torch.Tensor | None = None, n_ref: int | None = None,
                 data_dir: str | None = None, batch_size: int = 128, device: torch.device | None = None,
                 progress: bool = False, cache: bool | None = None):
        self.data, self._ref_arg, self._n_ref_arg = data, ref, n_ref
        self.data_dir, self.batch_size, self.device = data_dir, batch_size, device
        self.progress, self.cache = progress, cache
        self._full: DataSplit | None = None
        self._split: DataSplit | None = None
        self.subset: str | None = None
        self.cache_info: dict[str, dict] = {}

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.data.data_shape)

    def full(self) -> DataSplit:
        """The whole reference set (``ref`` or the scored split), before any subset."""
        if self._full is not None:
            return self._full
        ref = self._ref_arg
        if ref is None:
            split = self.data
        elif isinstance(ref, DataSplit):
            split = ref
        elif isinstance(ref, torch.Tensor):
            split = DataSplit("tensor", self.data.split, ref)
        else:
            split = load_split(str(ref), self.data.split, self.data_dir)
        if tuple(split.data_shape) != self.data_shape:
            raise DataError(f"the reference set has per-sample shape {tuple(split.data_shape)} but {self.data.name} "
                            f"samples are {self.data_shape}; score against a reference of the same size")
        self._full = split
        return split

    def split(self, n: int | None = None) -> DataSplit:
        """The reference DataSplit of n_ref items; fixed at the first call."""
        if self._split is not None:
            return self._split
        split = self.full()
        n_ref = self._n_ref_arg
        if n_ref is None:
            n_ref = len(split) if n is None else min(n, len(split))
        if n_ref > len(split):
            raise DataError(f"n_ref={n_ref} but the reference set holds only {len(split)} items")
        self.subset = None
        if n_ref < len(split):
            split = split.subset(n_ref, seed=0)
            self.subset = "seed-0 random subset"
        self._split = split
        return split

    def size(self, n: int | None = None) -> int:
        """n_ref: the number of reference items (fixes the subset at the first call)."""
        return len(self.split(n))

    def description(self) -> str:
        ref = self._ref_arg
        if ref is None:
            return f"{self.data.name}:{self.data.split}"
        return ref if isinstance(ref, str) else getattr(ref, "name", type(ref).__name__)

    def cache_name(self) -> tuple[str, str | None]:
        """(name, transform id) of the reference in the feature cache."""
        ref, split = self._ref_arg, self._split
        if ref is None and is_registered(self.data.name):
            name, tid = self.data.name, None
        elif isinstance(ref, str) and is_registered(ref):
            name, tid = ref, None
        else:
            name = ref if isinstance(ref, str) else (self.data.name if ref is None else getattr(ref, "name", "tensor"))
            tid = "content-" + content_id(split.data)
        if self.subset:
            tid = (tid + "+" if tid else "") + "subset-perm-seed0"
        return name, tid

    def features(self, ext: Any, outputs: list[str], keep_features: bool) -> CachedReference:
        """Features/statistics of the reference for ``ext``'s ``outputs``, from the cache or computed."""
        split = self._split if self._split is not None else self.split()
        name, tid = self.cache_name()

        def compute(missing: list[str]) -> dict[str, torch.Tensor]:
            fp = feature_pass({ext: missing}, split.data, batch_size=self.batch_size, device=self.device,
                              progress=self.progress, desc=f"reference {ext.name}")
            return {o: fp.features[(ext.name, o)] for o in missing}

        cref = cached_reference_features(name, self.data.split if self._ref_arg is None else "ref", ext, len(split),
                                         compute, outputs=outputs, transform_id=tid, keep_features=keep_features,
                                         enabled=self.cache)
        self.cache_info[ext.name] = {"key": cref.key, "hit": cref.hit}
        return cref


class StatsFileReference:
    """A reference given only as Gaussian statistics (``--ref-stats``: a pytorch-fid, clean-fid or
    dgmbench ``.npz``). It serves FID's reference statistics; metrics that need the reference's
    per-item features are refused with a UsageError naming the way out."""

    subset = None

    def __init__(self, stats: Any):
        self.stats = stats
        self.cache_info: dict[str, dict] = {}

    def size(self, n: int | None = None) -> int:
        return int(self.stats.n)

    def description(self) -> str:
        return f"statistics file {self.stats.extra.get('path')}"

    def features(self, ext: Any, outputs: list[str], keep_features: bool) -> CachedReference:
        if keep_features or outputs != [getattr(ext, "feature_output", None)]:
            raise UsageError("this metric needs the reference's features, and --ref-stats holds only their mean "
                             "and covariance: use --dataset without --ref-stats")
        if self.stats.cov.shape[0] != getattr(ext, "dim", self.stats.cov.shape[0]):
            raise DataError(f"the statistics file has {self.stats.cov.shape[0]}-d features but the '{ext.name}' "
                            f"extractor gives {ext.dim}-d ones")
        return CachedReference(key=None, path=None, hit=False, stats={outputs[0]: self.stats}, features={})


def kde_validation(data: DataSplit, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(validation items KDE's bandwidth is chosen on, the items it scores, a description): the bandwidth
    is never chosen on the points it then scores (module docstring)."""
    info = DATASETS.get(data.name)
    if info is not None and "val" in info.splits and data.split != "val":
        va = get_dataset(data.name, "val")
        return va.subset(min(KDE_VAL_MAX, len(va)), seed=0).data, data.data, f"{data.name}:val (seed-0 subset)"
    if info is not None and "train" in info.splits and data.split != "train":
        tr = load_split(data.name, "train", data_dir)
        return tr.subset(min(KDE_VAL_MAX, len(tr)), seed=0).data, data.data, f"{data.name}:train (seed-0 subset)"
    # no separate split: a seeded half of the scored split validates, the other half is scored
    val, test = kde_val_test_split(data.data, seed=0)
    return val, test, f"{data.name}:{data.split} (seed-0 half validates, the other half is scored)"
