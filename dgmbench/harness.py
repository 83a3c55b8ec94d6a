"""The harness: model (or samples) x dataset split x metrics -> :class:`~dgmbench.results.Record`.

``evaluate(model_or_samples, dataset, metrics=..., n=..., seed=...)`` draws ``n`` samples
(seeded chunks, :mod:`dgmbench.sampling`), validates each batch once, runs ONE feature pass
over them that feeds every requested metric, takes the reference features from the cache
(:mod:`dgmbench.reference`), computes the metrics through their registry entries
(:mod:`dgmbench.metrics.registry`) and returns a Record (appended to ``store`` when given).
:class:`Evaluator` does the same incrementally (``update(samples)`` then ``compute()``) for
scoring inside a training loop. Every setting is an :class:`~dgmbench.options.EvalOptions`
field, passed by name.

Policies (each stated in the Record, never silent):

- Metrics default by data kind (the registry's ``score_default``): images fid, kid, prdc;
  2-D points mode_coverage, mmd, kde.
- ``n`` defaults to the sample set's size (samples) or min(len(reference), 10,000) (models).
- The reference set and KDE's validation split: see :mod:`dgmbench.reference`.
- Samples must match the dataset's per-sample shape and lie in [0, 1] (images) with no
  NaN/Inf; anything else is a DataError naming the problem.
- A metric that cannot be computed for a reason outside the user's control (IS without the
  Inception logits weights, CLIP score for an unconditional model, NLL without
  ``log_likelihood``) has value None and a note saying why.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch

from . import distributed as D
from .data.base import DataSplit
from .devices import resolve_device
from .errors import DataError, UsageError
from .features.inception import RESIZE_MODES, precision_kwargs
from .features.registry import default_extractor, extractor_options, feature_pass, get_extractor
from .features.stats import StreamingStats
from .features.stats_file import load_ref_stats, provenance_mismatches
from .metrics.context import MetricContext, provenance
from .metrics.registry import GROUPS, IMAGE, METRICS, POINTS, MetricGroup, default_metrics, resolve_metrics
from .options import EvalOptions
from .protocol import SamplesModel, resolve_model
from .protocol import model_name as _model_name
from .reference import ReferenceSet, StatsFileReference, is_registered, load_split
from .results import MetricValue, Record, RecordStore, check_writable_file, git_revision
from .sampling import SAMPLE_CHUNK, sample_chunks
from .validation import as_tensor, check_samples

DEFAULT_N_CAP = 10_000
MAIN_EXTRACTOR_NEEDS = frozenset({"features", "feature_stats", "logits", "reference_features", "reference_stats"})


class Evaluator:
    """Score samples against a dataset split incrementally: ``update(samples)`` ... ``compute()``.

    Features of every batch are extracted once (one pass for all metrics); float64 streaming
    statistics keep FID's memory O(d^2); features are kept only when a metric needs them.
    ``compute(model=...)`` adds model-based metrics (NLL/bpd, speed). ``reset()`` clears the
    samples and keeps the reference. Keyword arguments are EvalOptions fields.
    """

    def __init__(self, dataset: str | DataSplit | None, *, metrics: str | Iterable[str] | None = None,
                 options: EvalOptions | None = None, **kw: Any):
        self.options = o = EvalOptions.from_kwargs(options, **kw)
        precision_kwargs(o.precision)  # an unknown name fails before any work
        self.seed, self.batch_size, self.split = int(o.seed), int(o.batch_size), o.split
        self.device = resolve_device(o.device)
        self.ref_stats = load_ref_stats(o.ref_stats) if o.ref_stats else None
        if dataset is None and self.ref_stats is None:
            raise UsageError("give a dataset to compare with (or --ref-stats FILE for FID against statistics)")
        if dataset is None:  # --ref-stats alone: the sample shape comes from the first batch
            self.data, self.dataset_name = None, str(self.ref_stats.extra.get("dataset") or "ref-stats")
            self.data_shape, self.is_image = None, True
        else:
            self.data = dataset if isinstance(dataset, DataSplit) else load_split(str(dataset), o.split, o.data_dir)
            self.dataset_name = self.data.name if isinstance(dataset, DataSplit) else str(dataset)
            self.data_shape = tuple(self.data.data_shape)
            self.is_image = len(self.data_shape) == 3
        names = default_metrics(IMAGE if self.is_image else POINTS) if metrics is None else metrics
        requested = set(resolve_metrics(names))
        self.groups: list[MetricGroup] = [g for g in GROUPS.values() if g.name in requested]  # registry order
        self.needs = frozenset().union(*(g.needs_for(o) for g in self.groups))
        if self.ref_stats is not None:
            self._check_stats_only()
            self.reference: Any = StatsFileReference(self.ref_stats)
        else:
            self.reference = ReferenceSet(self.data, ref=o.ref, n_ref=o.n_ref, data_dir=o.data_dir,
                                          batch_size=self.batch_size, device=self.device, progress=o.progress,
                                          cache=o.cache)
        self.extractor = self._main_extractor() if self.needs & MAIN_EXTRACTOR_NEEDS else None
        if self.ref_stats is not None and self.extractor is not None:
            bad = provenance_mismatches(self.ref_stats, self.extractor)
            if bad:
                raise UsageError(f"{o.ref_stats} was made with other features ({'; '.join(bad)}); pass the same "
                                 "--extractor/--weights/--resize")
        self.clip = self._clip_extractor() if "clip" in self.needs else None
        self._request: dict[Any, list[str]] = {}
        if self.extractor is not None:
            outs = [self.extractor.feature_output] if self.needs & {"features", "feature_stats"} else []
            if "logits" in self.needs and getattr(self.extractor, "logits_output", None):
                outs.append(self.extractor.logits_output)
            if outs:
                self._request[self.extractor] = outs
        if self.clip is not None:
            self._request[self.clip] = ["clip"]
        self.notes: list[str] = []
        self.reset()

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def _check_stats_only(self) -> None:
        """With --ref-stats, only groups that compare Gaussian statistics (FID) or none (IS) can run."""
        for g in self.groups:
            if g.needs_for(self.options) - {"features", "feature_stats", "reference_stats", "logits"}:
                raise UsageError(f"{g.name} needs the reference's features (or the samples' own data), and "
                                 "--ref-stats holds only a mean and a covariance: use --dataset without --ref-stats")

    def _main_extractor(self) -> Any:
        o = self.options
        recorded = self.ref_stats.extra if self.ref_stats is not None else {}
        if o.extractor:
            spec = o.extractor
        elif recorded.get("extractor"):
            spec = recorded["extractor"]
        elif is_registered(self.dataset_name):
            spec = default_extractor(self.dataset_name)
        else:
            spec = "inception" if self.is_image else "raw"
        resize = o.resize
        if resize is None and spec == "inception" and recorded.get("resize"):
            resize = next((k for k, v in RESIZE_MODES.items() if v == recorded["resize"]), None)
        weights = o.weights or (o.inception_weights if spec == "inception" else None)
        kw: dict[str, Any] = extractor_options(spec, weights, resize) if isinstance(spec, str) else {}
        if spec == "inception":
            kw.update(precision_kwargs(o.precision))
        elif isinstance(spec, str):
            if o.inception_weights:
                warnings.warn(f"--inception-weights is ignored: the extractor is '{spec}'", stacklevel=3)
            if o.precision != "fp32":
                warnings.warn(f"precision={o.precision!r} is ignored: it applies to the Inception extractor, "
                              f"and the extractor is '{spec}'", stacklevel=3)
        return get_extractor(spec, device=self.device, **kw)

    def _clip_extractor(self) -> Any:
        o = self.options
        if o.clip_extractor is not None:
            return o.clip_extractor
        kw = {k: v for k, v in (("model_name", o.clip_model), ("pretrained", o.clip_pretrained)) if v}
        return get_extractor("clip", device=self.device, **kw)

    def reset(self) -> None:
        """Forget the samples seen so far (the reference features stay cached)."""
        self.n = 0
        self._feats: dict[tuple[str, str], list[torch.Tensor]] = {}
        self._stats: dict[tuple[str, str], StreamingStats] = {}
        self._raw: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] | None = None
        self.t_features = 0.0

    def _keep_keys(self) -> set[tuple[str, str]]:
        keep: set[tuple[str, str]] = set()
        ext = self.extractor
        if ext is not None and "features" in self.needs:
            keep.add((ext.name, ext.feature_output))
        if ext is not None and "logits" in self.needs and getattr(ext, "logits_output", None):
            keep.add((ext.name, ext.logits_output))
        if self.clip is not None:
            keep.add((self.clip.name, "clip"))
        return keep

    def _stats_keys(self) -> set[tuple[str, str]]:
        ext = self.extractor
        return {(ext.name, ext.feature_output)} if ext is not None and "feature_stats" in self.needs else set()

    # -- accumulation -------------------------------------------------------------------------
    def update(self, samples: Any, labels: torch.Tensor | None = None) -> None:
        """Add a batch of samples ([0, 1] images (N, C, H, W) or (N, D) points) and optional labels.

        The batch is validated once and stays on its device until the feature pass.
        """
        x = as_tensor(samples).detach()
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.data_shape is None:  # --ref-stats without a dataset: the first batch fixes the shape
            self.data_shape = tuple(x.shape[1:])
        x = check_samples(x, data_shape=self.data_shape, name="samples")
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
        if "raw" in self.needs:
            x = x.cpu()
            self._raw.append(x if self.is_image else x.reshape(x.shape[0], -1))
        self.n += int(x.shape[0])

    def sync_distributed(self, n_total: int, chunk_size: int) -> None:
        """Under ``torch.distributed``: gather kept features, raw samples and labels from every
        rank in sample order and all-reduce the streaming statistics, so that rank 0 holds
        exactly what one process scoring all ``n_total`` samples would hold (no-op otherwise).
        """
        if not D.is_initialized():
            return

        def gathered(parts: list[torch.Tensor], like: tuple) -> torch.Tensor:
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

    # -- computing --------------------------------------------------------------------------------
    def _context(self, model: Any, n_ref: int) -> MetricContext:
        ext = self.extractor
        main = {o: torch.cat(v) for (name, o), v in self._feats.items() if ext is not None and name == ext.name}
        clip = self._feats.get((self.clip.name, "clip")) if self.clip is not None else None
        return MetricContext(
            options=self.options, data=self.data, reference=self.reference, n=self.n, n_ref=n_ref, seed=self.seed,
            device=self.device, batch_size=self.batch_size, is_image=self.is_image, extractor=ext, clip=self.clip,
            features=main, stats={o: st for (name, o), st in self._stats.items() if ext is not None and name == ext.name},
            clip_embeddings=None if clip is None else torch.cat(clip), raw=torch.cat(self._raw) if self._raw else None,
            labels=torch.cat(self._labels) if self._labels else None, model=model, progress=self.options.progress,
            data_dir=self.options.data_dir, keep_reference_features="reference_features" in self.needs)

    def compute(self, model: Any = None, *, model_name: str | None = None, family: str | None = None,
                store: RecordStore | str | os.PathLike | None = None, config: dict | None = None) -> Record:
        """Compute every requested metric on the samples seen so far and return a Record."""
        t_start = time.perf_counter()
        if self.n == 0 and any(g.uses_samples(self.options) for g in self.groups):
            raise DataError("no samples were given to the evaluator (call update(samples) first)")
        n = self.n
        n_ref = self.reference.size(n if n else None)
        small_ref = None
        if n and n_ref < n:
            small_ref = f"the reference set has only {n_ref} items (< n = {n}); all of them are used"
            warnings.warn(small_ref, stacklevel=2)
        notes = list(self.notes) + ([small_ref] if small_ref else [])
        ctx = self._context(model, n_ref)
        rec = Record(model=model_name or (_model_name(model) if model is not None else None) or "samples",
                     dataset=self.dataset_name, split=self.split,
                     family=family or getattr(model, "family", None) or None, seed=self.seed, device=str(self.device),
                     n_samples=n, git_rev=git_revision(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        for group in self.groups:
            for mv in group.compute(ctx):
                rec.add(_annotated(mv, small_ref if group.compares_with_reference else None))
        ext = self.extractor
        rec.config = {
            "metrics": self.group_names, "n": n, "n_ref": n_ref, "split": self.split,
            "reference": self.reference.description(), "reference_subset": self.reference.subset,
            "batch_size": self.batch_size,
            "extractor": None if ext is None else {**provenance(ext), "config": getattr(ext, "config_id", None)},
            "clip_extractor": None if self.clip is None else provenance(self.clip),
            "options": self.options.to_config(), "notes": notes,
            **({"ref_stats": {k: self.ref_stats.extra.get(k) for k in ("path", "sha256", "source", "dataset", "split",
                                                                         "n", "extractor", "resize")}}
               if self.ref_stats is not None else {}),
            # what differs between otherwise identical runs (timings, cache state) lives under "run"
            "run": {"feature_time_s": self.t_features, "metrics_time_s": time.perf_counter() - t_start,
                    "reference_cache": dict(self.reference.cache_info)},
            **(config or {}),
        }
        if store is not None:
            (store if isinstance(store, RecordStore) else RecordStore(store)).append(rec)
        return rec


def _annotated(mv: MetricValue, small_ref: str | None) -> MetricValue:
    """Direction and unit from the registry; the small-reference note on values that compare with it."""
    if small_ref:
        mv.note = f"{mv.note}; {small_ref}" if mv.note else small_ref
    spec = METRICS.get(mv.name)
    if spec is not None:
        mv.higher_is_better = spec.higher_is_better
        mv.unit = mv.unit or (spec.unit or None)
    return mv


def evaluate(model_or_samples: Any, dataset: str | DataSplit, *, metrics: str | Iterable[str] | None = None,
             n: int | None = None, checkpoint: str | None = None, store: RecordStore | str | os.PathLike | None = None,
             model_name: str | None = None, family: str | None = None, options: EvalOptions | None = None,
             **kw: Any) -> Record:
    """Score a model or a sample set on ``dataset``'s split; see the module docstring.

    ``model_or_samples``: a GenerativeModel, a SamplesModel, a tensor/array of samples, a
    samples path (.npz/.npy/.pt or an image folder), a checkpoint a registered loader
    recognises, or an import string ``package.module:factory`` (with ``checkpoint``). Other
    keyword arguments are :class:`EvalOptions` fields (``seed=1``, ``fid_bootstrap=0``,
    ``dc_k=5``, ``device="cpu"``...). Returns the Record (also appended to ``store``).
    """
    t0 = time.perf_counter()
    opts = EvalOptions.from_kwargs(options, **kw)
    if store is not None and not isinstance(store, RecordStore):
        check_writable_file(store, "store")  # before any computation (exit 2)
    dev = resolve_device(opts.device)
    model, source = resolve_model(model_or_samples, checkpoint=checkpoint, device=dev)
    replay = isinstance(model, SamplesModel)
    was_training = None
    if isinstance(model, torch.nn.Module):
        was_training = model.training
        model.to(dev).eval()
    ev = Evaluator(dataset, metrics=metrics, options=opts)
    if ev.data_shape is not None and tuple(getattr(model, "data_shape", ev.data_shape)) != ev.data_shape:
        raise DataError(f"the model makes samples of shape {tuple(model.data_shape)} but {ev.dataset_name} items are "
                        f"{ev.data_shape}; score it on a dataset of the same size")
    uses_samples = any(g.uses_samples(opts) for g in ev.groups)
    if n is None and not replay and ev.data is None:
        raise UsageError("give the number of samples (-n) when scoring a model against --ref-stats")
    if n is None:
        n = len(model) if replay else min(len(ev.reference.full()) if opts.ref is not None else len(ev.data),
                                          DEFAULT_N_CAP)
    if n < 2 and uses_samples:
        raise DataError(f"n must be at least 2 for sample-based metrics, got {n}")
    ev.reference.size(n)
    labels = _balanced_labels(model, n, opts)
    chunks = D.plan_chunks(n, SAMPLE_CHUNK, D.rank(), D.world_size())
    rec = None
    try:
        if uses_samples:
            for x, lab in sample_chunks(model, chunks, seed=ev.seed, batch_size=ev.batch_size, labels=labels,
                                        progress=opts.progress and D.is_main()):
                ev.update(x, lab)
            ev.sync_distributed(n, SAMPLE_CHUNK)
        if D.is_main():
            rec = ev.compute(model, model_name=model_name or _model_name(model), family=family, store=None,
                             config={"source": source,
                                     "labels": None if labels is None else "balanced, seeded order",
                                     "sampling_batch_size": ev.batch_size, "sample_chunk": SAMPLE_CHUNK,
                                     "processes": D.world_size()})
            rec.wall_time_s = time.perf_counter() - t0
            rec.n_samples = n if uses_samples else None
            if store is not None:
                (store if isinstance(store, RecordStore) else RecordStore(store)).append(rec)
    finally:
        if was_training:
            model.train()
    # every rank returns the Record that rank 0 computed and stored
    return D.broadcast_object(rec)


def _balanced_labels(model: Any, n: int, opts: EvalOptions) -> torch.Tensor | None:
    """Balanced class labels in a seeded random order for a class-conditional model (else None)."""
    num_classes = getattr(model, "num_classes", None)
    replay = isinstance(model, SamplesModel)
    use = opts.conditional if opts.conditional is not None else bool(num_classes) and not replay
    if not use or replay:
        return None
    if not num_classes:
        raise UsageError("conditional=True but the model has no num_classes")
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(opts.seed))) % int(num_classes)


__all__ = ["Evaluator", "evaluate"]
