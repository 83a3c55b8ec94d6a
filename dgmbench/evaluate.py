"""The harness: model (or samples) x dataset split x metrics -> :class:`~dgmbench.results.Record`.

``evaluate(model_or_samples, dataset, metrics=..., n=..., seed=...)`` draws ``n`` samples
(seeded: one CPU ``torch.Generator`` from ``seed``), validates them, runs ONE feature pass
over them that feeds every requested metric, takes the reference features/statistics from
the on-disk cache (:mod:`dgmbench.features.cache`), computes the metrics and returns a
Record (appended to ``store`` when given). :class:`Evaluator` does the same incrementally
(``update(samples)`` then ``compute()``) for scoring inside a training loop.

Metric names (``metrics=``; a list or a comma-separated string): the canonical names of
:mod:`dgmbench.metrics.names` or these groups -- ``fid``, ``kid``, ``is``, ``prdc``
(precision, recall, density, coverage), ``mmd``, ``kde`` (kde_ll, kde_bpd), ``nll`` (nll,
bpd), ``clip`` (clip_score, clip_fd), ``speed`` (samples_per_s, nfe), ``mode_coverage``
(modes_captured, hq_fraction, mode_rkl; 2-D Gaussian-mixture toys).

Policies (each stated in the Record, never silent):

- ``n`` defaults to the sample set's size (samples) or min(len(reference), 10,000) (models).
- The reference set holds ``n_ref`` = min(n, len(reference)) items unless given: a fixed
  (seed-0, run-seed independent, hence cacheable) random subset of the split when it is
  larger; when the reference is smaller than n, all of it is used, with a warning and a
  note on every metric that compares with it.
- KID's subset size defaults to min(1000, min(n, n_ref) // 2) (a note says when it is below
  1000; half the set so that subsets differ); an explicit size larger than a set is an error.
- Samples must match the dataset's per-sample shape and lie in [0, 1] (images) with no
  NaN/Inf; anything else is a DataError naming the problem.
- A metric that cannot be computed for a reason outside the user's control (IS without the
  Inception logits weights, CLIP score for an unconditional model, NLL without
  ``log_likelihood``) has value None and a note saying why.
- KDE: bandwidth chosen on a fixed seed-0 subset of at most 1,000 items of the dataset's
  ``val`` split, or (no such split) of ``train``; test points are the scored split.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
import types
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .data.base import DataSplit
from .errors import DataError, ModelError, UsageError, suggest
from .results import MetricValue, Record, RecordStore, git_revision
from .validation import as_image_tensor, as_tensor, check_samples

# --- metric names ---------------------------------------------------------------------------

GROUPS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid",),
    "is": ("is",),
    "prdc": ("precision", "recall", "density", "coverage"),
    "mmd": ("mmd",),
    "kde": ("kde_ll", "kde_bpd"),
    "nll": ("nll", "bpd"),
    "clip_score": ("clip_score",),
    "clip_fd": ("clip_fd",),
    "speed": ("samples_per_s", "nfe"),
    "mode_coverage": ("modes_captured", "hq_fraction", "mode_rkl"),
}
ALIASES: dict[str, tuple[str, ...]] = {
    "clip": ("clip_score", "clip_fd"),
    "pr": ("prdc",),
    **{m: (g,) for g, ms in GROUPS.items() for m in ms if m != g},
}
FEATURE_GROUPS = ("fid", "kid", "is", "prdc")
DEFAULT_METRICS = ("fid", "kid", "prdc")
DEFAULT_N_CAP = 10_000
KDE_VAL_MAX = 1000


def resolve_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Metric names or groups -> the ordered list of groups to compute (unknown names: UsageError)."""
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",")]
    out: list[str] = []
    for m in metrics:
        m = m.strip().lower().replace("-", "_")
        if not m:
            continue
        groups = (m,) if m in GROUPS else ALIASES.get(m)
        if groups is None:
            raise UsageError(suggest(m, list(GROUPS) + list(ALIASES), "metric"))
        out.extend(g for g in groups if g not in out)
    if not out:
        raise UsageError("no metrics were requested")
    return out


@dataclass
class EvalOptions:
    """Per-metric settings (every one is written into the Record's config)."""

    kid_subsets: int = 100
    kid_subset_size: int | None = None  # None: min(1000, min(n, n_ref) // 2)
    fid_bootstrap: int = 10  # bootstrap replicates for FID's interval (0: none)
    fid_inf: bool = False  # also report FID-infinity (Chong & Forsyth 2020) as "fid_inf"
    prdc_k: int = 3
    is_splits: int = 10
    mmd_bandwidth: float | None = None  # None: median heuristic
    mmd_permutations: int = 0
    mmd_on: str = "features"  # "features" (the extractor's) or "raw" (pixels / points)
    mmd_max_n: int = 5000  # MMD on at most this many points per set (seeded subset)
    kde_grid: Sequence[float] | None = None
    kde_max_test: int = 10_000
    clip_w: float = 1.0
    clip_template: str | None = None
    speed_batch_size: int | None = None  # None: the sampling batch size
    speed_repeats: int = 3
    speed_warmup: int = 1
    likelihood_batch_size: int | None = None
    nll_max_n: int | None = None  # NLL/bpd on a seeded subset of at most this many split items (None: all)
    precision: str = "fp32"  # Inception arithmetic: fp32, fp32-strict (no TF32), tf32, bf16, fp16 (autocast)


def _content_id(t: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (identifies custom reference sets in the cache key)."""
    h = hashlib.sha256()
    t = t.detach().cpu().contiguous()
    h.update(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _is_registered(name: str) -> bool:
    from .data.registry import DATASETS

    return name in DATASETS


# --- the incremental evaluator -----------------------------------------------------------------


class Evaluator:
    """Score samples against a dataset split incrementally: ``update(samples)`` ... ``compute()``.

    Features of every batch are extracted once (one pass for all metrics); float64 streaming
    statistics keep FID's memory O(d^2); features are kept only when a metric needs them
    (KID, PRDC, MMD, FID's bootstrap, CLIP). ``compute(model=...)`` adds model-based metrics
    (NLL/bpd, speed). ``reset()`` clears the samples and keeps the reference.
    """

    def __init__(
        self,
        dataset: str | DataSplit,
        *,
        metrics: str | Iterable[str] = DEFAULT_METRICS,
        split: str = "test",
        ref: str | DataSplit | torch.Tensor | None = None,
        n_ref: int | None = None,
        seed: int = 0,
        device: str | torch.device = "auto",
        batch_size: int = 128,
        extractor: str | Any | None = None,
        inception_weights: str | None = None,
        clip_extractor: Any | None = None,
        clip_model: str | None = None,
        clip_pretrained: str | None = None,
        data_dir: str | None = None,
        progress: bool = False,
        cache: bool | None = None,
        options: EvalOptions | None = None,
        **option_kwargs,
    ):
        from .features.registry import resolve_device

        self.groups = resolve_metrics(metrics)
        self.options = options or EvalOptions()
        for k, v in option_kwargs.items():
            if not hasattr(self.options, k):
                raise UsageError(suggest(k, [f.name for f in EvalOptions.__dataclass_fields__.values()], "option"))
            setattr(self.options, k, v)
        from .features.inception import precision_kwargs

        precision_kwargs(self.options.precision)  # an unknown name fails before any work
        if self.options.nll_max_n is not None and self.options.nll_max_n < 1:
            raise UsageError(f"nll_max_n must be at least 1, got {self.options.nll_max_n}")
        if self.options.mmd_on not in ("features", "raw"):
            raise UsageError(f"mmd_on must be 'features' or 'raw', got {self.options.mmd_on!r}")
        self.split, self.seed, self.batch_size = split, int(seed), int(batch_size)
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.progress, self.cache = progress, cache
        self.data_dir = data_dir
        self.notes: list[str] = []
        # the scored dataset split
        if isinstance(dataset, DataSplit):
            self.dataset_name, self.data = dataset.name, dataset
        else:
            from .data.registry import get_dataset

            self.dataset_name = str(dataset)
            kw = {"data_dir": data_dir} if data_dir and not dataset.startswith(("folder:", "npz:", "pt:")) \
                and self._downloads(dataset) else {}
            self.data = get_dataset(dataset, split, **kw)
        self.data_shape = tuple(self.data.data_shape)
        self.is_image = len(self.data_shape) == 3
        # the reference set (defaults to the scored split)
        self._ref_arg = ref
        self._n_ref_arg = n_ref
        self._ref_split: DataSplit | None = None
        self._ref_full: DataSplit | None = None
        self.ref_subset: str | None = None
        # extractors
        self._extractor_arg = extractor
        self.inception_weights = inception_weights
        self._clip_arg, self.clip_model, self.clip_pretrained = clip_extractor, clip_model, clip_pretrained
        self.extractor = None
        self.clip = None
        self._request: dict[Any, list[str]] = {}
        self._setup_extractors()
        self.reset()

    # -- setup ------------------------------------------------------------------------------
    @staticmethod
    def _downloads(name: str) -> bool:
        from .data.registry import DATASETS

        info = DATASETS.get(name)
        return bool(info and info.downloads)

    def _needs(self, *groups: str) -> bool:
        return any(g in self.groups for g in groups)

    def _setup_extractors(self) -> None:
        from .features.registry import default_extractor, get_extractor

        o = self.options
        main_needed = self._needs(*FEATURE_GROUPS) or (self._needs("mmd") and o.mmd_on == "features")
        if main_needed:
            if self._extractor_arg:
                spec = self._extractor_arg
            elif _is_registered(self.dataset_name):
                spec = default_extractor(self.dataset_name)
            else:
                spec = "inception" if self.is_image else "raw"
            kw = {}
            if spec == "inception":
                from .features.inception import precision_kwargs

                kw.update(precision_kwargs(o.precision))
                if self.inception_weights:
                    kw["weights"] = self.inception_weights
            elif isinstance(spec, str):
                if self.inception_weights:
                    warnings.warn(f"--inception-weights is ignored: the extractor is '{spec}'", stacklevel=3)
                if o.precision != "fp32":
                    warnings.warn(f"precision={o.precision!r} is ignored: it applies to the Inception extractor, "
                                  f"and the extractor is '{spec}'", stacklevel=3)
            self.extractor = get_extractor(spec, device=self.device, **kw)
            outs = [self.extractor.feature_output] if self._needs("fid", "kid", "prdc", "mmd") else []
            if self._needs("is") and getattr(self.extractor, "logits_output", None):
                outs.append(self.extractor.logits_output)
            if outs:
                self._request[self.extractor] = outs
        if self._needs("clip_score", "clip_fd"):
            if self._clip_arg is not None:
                self.clip = self._clip_arg
            else:
                kw = {k: v for k, v in (("model_name", self.clip_model), ("pretrained", self.clip_pretrained)) if v}
                try:
                    self.clip = get_extractor("clip", device=self.device, **kw)
                except ImportError as e:
                    raise UsageError(f"the CLIP extractor is not available in this build ({e})") from e
            self._request[self.clip] = ["clip"]

    def reset(self) -> None:
        """Forget the samples seen so far (the reference features stay cached)."""
        self.n = 0
        self._feats: dict[tuple[str, str], list[torch.Tensor]] = {}
        self._stats: dict[tuple[str, str], Any] = {}
        self._raw: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] | None = None
        self.t_features = 0.0
        self._cache_info: dict[str, dict] = {}

    @property
    def _keep_raw(self) -> bool:
        o = self.options
        return self._needs("kde", "mode_coverage") or (self._needs("mmd") and o.mmd_on == "raw")

    def _keep_keys(self) -> set[tuple[str, str]]:
        keep: set[tuple[str, str]] = set()
        o = self.options
        if self.extractor is not None:
            fo = self.extractor.feature_output
            if self._needs("kid", "prdc") or (self._needs("mmd") and o.mmd_on == "features") or \
                    (self._needs("fid") and (o.fid_bootstrap > 1 or o.fid_inf)):
                keep.add((self.extractor.name, fo))
            lo = getattr(self.extractor, "logits_output", None)
            if lo and self._needs("is"):
                keep.add((self.extractor.name, lo))
        if self.clip is not None:
            keep.add((self.clip.name, "clip"))
        return keep

    def _stats_keys(self) -> set[tuple[str, str]]:
        if self.extractor is not None and self._needs("fid"):
            return {(self.extractor.name, self.extractor.feature_output)}
        return set()

    # -- accumulation -------------------------------------------------------------------------
    def update(self, samples, labels: torch.Tensor | None = None) -> None:
        """Add a batch of samples ([0, 1] images (N, C, H, W) or (N, D) points) and optional labels."""
        from .features.registry import feature_pass

        x = as_tensor(samples)
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = check_samples(x.detach().float().cpu(), data_shape=self.data_shape, name="samples")
        if (labels is None) != (self._labels is None) and self.n > 0:
            raise UsageError("give labels with every batch or with none")
        if labels is None:
            self._labels = None
        else:
            lab = torch.as_tensor(labels).long().cpu().reshape(-1)
            if lab.shape[0] != x.shape[0]:
                raise DataError(f"{lab.shape[0]} labels for {x.shape[0]} samples")
            self._labels = (self._labels or []) + [lab]
        if self._request:
            t0 = time.perf_counter()
            fp = feature_pass(self._request, x, batch_size=self.batch_size, device=self.device,
                              keep=self._keep_keys(), stats=self._stats_keys())
            self.t_features += time.perf_counter() - t0
            for k, f in fp.features.items():
                self._feats.setdefault(k, []).append(f)
            for k, st in fp.stats.items():
                if k in self._stats:
                    self._stats[k].merge(st)
                else:
                    self._stats[k] = st
        if self._keep_raw:
            self._raw.append(x.reshape(x.shape[0], -1) if not self.is_image else x)
        self.n += int(x.shape[0])

    def sync_distributed(self, n_total: int, chunk_size: int) -> None:
        """Under ``torch.distributed``: gather kept features, raw samples and labels from every
        rank in sample order and all-reduce the streaming statistics, so that rank 0 holds
        exactly what one process scoring all ``n_total`` samples would hold (no-op otherwise).
        """
        from . import distributed as D
        from .features.stats import StreamingStats

        if not D.is_initialized():
            return

        def gathered(parts: list[torch.Tensor], like: tuple | None) -> torch.Tensor:
            local = torch.cat(parts) if parts else torch.zeros((0, *like[0]), dtype=like[1])
            return D.gather_rows(local, n_total, chunk_size)

        # rank 0 always holds chunk 0: it tells empty ranks the shapes and dtypes
        layout = D.broadcast_object({
            "feats": {k: (tuple(v[0].shape[1:]), v[0].dtype) for k, v in self._feats.items() if v},
            "raw": (tuple(self._raw[0].shape[1:]), self._raw[0].dtype) if self._raw else None,
            "labels": self._labels is not None,
            "stats": {k: st.dim for k, st in self._stats.items()},
        })
        self._feats = {k: [gathered(self._feats.get(k, []), like)] for k, like in layout["feats"].items()}
        if layout["raw"] is not None:
            self._raw = [gathered(self._raw, layout["raw"])]
        if layout["labels"]:
            self._labels = [gathered(self._labels or [], ((), torch.int64))]
        for k, dim in layout["stats"].items():
            self._stats[k] = self._stats.get(k, StreamingStats(dim)).all_reduce()
        self.n = n_total

    # -- reference ------------------------------------------------------------------------------
    def full_reference(self) -> DataSplit:
        """The whole reference set (``ref`` or the scored split), before any subset."""
        if self._ref_full is not None:
            return self._ref_full
        ref = self._ref_arg
        if ref is None:
            split = self.data
        elif isinstance(ref, DataSplit):
            split = ref
        elif isinstance(ref, torch.Tensor):
            split = DataSplit("tensor", self.split, ref)
        else:
            from .data.registry import get_dataset

            kw = {"data_dir": self.data_dir} if self.data_dir and self._downloads(str(ref)) else {}
            split = get_dataset(str(ref), self.split, **kw)
        if tuple(split.data_shape) != self.data_shape:
            raise DataError(f"the reference set has per-sample shape {tuple(split.data_shape)} but {self.dataset_name} "
                            f"samples are {self.data_shape}; score against a reference of the same size")
        self._ref_full = split
        return split

    def reference_split(self, n: int | None = None) -> DataSplit:
        """The reference DataSplit: n_ref items (see the module docstring); fixed at the first call."""
        if self._ref_split is not None:
            return self._ref_split
        split = self.full_reference()
        n_ref = self._n_ref_arg
        if n_ref is None:
            n_ref = len(split) if n is None else min(n, len(split))
        if n_ref > len(split):
            raise DataError(f"n_ref={n_ref} but the reference set holds only {len(split)} items")
        self.ref_subset = None
        if n_ref < len(split):
            split = split.subset(n_ref, seed=0)
            self.ref_subset = "seed-0 random subset"
        self._ref_split = split
        return split

    def _ref_cache_name(self) -> tuple[str, str | None]:
        ref = self._ref_arg
        split = self._ref_split
        if ref is None and _is_registered(self.dataset_name):
            name, tid = self.dataset_name, None
        elif isinstance(ref, str) and _is_registered(ref):
            name, tid = ref, None
        else:
            name = ref if isinstance(ref, str) else (self.dataset_name if ref is None else getattr(ref, "name", "tensor"))
            tid = "content-" + _content_id(split.data)
        if self.ref_subset:
            tid = (tid + "+" if tid else "") + "subset-perm-seed0"
        return name, tid

    def _reference(self, ext, outputs: list[str], keep_features: bool):
        from .features.cache import cached_reference_features
        from .features.registry import feature_pass

        split = self._ref_split
        name, tid = self._ref_cache_name()

        def compute(missing: list[str]) -> dict[str, torch.Tensor]:
            fp = feature_pass({ext: missing}, split.data, batch_size=self.batch_size, device=self.device,
                              progress=self.progress, desc=f"reference {ext.name}")
            return {o: fp.features[(ext.name, o)] for o in missing}

        return cached_reference_features(name, self.split if self._ref_arg is None else "ref", ext, len(split), compute,
                                         outputs=outputs, transform_id=tid, keep_features=keep_features,
                                         enabled=self.cache)

    # -- computing --------------------------------------------------------------------------------
    def _prov(self, ext) -> dict[str, Any]:
        return {"extractor": getattr(ext, "name", None), "extractor_sha256": getattr(ext, "sha256", None),
                "resize": getattr(ext, "resize", None)}

    def compute(self, model: Any = None, *, model_name: str | None = None, family: str | None = None,
                store: RecordStore | str | os.PathLike | None = None, config: dict | None = None) -> Record:
        """Compute every requested metric on the samples seen so far and return a Record."""
        from .features.stats import StreamingStats

        t_start = time.perf_counter()
        if self.n == 0 and any(g not in ("nll", "speed") for g in self.groups):
            raise DataError("no samples were given to the evaluator (call update(samples) first)")
        o = self.options
        n = self.n
        ref_split = self.reference_split(n if self.n else None)
        n_ref = len(ref_split)
        small_ref = None
        if self.n and n_ref < n:
            small_ref = f"the reference set has only {n_ref} items (< n = {n}); all of them are used"
            warnings.warn(small_ref, stacklevel=2)
        notes = list(self.notes)
        if small_ref:
            notes.append(small_ref)
        mvs: list[MetricValue] = []

        def add(mv: MetricValue, compares_with_ref: bool = True) -> None:
            if compares_with_ref and small_ref:
                mv.note = f"{mv.note}; {small_ref}" if mv.note else small_ref
            if mv.name in _specs():
                spec = _specs()[mv.name]
                mv.higher_is_better = spec.higher_is_better
                mv.unit = mv.unit or (spec.unit or None)
            mvs.append(mv)

        feats = {k: torch.cat(v) for k, v in self._feats.items()}
        ext = self.extractor
        ref_feats: dict[str, torch.Tensor] = {}
        ref_stats: dict[str, StreamingStats] = {}
        if ext is not None:
            fo = ext.feature_output
            outs = [fo] if self._needs("fid", "kid", "prdc", "mmd") else []
            need_ref_feats = self._needs("kid", "prdc") or (self._needs("mmd") and o.mmd_on == "features")
            if outs:
                cref = self._reference(ext, outs, keep_features=need_ref_feats)
                ref_feats, ref_stats = cref.features, cref.stats
                self._cache_info[ext.name] = {"key": cref.key, "hit": cref.hit}
            prov = self._prov(ext)
            key = (ext.name, fo)
            if self._needs("fid"):
                from .metrics.fid import fid_from_features, fid_from_stats

                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if o.fid_bootstrap > 1:
                        mv = fid_from_features(feats[key], ref_stats[fo], bootstrap=o.fid_bootstrap, seed=self.seed,
                                               stats_gen=self._stats[key], **prov)
                    else:
                        mv = fid_from_stats(self._stats[key], ref_stats[fo], **prov)
                for w in caught:
                    warnings.warn(str(w.message), stacklevel=2)
                mv.extra["n_ref"] = n_ref
                add(mv)
                if o.fid_inf:
                    from .metrics.fid import fid_infinity

                    add(fid_infinity(feats[key], ref_stats[fo], seed=self.seed, **prov))
            if self._needs("kid"):
                from .metrics.kid import kid

                size = o.kid_subset_size
                note = None
                if size is None:
                    m = min(n, n_ref)
                    size = min(1000, m // 2)
                    if size < 1000:
                        note = (f"KID subset size {size} (< the usual 1000: half of the {m} samples, so that "
                                "subsets differ and the std means something)")
                mv = kid(feats[key], ref_feats[fo], subsets=o.kid_subsets, subset_size=size, seed=self.seed,
                         device=self.device, **prov)
                if note:
                    mv.note = note
                add(mv)
            if self._needs("prdc"):
                from .metrics.prdc import prdc

                res = prdc(ref_feats[fo], feats[key], k=o.prdc_k, device=self.device)
                for mv in res.metric_values(**prov):
                    add(mv)
            if self._needs("is"):
                from .metrics.inception_score import (
                    MISSING_WEIGHTS_NOTE,
                    inception_score,
                    inception_score_unavailable,
                )

                lo = getattr(ext, "logits_output", None)
                if lo:
                    add(inception_score(feats[(ext.name, lo)], splits=o.is_splits, seed=self.seed, **prov),
                        compares_with_ref=False)
                elif ext.name == "inception":
                    add(inception_score_unavailable(MISSING_WEIGHTS_NOTE, n=n, **prov), compares_with_ref=False)
                else:
                    add(inception_score_unavailable(f"the '{ext.name}' extractor has no class logits", n=n, **prov),
                        compares_with_ref=False)
        elif self._needs("is"):
            from .metrics.inception_score import inception_score_unavailable

            add(inception_score_unavailable("no extractor with class logits", n=n), compares_with_ref=False)
        if self._needs("mmd"):
            from .metrics.mmd import mmd_rbf

            if o.mmd_on == "features":
                x, y, prov = feats[(ext.name, ext.feature_output)], ref_feats[ext.feature_output], self._prov(ext)
            else:
                x, y, prov = torch.cat(self._raw), ref_split.data, {"extractor": "raw"}
            g = torch.Generator().manual_seed(self.seed)
            sub = []
            for t in (x, y):
                if t.shape[0] > o.mmd_max_n:
                    t = t[torch.randperm(t.shape[0], generator=g)[: o.mmd_max_n]]
                sub.append(t)
            mv = mmd_rbf(sub[0], sub[1], bandwidth=o.mmd_bandwidth, permutations=o.mmd_permutations, seed=self.seed, **prov)
            mv.n = int(x.shape[0])
            if x.shape[0] > o.mmd_max_n or y.shape[0] > o.mmd_max_n:
                mv.note = f"MMD on seeded subsets of at most {o.mmd_max_n} points per set"
                mv.extra["max_n"] = o.mmd_max_n
            add(mv)
        if self._needs("kde"):
            add_all = self._kde()
            for mv in add_all:
                add(mv, compares_with_ref=False)
        if self._needs("mode_coverage"):
            for mv in self._mode_coverage():
                add(mv, compares_with_ref=False)
        if self._needs("clip_score", "clip_fd"):
            for mv in self._clip(feats, ref_split):
                add(mv, compares_with_ref=mv.name == "clip_fd")
        if self._needs("nll"):
            for mv in self._likelihood(model):
                add(mv, compares_with_ref=False)
        if self._needs("speed"):
            for mv in self._speed(model):
                add(mv, compares_with_ref=False)
        rec = Record(
            model=model_name or _model_name(model) or "samples",
            dataset=self.dataset_name, split=self.split, family=family or getattr(model, "family", None) or None,
            seed=self.seed, device=str(self.device), n_samples=n,
            git_rev=git_revision(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        for mv in mvs:
            rec.add(mv)
        rec.config = {
            "metrics": list(self.groups), "n": n, "n_ref": n_ref, "split": self.split,
            "reference": self._ref_desc(), "reference_subset": self.ref_subset, "batch_size": self.batch_size,
            "extractor": None if ext is None else {**self._prov(ext), "config": getattr(ext, "config_id", None)},
            "clip_extractor": None if self.clip is None else self._prov(self.clip),
            "options": asdict(self.options), "notes": notes,
            # what differs between otherwise identical runs (timings, cache state) lives under "run"
            "run": {"feature_time_s": self.t_features, "metrics_time_s": time.perf_counter() - t_start,
                    "reference_cache": dict(self._cache_info)},
            **(config or {}),
        }
        if store is not None:
            (store if isinstance(store, RecordStore) else RecordStore(store)).append(rec)
        return rec

    def _ref_desc(self) -> str:
        ref = self._ref_arg
        if ref is None:
            return f"{self.dataset_name}:{self.split}"
        return ref if isinstance(ref, str) else getattr(ref, "name", type(ref).__name__)

    def _kde(self) -> list[MetricValue]:
        from .metrics.kde import kde_log_likelihood, kde_metric_values

        o = self.options
        samples = torch.cat(self._raw)
        test = self.data.data
        val, val_desc = self._kde_validation()
        if test.shape[0] > o.kde_max_test:
            test = test[torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(self.seed))[: o.kde_max_test]]
        res = kde_log_likelihood(samples, val, test, grid=o.kde_grid)
        out = kde_metric_values(res, eight_bit=self.is_image, extractor="raw")
        for mv in out:
            mv.extra["validation"] = val_desc
        return out

    def _kde_validation(self) -> tuple[torch.Tensor, str]:
        from .data.registry import DATASETS, get_dataset

        info = DATASETS.get(self.dataset_name)
        if info is not None and "val" in info.splits and self.split != "val":
            va = get_dataset(self.dataset_name, "val")
            return va.subset(min(KDE_VAL_MAX, len(va)), seed=0).data, f"{self.dataset_name}:val (seed-0 subset)"
        if info is not None and "train" in info.splits and self.split != "train":
            kw = {"data_dir": self.data_dir} if self.data_dir and info.downloads else {}
            tr = get_dataset(self.dataset_name, "train", **kw)
            return tr.subset(min(KDE_VAL_MAX, len(tr)), seed=0).data, f"{self.dataset_name}:train (seed-0 subset)"
        # no separate split: a seeded half of the scored split validates, the rest is scored too
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(self.data), generator=g)[: max(1, len(self.data) // 2)]
        return self.data.data[idx], f"{self.dataset_name}:{self.split} (seed-0 half; no validation split)"

    def _mode_coverage(self) -> list[MetricValue]:
        from .metrics.mode_coverage import mode_coverage

        if self.data.modes is None or self.data.mode_std is None:
            return [MetricValue(name=m, value=None, note=f"{self.dataset_name} is not a Gaussian-mixture toy with known modes")
                    for m in GROUPS["mode_coverage"]]
        res = mode_coverage(torch.cat(self._raw), self.data.modes, float(self.data.mode_std))
        extra = {"counts": res.counts, "num_modes": res.num_modes, "threshold_std": 3.0}
        return [
            MetricValue(name="modes_captured", value=float(res.modes_captured), n=res.n, unit="modes",
                        extractor="raw", extra=dict(extra)),
            MetricValue(name="hq_fraction", value=res.high_quality_fraction, n=res.n, extractor="raw", extra=dict(extra),
                        std=math.sqrt(max(res.high_quality_fraction * (1 - res.high_quality_fraction), 0.0) / res.n)),
            MetricValue(name="mode_rkl", value=res.reverse_kl, n=res.n, unit="nats", extractor="raw", extra=dict(extra)),
        ]

    def _clip(self, feats, ref_split: DataSplit) -> list[MetricValue]:
        from .metrics.clip_score import class_prompts, clip_fd, clip_score

        o = self.options
        prov = self._prov(self.clip)
        out = []
        emb = feats[(self.clip.name, "clip")]
        if self._needs("clip_score"):
            names = self.data.class_names
            if not self._labels:
                out.append(MetricValue(name="clip_score", value=None, n=self.n, note="CLIP score needs class labels: "
                                       "score a class-conditional model or labelled samples", **prov))
            elif not names:
                out.append(MetricValue(name="clip_score", value=None, n=self.n,
                                       note=f"{self.dataset_name} has no class names to build prompts from", **prov))
            else:
                prompts = class_prompts(names, self.dataset_name, o.clip_template)
                text = self.clip.encode_text(prompts)
                mv = clip_score(emb, text, torch.cat(self._labels), w=o.clip_w, **prov)
                mv.extra["prompts"] = prompts
                out.append(mv)
        if self._needs("clip_fd"):
            cref = self._reference(self.clip, ["clip"], keep_features=o.fid_bootstrap > 1)
            self._cache_info[self.clip.name] = {"key": cref.key, "hit": cref.hit}
            if o.fid_bootstrap > 1:
                mv = clip_fd(emb, cref.stats["clip"], bootstrap=o.fid_bootstrap, seed=self.seed, **prov)
            else:
                from .metrics.fid import fid_from_stats, stats_from_features

                mv = fid_from_stats(stats_from_features(emb), cref.stats["clip"], name="clip_fd", **prov)
            out.append(mv)
        return out

    def _likelihood(self, model) -> list[MetricValue]:
        from .metrics.likelihood import likelihood_metrics
        from .protocol import likelihood_kind

        if model is None or likelihood_kind(model) == "none":
            why = "no model was given" if model is None else "the model has no log_likelihood()"
            return [MetricValue(name=m, value=None, note=f"not available: {why}") for m in GROUPS["nll"]]
        o = self.options
        bs = o.likelihood_batch_size or self.batch_size
        data, total = self.data.data, self.data.data.shape[0]
        if o.nll_max_n is not None and total > o.nll_max_n:
            g = torch.Generator().manual_seed(self.seed)
            data = data[torch.randperm(total, generator=g)[: o.nll_max_n].sort().values]
        mvs = likelihood_metrics(model, data, images=self.is_image, batch_size=bs, seed=self.seed, progress=self.progress)
        if data.shape[0] < total:
            for mv in mvs:
                mv.note = f"on a seeded subset of {data.shape[0]} of the {total} {self.split} items (nll_max_n)"
                mv.extra["max_n"] = o.nll_max_n
        return mvs

    def _speed(self, model) -> list[MetricValue]:
        from .metrics.speed import measure_speed

        if model is None:
            return [MetricValue(name="samples_per_s", value=None, note="not available: no model was given")]
        o = self.options
        bs = o.speed_batch_size or self.batch_size
        labels = None
        if getattr(model, "num_classes", None) and not _is_samples_model(model):
            labels = torch.arange(bs) % int(model.num_classes)
        return measure_speed(model, batch_size=bs, warmup=o.speed_warmup, repeats=o.speed_repeats, seed=self.seed,
                             device=_model_device(model, self.device), labels=labels)


# --- model resolution --------------------------------------------------------------------------


def _specs():
    from .metrics.names import METRICS

    return METRICS


def _is_samples_model(model: Any) -> bool:
    from .protocol import SamplesModel

    return isinstance(model, SamplesModel)


def _model_name(model: Any) -> str | None:
    if model is None:
        return None
    return getattr(model, "name", None) or type(model).__name__


def _model_device(model: Any, default: torch.device) -> torch.device:
    if isinstance(model, torch.nn.Module):
        try:
            return next(model.parameters()).device
        except StopIteration:
            return default
    d = getattr(model, "device", None)
    return torch.device(d) if isinstance(d, torch.device | str) else torch.device("cpu")


def resolve_model(obj: Any, *, checkpoint: str | None = None, device: str | torch.device | None = None) -> tuple[Any, str]:
    """Turn a model, samples (tensor/array), a samples path, an import string or a checkpoint into a model.

    Returns the model and a short description of its source.
    """
    from .protocol import SamplesModel, as_generative_model, load_model

    if isinstance(obj, SamplesModel):
        return obj, obj.source or obj.name
    if isinstance(obj, DataSplit):
        return SamplesModel(obj.data, obj.labels, name=obj.name), f"DataSplit {obj.name}"
    if isinstance(obj, torch.Tensor | np.ndarray):
        t = as_tensor(obj)
        # images: uint8 -> [0, 1], (N, H, W) -> (N, 1, H, W), NHWC -> NCHW (and range-checked); points as given
        t = as_image_tensor(t, name="samples") if t.ndim in (3, 4) else (t.float() / 255.0 if t.dtype == torch.uint8 else t)
        return SamplesModel(t, name="tensor"), "tensor"
    if isinstance(obj, str | os.PathLike):
        spec = os.fspath(obj)
        dev = None if device is None else str(device)
        if os.path.isdir(spec):
            return SamplesModel.from_path(spec), spec
        if os.path.exists(spec):
            if checkpoint is None and spec.lower().endswith((".pt", ".pth", ".ckpt")):
                from baselines.checkpoint import is_baseline_checkpoint

                if is_baseline_checkpoint(spec):
                    return load_model(spec, device=dev), spec
            return SamplesModel.from_path(spec), spec
        if ":" in spec and not spec.startswith(("/", ".", "~")) and "/" not in spec.split(":", 1)[0]:
            return load_model(spec, checkpoint, device=dev), spec + (f" + {checkpoint}" if checkpoint else "")
        raise DataError(f"{spec}: no such file or folder (and not a 'package.module:factory' import string)")
    return as_generative_model(obj), type(obj).__name__


SAMPLE_CHUNK = 1000  # samples per seeded chunk: chunk i uses distributed.chunk_generator(seed, i)


def _sample_chunks(model: Any, chunks: list, *, seed: int, batch_size: int, labels: torch.Tensor | None,
                   progress: bool):
    """Yield (samples, labels) for this process's chunks, in order.

    Chunk i is drawn with its own generator seeded from (seed, i), in calls of at most
    ``batch_size``; the samples therefore do not depend on how many processes share the
    work. A SamplesModel is replayed by index.
    """
    from tqdm.auto import tqdm

    from .distributed import chunk_generator

    total = sum(len(c) for c in chunks)
    pbar = tqdm(total=total, desc="sampling + features", unit="sample", disable=not progress, leave=False)
    replay = _is_samples_model(model)
    try:
        for chunk in chunks:
            if replay and chunk.stop > len(model):
                model.sample(chunk.stop)  # raises the SamplesModel's clear error
            gen = chunk_generator(seed, chunk.index)
            for s in range(chunk.start, chunk.stop, batch_size):
                m = min(batch_size, chunk.stop - s)
                if replay:
                    x = model.samples[s:s + m]
                    lab = None if model.labels is None else model.labels[s:s + m]
                    pbar.update(m)
                    yield x, lab
                    continue
                lab = None if labels is None else labels[s:s + m]
                with torch.no_grad():
                    x = model.sample(m, generator=gen, labels=lab.to(_model_device(model, torch.device("cpu")))
                                     if lab is not None else None)
                if not isinstance(x, torch.Tensor | np.ndarray):
                    raise ModelError(f"{_model_name(model)}.sample returned a {type(x).__name__}, not a tensor")
                if x.shape[0] != m:
                    raise ModelError(f"{_model_name(model)}.sample({m}) returned {x.shape[0]} samples")
                pbar.update(m)
                yield as_tensor(x).detach().float().cpu(), lab
    finally:
        pbar.close()


def evaluate(
    model_or_samples: Any,
    dataset: str | DataSplit,
    *,
    metrics: str | Iterable[str] = DEFAULT_METRICS,
    n: int | None = None,
    split: str = "test",
    ref: str | DataSplit | torch.Tensor | None = None,
    n_ref: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    extractor: str | Any | None = None,
    inception_weights: str | None = None,
    store: RecordStore | str | os.PathLike | None = None,
    model_name: str | None = None,
    family: str | None = None,
    progress: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int | None = None,
    checkpoint: str | None = None,
    data_dir: str | None = None,
    cache: bool | None = None,
    clip_extractor: Any | None = None,
    clip_model: str | None = None,
    clip_pretrained: str | None = None,
    conditional: bool | None = None,
    **options,
) -> Record:
    """Score a model or a sample set on ``dataset``'s ``split``; see the module docstring.

    ``model_or_samples``: a GenerativeModel, a SamplesModel, a tensor/array of samples, a
    samples path (.npz/.npy/.pt or an image folder), a dgmbench baseline checkpoint, or an
    import string ``package.module:factory`` (with ``checkpoint``). Extra keyword arguments
    are :class:`EvalOptions` fields (e.g. ``fid_bootstrap=0``, ``prdc_k=5``,
    ``mmd_permutations=200``). Returns the Record (also appended to ``store``).
    """
    t0 = time.perf_counter()
    from .features.registry import resolve_device

    dev = resolve_device(device)
    model, source = resolve_model(model_or_samples, checkpoint=checkpoint, device=dev)
    was_training = None
    if isinstance(model, torch.nn.Module):
        was_training = model.training
        model.to(dev).eval()
    groups = resolve_metrics(metrics)
    if batch_size is None:
        batch_size = 128
    ev = Evaluator(dataset, metrics=groups, split=split, ref=ref, n_ref=n_ref, seed=seed, device=dev,
                   batch_size=batch_size, extractor=extractor, inception_weights=inception_weights,
                   clip_extractor=clip_extractor, clip_model=clip_model, clip_pretrained=clip_pretrained,
                   data_dir=data_dir, progress=progress, cache=cache, kid_subsets=kid_subsets,
                   kid_subset_size=kid_subset_size, **options)
    if tuple(getattr(model, "data_shape", ev.data_shape)) != ev.data_shape:
        raise DataError(f"the model makes samples of shape {tuple(model.data_shape)} but {ev.dataset_name} items are "
                        f"{ev.data_shape}; score it on a dataset of the same size")
    sample_groups = [g for g in groups if g not in ("nll", "speed")]
    if n is None:
        if _is_samples_model(model):
            n = len(model)
        else:
            n = min(len(ev.full_reference()) if ref is not None else len(ev.data), DEFAULT_N_CAP)
    if n < 2 and sample_groups:
        raise DataError(f"n must be at least 2 for sample-based metrics, got {n}")
    ev.reference_split(n)
    gen = torch.Generator().manual_seed(int(seed))
    labels = None
    num_classes = getattr(model, "num_classes", None)
    use_labels = conditional if conditional is not None else bool(num_classes) and not _is_samples_model(model)
    if use_labels and not _is_samples_model(model):
        if not num_classes:
            raise UsageError("conditional=True but the model has no num_classes")
        # balanced labels in a seeded random order
        labels = torch.randperm(n, generator=gen) % int(num_classes)
    from . import distributed as D

    chunks = D.plan_chunks(n, SAMPLE_CHUNK, D.rank(), D.world_size())
    rec = None
    try:
        if sample_groups:
            for x, lab in _sample_chunks(model, chunks, seed=int(seed), batch_size=batch_size, labels=labels,
                                         progress=progress and D.is_main()):
                ev.update(x, lab)
            ev.sync_distributed(n, SAMPLE_CHUNK)
        if D.is_main():
            rec = ev.compute(model, model_name=model_name or _model_name(model), family=family, store=None,
                             config={"source": source,
                                     "labels": None if labels is None else "balanced, seeded order",
                                     "sampling_batch_size": batch_size, "sample_chunk": SAMPLE_CHUNK,
                                     "processes": D.world_size()})
            rec.wall_time_s = time.perf_counter() - t0
            rec.n_samples = n if sample_groups else None
            if store is not None:
                (store if isinstance(store, RecordStore) else RecordStore(store)).append(rec)
    finally:
        if was_training:
            model.train()
    # every rank returns the Record that rank 0 computed and stored
    return D.broadcast_object(rec)


class _CallableModule(types.ModuleType):
    """``dgmbench.evaluate`` is both this module and the function (the package exports the
    function under the same name; importing the submodule would otherwise shadow it)."""

    def __call__(self, *args, **kwargs) -> Record:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ALIASES", "DEFAULT_METRICS", "EvalOptions", "Evaluator", "GROUPS", "evaluate", "resolve_metrics",
           "resolve_model"]
