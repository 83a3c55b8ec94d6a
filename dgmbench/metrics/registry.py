"""The metric table: one entry per metric, the one place every part of dgmbench reads.

A :class:`MetricSpec` says what a metric *is*: its canonical name (the key in a Record),
direction, unit, label and default regression tolerance. A :class:`MetricGroup` says how
it is *computed*: the name ``--metrics`` takes, the specs it produces, the data kinds it
applies to and is a default for, the options it reads, what the evaluator must collect
for it (``needs``), and its adapter ``(MetricContext) -> list[MetricValue]``.

The harness (:mod:`dgmbench.evaluate`) loops over the requested groups; ``regress`` takes
directions and tolerances from here; ``score``'s help and the leaderboards take names,
labels and units from here. Adding a metric is one :func:`register` call (see
``docs/architecture.md``); built-in adapters live in :mod:`dgmbench.metrics.adapters` and
are named by import string so that this module stays free of torch.

``needs`` tokens (what the evaluator keeps while samples stream in):
``features`` / ``feature_stats`` / ``logits`` (the main extractor's per-sample features,
their float64 streaming statistics, its class logits), ``reference_features`` /
``reference_stats`` (the same for the reference set, from the cache), ``raw`` (the samples
themselves), ``clip`` / ``clip_reference`` (CLIP image embeddings), ``labels``, ``model``
(the group scores the model, not samples: NLL, speed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError, suggest
from .tolerance import Tolerance

Needs = frozenset[str] | Callable[[Any], frozenset[str]]
KNOWN_NEEDS = frozenset({"features", "feature_stats", "logits", "reference_features", "reference_stats", "raw",
                         "clip", "clip_reference", "labels", "model"})
IMAGE, POINTS = "image", "points"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``higher_is_better`` is its direction, ``unit`` its unit ("" when unitless,
    "fraction" in [0, 1]), ``tolerance`` the default allowed worsening in ``regress``."""

    name: str
    higher_is_better: bool
    unit: str
    label: str
    tolerance: Tolerance = field(default_factory=lambda: Tolerance(rel=0.05, unc=2.0))
    group: str = ""


@dataclass(frozen=True)
class MetricGroup:
    """Metrics computed together (``prdc`` gives precision, recall, density, coverage)."""

    name: str
    metrics: tuple[MetricSpec, ...]
    adapter: str | Callable[..., list]  # "module:function" or a callable (MetricContext) -> list[MetricValue]
    needs: Needs = frozenset()
    kinds: frozenset[str] = frozenset({IMAGE, POINTS})
    score_default: frozenset[str] = frozenset()  # data kinds for which `score`/`evaluate` compute it by default
    table_default: frozenset[str] = frozenset()  # data kinds for which `table` computes it by default
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # EvalOptions fields it reads
    compares_with_reference: bool = True  # a too-small reference set is noted on its values
    description: str = ""
    section: str = "quality"  # where leaderboards and reports show it: a key of SECTIONS

    def needs_for(self, options: Any) -> frozenset[str]:
        """The evaluator's collections this group needs under ``options``."""
        needs = self.needs(options) if callable(self.needs) else self.needs
        unknown = set(needs) - KNOWN_NEEDS
        if unknown:
            raise UsageError(f"metric group '{self.name}' needs unknown collections {sorted(unknown)}")
        return frozenset(needs)

    def uses_samples(self, options: Any) -> bool:
        """False for groups that score the model alone (NLL on the split, speed)."""
        return self.needs_for(options) != frozenset({"model"})

    def compute(self, ctx: Any) -> list:
        fn = self.adapter
        if isinstance(fn, str):
            mod, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(mod), attr)
        return list(fn(ctx))


# Report sections a metric's column belongs to, in display order (leaderboards split their metrics
# table into the parts of REPORT_TABLES so that no table is wider than a page).
SECTIONS: dict[str, str] = {"quality": "sample quality and diversity", "alignment": "alignment",
                            "likelihood": "likelihood", "speed": "sampling speed"}
REPORT_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Sample quality and diversity", ("quality",)),
    ("Alignment, likelihood and speed", ("alignment", "likelihood", "speed")),
)

GROUPS: dict[str, MetricGroup] = {}
METRICS: dict[str, MetricSpec] = {}
_ALIASES: dict[str, tuple[str, ...]] = {}


def register(group: MetricGroup, *, replace: bool = False) -> MetricGroup:
    """Add a metric group (and its metrics) to the table; the order of registration is the
    order of computation and of columns. ``replace=True`` swaps an existing group."""
    if group.name in GROUPS and not replace:
        raise UsageError(f"metric group '{group.name}' is already registered")
    if group.section not in SECTIONS:
        raise UsageError(f"metric group '{group.name}': unknown section '{group.section}' (known: {', '.join(SECTIONS)})")
    for spec in group.metrics:
        owner = METRICS.get(spec.name)
        if owner is not None and owner.group != group.name:
            raise UsageError(f"metric '{spec.name}' already belongs to group '{owner.group}'")
    specs = tuple(s if s.group == group.name else _with_group(s, group.name) for s in group.metrics)
    group = MetricGroup(**{**group.__dict__, "metrics": specs})
    GROUPS[group.name] = group
    for spec in specs:
        METRICS[spec.name] = spec
        if spec.name != group.name:
            _ALIASES.setdefault(spec.name, (group.name,))
    for alias in group.aliases:
        _ALIASES[alias] = tuple(dict.fromkeys(_ALIASES.get(alias, ()) + (group.name,)))
    return group


def unregister(name: str) -> None:
    """Remove a group and its metrics (tests that register toy metrics clean up with it)."""
    group = GROUPS.pop(name)
    for spec in group.metrics:
        METRICS.pop(spec.name, None)
    for alias in [a for a, gs in _ALIASES.items() if name in gs]:
        rest = tuple(g for g in _ALIASES[alias] if g != name)
        if rest:
            _ALIASES[alias] = rest
        else:
            del _ALIASES[alias]


def _with_group(spec: MetricSpec, group: str) -> MetricSpec:
    return MetricSpec(spec.name, spec.higher_is_better, spec.unit, spec.label, spec.tolerance, group)


def metric_section(name: str) -> str:
    """The report section of a metric (its group's ``section``; "quality" for unknown names)."""
    spec = METRICS.get(name)
    group = GROUPS.get(spec.group) if spec is not None else None
    return group.section if group is not None else "quality"


def metric_spec(name: str) -> MetricSpec:
    """Spec of a canonical metric; unknown names raise UsageError with suggestions."""
    if name not in METRICS:
        raise UsageError(suggest(name, METRICS, "metric"))
    return METRICS[name]


def aliases() -> dict[str, tuple[str, ...]]:
    """Every name ``--metrics`` takes besides group names -> the groups it stands for."""
    return dict(_ALIASES)


def resolve_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Metric names, groups or aliases -> the ordered list of groups to compute.

    Unknown names and an empty request raise UsageError.
    """
    if isinstance(metrics, str):
        metrics = metrics.split(",")
    out: list[str] = []
    for m in metrics:
        m = m.strip().lower().replace("-", "_")
        if not m:
            continue
        groups = (m,) if m in GROUPS else _ALIASES.get(m)
        if groups is None:
            raise UsageError(suggest(m, list(GROUPS) + list(_ALIASES), "metric"))
        out.extend(g for g in groups if g not in out)
    if not out:
        raise UsageError("no metrics were requested")
    return out


def default_metrics(kind: str, *, table: bool = False) -> list[str]:
    """The groups computed when none are named: by data kind ('image' or 'points'), for
    ``score``/``evaluate`` or for ``table`` (which also has models to time and score)."""
    return [g.name for g in GROUPS.values() if kind in (g.table_default if table else g.score_default)]


def metrics_help() -> str:
    """One line per group for ``--help``: name, what it gives, default kinds."""
    lines = []
    for g in GROUPS.values():
        gives = ", ".join(s.name for s in g.metrics)
        extra = f" ({gives})" if gives != g.name else ""
        default = f"; default for {'/'.join(sorted(g.score_default))}" if g.score_default else ""
        lines.append(f"  {g.name}{extra}: {g.description}{default}")
    return "\n".join(lines)


# --- the built-in metrics --------------------------------------------------------------------
_A = "dgmbench.metrics.adapters:"
_BOTH = frozenset({IMAGE, POINTS})
_IMG = frozenset({IMAGE})
_PTS = frozenset({POINTS})


def _fid_needs(o: Any) -> frozenset[str]:
    keep = o.fid_bootstrap > 1 or o.fid_inf or o.fid_interval != "none"
    return frozenset({"feature_stats", "reference_stats"} | ({"features"} if keep else set()))


def _mmd_needs(o: Any) -> frozenset[str]:
    return frozenset({"features", "reference_features"}) if o.mmd_on == "features" else frozenset({"raw"})


def _spec(name: str, hib: bool, unit: str, label: str, tol: Tolerance) -> MetricSpec:
    return MetricSpec(name, hib, unit, label, tol)


for _g in (
    MetricGroup("fid", (_spec("fid", False, "", "FID", Tolerance(rel=0.05, unc=2.0)),
                        _spec("fid_inf", False, "", "FID-inf", Tolerance(rel=0.05, unc=2.0))),
                _A + "fid", _fid_needs, _BOTH, _IMG, _IMG, options=("fid_interval", "fid_bootstrap", "fid_inf", "fid_device"),
                description="Frechet distance of the extractor's features (fid_inf with --fid-inf)"),
    MetricGroup("kid", (_spec("kid", False, "", "KID", Tolerance(abs=5e-4, rel=0.10, unc=2.0)),),
                _A + "kid", frozenset({"features", "reference_features"}), _BOTH, _IMG, _IMG,
                options=("kid_subsets", "kid_subset_size"), description="kernel inception distance, subset mean and std"),
    MetricGroup("prdc", (_spec("precision", True, "fraction", "precision", Tolerance(abs=0.02, unc=2.0)),
                         _spec("recall", True, "fraction", "recall", Tolerance(abs=0.02, unc=2.0)),
                         _spec("density", True, "", "density", Tolerance(abs=0.05, unc=2.0)),
                         _spec("coverage", True, "fraction", "coverage", Tolerance(abs=0.02, unc=2.0))),
                _A + "prdc", frozenset({"features", "reference_features"}), _BOTH, _IMG, _IMG, aliases=("pr",),
                options=("pr_k", "dc_k", "prdc_interval"),
                description="k-NN precision, recall (k=3), density, coverage (k=5, strict <)"),
    MetricGroup("is", (_spec("is", True, "", "IS", Tolerance(rel=0.05, unc=2.0)),),
                _A + "inception_score", frozenset({"logits"}), _IMG, table_default=_IMG,
                options=("is_splits", "is_bootstrap"),
                compares_with_reference=False, description="Inception Score of the extractor's class logits"),
    MetricGroup("mmd", (_spec("mmd", False, "", "MMD²", Tolerance(abs=5e-4, rel=0.10, unc=2.0)),),
                _A + "mmd", _mmd_needs, _BOTH, _PTS, _BOTH,
                options=("mmd_bandwidth", "mmd_permutations", "mmd_on", "mmd_max_n"),
                description="unbiased MMD^2 with an RBF kernel (features or raw points)"),
    MetricGroup("kde", (_spec("kde_ll", True, "nats", "KDE log-likelihood", Tolerance(rel=0.02, unc=2.0)),
                        _spec("kde_bpd", False, "bits/dim", "KDE bpd", Tolerance(rel=0.02, unc=2.0))),
                _A + "kde", frozenset({"raw"}), _BOTH, _PTS, _BOTH, options=("kde_grid", "kde_max_test"),
                compares_with_reference=False, description="Parzen-window log-likelihood of the split",
                section="likelihood"),
    MetricGroup("mode_coverage", (
        _spec("modes_captured", True, "modes", "modes captured", Tolerance(abs=0.0)),
        _spec("hq_fraction", True, "fraction", "high-quality samples (within 3 std)", Tolerance(abs=0.02, unc=2.0)),
        _spec("mode_rkl", False, "nats", "reverse KL of mode histogram to uniform", Tolerance(abs=0.05, unc=2.0))),
                _A + "mode_coverage", frozenset({"raw"}), _PTS, _PTS, _PTS, compares_with_reference=False,
                description="modes captured, high-quality fraction, reverse KL (2-D Gaussian-mixture toys)"),
    MetricGroup("cond_acc", (_spec("cond_acc", True, "fraction", "conditional accuracy", Tolerance(abs=0.02, unc=2.0)),),
                _A + "cond_acc", frozenset({"logits", "labels"}), _IMG, table_default=_IMG, aliases=("alignment",),
                compares_with_reference=False,
                description="class-conditional models: the domain classifier's agreement with the requested class",
                section="alignment"),
    MetricGroup("clip_score", (_spec("clip_score", True, "", "CLIP score (100 x cosine)", Tolerance(abs=0.5, unc=2.0)),),
                _A + "clip_score", frozenset({"clip", "labels"}), _IMG, aliases=("clip",),
                options=("clip_w", "clip_template"), compares_with_reference=False,
                description="CLIP image-text alignment with class prompts", section="alignment"),
    MetricGroup("clip_fd", (_spec("clip_fd", False, "", "Frechet distance in CLIP space", Tolerance(rel=0.05, unc=2.0)),),
                _A + "clip_fd", frozenset({"clip", "clip_reference"}), _IMG, aliases=("clip",),
                options=("fid_bootstrap",), description="Frechet distance of CLIP image embeddings"),
    MetricGroup("cmmd", (_spec("cmmd", False, "", "CMMD (1000 x MMD^2 of CLIP embeddings, RBF sigma 10)",
                               Tolerance(rel=0.10, unc=2.0)),),
                _A + "cmmd", frozenset({"clip", "clip_reference"}), _IMG,
                description="CLIP maximum mean discrepancy (Jayasumana et al. 2024)"),
    MetricGroup("nll", (_spec("nll", False, "nats", "NLL", Tolerance(rel=0.01, unc=2.0)),
                        _spec("bpd", False, "bits/dim", "bpd", Tolerance(rel=0.01, unc=2.0))),
                _A + "likelihood", frozenset({"model"}), _BOTH, table_default=_BOTH,
                options=("likelihood_batch_size", "nll_max_n"), compares_with_reference=False,
                description="the model's NLL (nats) and bits/dim with its kind", section="likelihood"),
    MetricGroup("speed", (_spec("samples_per_s", True, "samples/s", "speed", Tolerance(rel=0.5)),
                          _spec("nfe", False, "evaluations/sample", "NFE", Tolerance(abs=0.0))),
                _A + "speed", frozenset({"model"}), _BOTH, table_default=_BOTH,
                options=("speed_batch_size", "speed_repeats", "speed_warmup"), compares_with_reference=False,
                description="samples/s after warm-up and NFE per sample", section="speed"),
):
    register(_g)

DEFAULT_TOLERANCE = Tolerance(rel=0.05, unc=2.0)


def default_tolerance(metric: str) -> Tolerance:
    """The registry's tolerance for ``metric`` (unknown metrics: 5 % or 2 uncertainties)."""
    spec = METRICS.get(metric)
    return spec.tolerance if spec is not None else DEFAULT_TOLERANCE
