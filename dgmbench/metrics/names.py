"""Canonical metric names, their direction and unit: the one table every part reads.

Records store metrics under these names; ``regress`` uses the direction; tables and
reports use the unit and label.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    unit: str
    label: str


_SPECS = [
    MetricSpec("fid", False, "", "FID"),
    MetricSpec("fid_inf", False, "", "FID-infinity (1/N extrapolation)"),
    MetricSpec("kid", False, "", "KID"),
    MetricSpec("is", True, "", "Inception Score"),
    MetricSpec("precision", True, "fraction", "precision"),
    MetricSpec("recall", True, "fraction", "recall"),
    MetricSpec("density", True, "", "density"),
    MetricSpec("coverage", True, "fraction", "coverage"),
    MetricSpec("mmd", False, "", "MMD^2 (unbiased, RBF)"),
    MetricSpec("kde_ll", True, "nats", "KDE (Parzen) log-likelihood"),
    MetricSpec("kde_bpd", False, "bits/dim", "KDE (Parzen) bits/dim"),
    MetricSpec("nll", False, "nats", "negative log-likelihood"),
    MetricSpec("bpd", False, "bits/dim", "bits per dimension"),
    MetricSpec("clip_score", True, "", "CLIP score (100 x cosine)"),
    MetricSpec("clip_fd", False, "", "Frechet distance in CLIP space"),
    MetricSpec("samples_per_s", True, "samples/s", "sampling speed"),
    MetricSpec("nfe", False, "evaluations/sample", "network evaluations per sample"),
    MetricSpec("modes_captured", True, "modes", "modes captured"),
    MetricSpec("hq_fraction", True, "fraction", "high-quality samples (within 3 std)"),
    MetricSpec("mode_rkl", False, "nats", "reverse KL of mode histogram to uniform"),
]

METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}


def metric_spec(name: str) -> MetricSpec:
    """Spec of a canonical metric; unknown names raise UsageError with suggestions."""
    if name not in METRICS:
        from ..errors import UsageError, suggest

        raise UsageError(suggest(name, METRICS, "metric"))
    return METRICS[name]
