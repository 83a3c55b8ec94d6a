"""Star ratings (1-5) for the measured comparison table, from numbers by fixed rules.

Every rule is a small pure function of measured values so it can be unit-tested on
hand-made numbers; :data:`RULES` holds the same rules in words for the reports, and
``docs/stars.md`` holds them as one table. A rating is ``None`` (shown as "-") when the
numbers it needs were not measured.

Relative rules compare a model with the best model *in the same table* (same dataset,
extractor and n), because FID and samples/s have no absolute scale across datasets,
extractors or machines. Sample quality is also anchored to the table's real-data row (held-out
training images scored as if they were a model), so that a table of uniformly bad models does
not hand out 5 stars. Rules on fractions (precision, recall, coverage, modes) use absolute
bands. No rule can reward failure: a collapsed or diverged run lowers stability however alike
the failing seeds are, and a likelihood no better than the uniform model's is 1 star.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..results import mean_std
from ..units import uniform_bpd

KIND_STARS = {"exact": 5, "bound": 4, "estimate": 3, "none": 1}
UNIFORM_BPD = uniform_bpd()  # bits/dim of the uniform model on 8-bit data (8.0)
UNIFORM_MARGIN = 0.05  # within 5 % of it (or worse) is no usable density
COLLAPSE_RECALL = 0.1  # an image run with recall below this collapsed
COLLAPSE_MODES = 0.5  # a 2-D mixture run capturing fewer than this fraction of the modes collapsed
ANCHOR_BASE = 4.0  # quality anchored to real data: one star per factor of 4 of FID over the real-data FID

RULES: dict[str, str] = {
    "density": (
        "By the likelihood the model provides: exact 5, bound (ELBO/VLB) 4, estimate (AIS, ODE with trace "
        "estimator) 3, none 1; one star less when its bits/dim (NLL in nats on 2-D data) is more than 10% "
        "worse than the best value in this table (not below 2 by this rule). On images, bits/dim within 5% of "
        f"the uniform model's {UNIFORM_BPD:.2f} (>= {UNIFORM_BPD * (1 - UNIFORM_MARGIN):.2f}) or worse is no usable "
        "density: 1."
    ),
    "stability": (
        "Failures and spread together. A run failed when training diverged, its samples could not be scored, "
        f"or it collapsed (images: recall < {COLLAPSE_RECALL:g}; 2-D mixtures: fewer than half the modes captured). "
        "Spread: coefficient of variation std/|mean| of the quality metric (FID on images, % high-quality "
        "samples on 2-D mixtures) over the runs that did not fail: < 5% 5, < 10% 4, < 20% 3, < 40% 2, "
        "otherwise 1. Failures cap it: none 5, at most a third of the runs 3, more (not all) 2, all 1. "
        "Rating = min(spread, cap); fewer than 2 runs that did not fail: the cap (not rated when nothing failed)."
    ),
    "quality": (
        "Mean of an FID rating and a precision rating, rounded half up. FID rating = the lower of relative "
        "(5 - floor(log2(FID / best model FID in this table))) and, when the table has a real-data row, anchored "
        "(5 - floor(log4(FID / real-data FID))), each clipped to [1, 5]. Precision p: p >= 0.8 5, >= 0.6 4, "
        ">= 0.4 3, >= 0.2 2, otherwise 1. With only one of the two, that one."
    ),
    "quality_points": (
        "Fraction h of high-quality samples (within 3 std of the nearest mode): h >= 0.8 5, >= 0.6 4, "
        ">= 0.4 3, >= 0.2 2, otherwise 1."
    ),
    "speed": (
        "Samples per second: 5 minus one star per factor of 10 slower than the fastest model in this table "
        "(5 - floor(log10(fastest / this))), minimum 1. NFE (network evaluations per sample) is shown beside it."
    ),
    "coverage_images": (
        "Mean m of recall and coverage (fractions; either alone when one is missing): m >= 0.8 5, >= 0.6 4, "
        ">= 0.4 3, >= 0.2 2, otherwise 1."
    ),
    "coverage_modes": (
        "Fraction f of modes captured (a mode is captured when it is nearest to at least one sample within "
        "3 std): all modes 5, f >= 0.75 4, f >= 0.5 3, f >= 0.25 2, otherwise 1; one star less when the "
        "reverse KL of the mode histogram to uniform exceeds 0.5 nats (minimum 1)."
    ),
}


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _clip(s: int) -> int:
    return max(1, min(5, int(s)))


def band_stars(x: float | None) -> int | None:
    """A fraction in [0, 1] -> stars in bands of 0.2: >= 0.8 5, >= 0.6 4, >= 0.4 3, >= 0.2 2, else 1."""
    if not _finite(x):
        return None
    for stars, lo in ((5, 0.8), (4, 0.6), (3, 0.4), (2, 0.2)):
        if x >= lo - 1e-12:
            return stars
    return 1


def density_stars(kind: str | None, value: float | None = None, best_value: float | None = None, *,
                  bits_per_dim: bool = False, uniform: float = UNIFORM_BPD) -> int:
    """Explicit density: stars by likelihood kind, one less when ``value`` (bpd or NLL, lower is better)
    is more than 10% worse than ``best_value`` (the best value in the table on the same grid); with
    ``bits_per_dim`` (images), 1 when ``value`` is within 5% of the uniform model's ``uniform``
    bits/dim or worse (8.00 on 8-bit data, log2(L) on an L-level grid).

    ``value``/``best_value`` may be negative (NLL in nats of 2-D data): "10% worse" is
    ``value - best > 0.1 * |best|``.
    """
    kind = kind or "none"
    if kind not in KIND_STARS:
        raise ValueError(f"unknown likelihood kind {kind!r}; expected one of {sorted(KIND_STARS)}")
    stars = KIND_STARS[kind]
    if kind == "none":
        return stars
    if bits_per_dim and _finite(value) and value >= uniform * (1 - UNIFORM_MARGIN) - 1e-12:
        return 1
    if _finite(value) and _finite(best_value) and value - best_value > 0.1 * abs(best_value):
        stars = max(2, stars - 1)
    return stars


def sample_std(values: Sequence[float]) -> float | None:
    """Sample std (ddof=1) of the finite values; None for fewer than 2."""
    v = [float(x) for x in values if _finite(x)]
    if len(v) < 2:
        return None
    mean = sum(v) / len(v)
    return math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """std (ddof=1) / |mean| of finite values; None for fewer than 2; inf when the mean is 0 and std > 0."""
    mean, std = mean_std(x for x in values if _finite(x))
    if std is None:
        return None
    if std == 0:
        return 0.0
    return math.inf if mean == 0 else std / abs(mean)


def spread_stars(cv: float | None) -> int | None:
    """Coefficient of variation in bands: < 5% 5, < 10% 4, < 20% 3, < 40% 2, otherwise 1."""
    if cv is None or math.isnan(cv):
        return None
    for s, hi in ((5, 0.05), (4, 0.10), (3, 0.20), (2, 0.40)):
        if cv < hi:
            return s
    return 1


def failure_cap(n_failed: int, n_runs: int) -> int:
    """The most stars a model with ``n_failed`` failed runs of ``n_runs`` gets for stability: none failed 5,
    at most a third 3, more (not all) 2, all 1."""
    if n_runs <= 0 or n_failed <= 0:
        return 5
    if n_failed >= n_runs:
        return 1
    return 3 if n_failed / n_runs <= 1 / 3 + 1e-12 else 2


def stability_stars(values: Sequence[float], n_failed: int, n_runs: int | None = None) -> int | None:
    """Training stability from failures and spread together (see ``RULES["stability"]``).

    ``values``: the quality metric of the runs that did not fail (diverged, unscorable or
    collapsed runs are left out and counted in ``n_failed``); ``n_runs``: all runs (default:
    the finite values plus ``n_failed``)."""
    healthy = [x for x in values if _finite(x)]
    runs = len(healthy) + n_failed if n_runs is None else n_runs
    cap = failure_cap(n_failed, runs)
    if not healthy:
        return 1 if n_failed > 0 else None
    spread = spread_stars(coefficient_of_variation(healthy))
    if spread is None:
        return cap if n_failed else None
    return min(spread, cap)


def collapsed_image_run(recall: float | None) -> bool:
    """An image run collapsed when its recall is below ``COLLAPSE_RECALL`` (0.1)."""
    return _finite(recall) and recall < COLLAPSE_RECALL


def collapsed_modes_run(modes_captured: float | None, num_modes: int | None) -> bool:
    """A 2-D mixture run collapsed when it captured fewer than half of the ``num_modes`` modes."""
    return _finite(modes_captured) and bool(num_modes) and modes_captured < COLLAPSE_MODES * num_modes


def fid_stars(fid: float | None, best_fid: float | None) -> int | None:
    """5 - floor(log2(fid / best_fid)), clipped to [1, 5]; best_fid <= 0 counts as a tiny positive value."""
    if not _finite(fid) or not _finite(best_fid):
        return None
    best = max(best_fid, 1e-12)
    if fid <= best:
        return 5
    return _clip(5 - math.floor(math.log2(fid / best) + 1e-12))


def anchored_fid_stars(fid: float | None, real_fid: float | None) -> int | None:
    """FID anchored to the real-data row: 5 - floor(log4(fid / real_fid)), clipped to [1, 5]
    (real_fid <= 0 counts as a tiny positive value)."""
    if not _finite(fid) or not _finite(real_fid):
        return None
    floor = max(real_fid, 1e-12)
    if fid <= floor:
        return 5
    return _clip(5 - math.floor(math.log(fid / floor, ANCHOR_BASE) + 1e-12))


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def quality_stars(fid: float | None, best_fid: float | None, precision: float | None,
                  real_fid: float | None = None) -> int | None:
    """Sample quality: mean of the FID rating (the lower of :func:`fid_stars` and, with a real-data
    FID, :func:`anchored_fid_stars`) and the precision band, rounded half up."""
    fid_parts = [s for s in (fid_stars(fid, best_fid), anchored_fid_stars(fid, real_fid)) if s is not None]
    parts = [s for s in (min(fid_parts) if fid_parts else None, band_stars(precision)) if s is not None]
    if not parts:
        return None
    return round_half_up(sum(parts) / len(parts))


def speed_stars(samples_per_s: float | None, best_samples_per_s: float | None) -> int | None:
    """5 - floor(log10(fastest / this)), clipped to [1, 5]."""
    if not _finite(samples_per_s) or not _finite(best_samples_per_s) or samples_per_s <= 0:
        return None
    if samples_per_s >= best_samples_per_s:
        return 5
    return _clip(5 - math.floor(math.log10(best_samples_per_s / samples_per_s) + 1e-12))


def image_coverage_stars(recall: float | None, coverage: float | None) -> int | None:
    """Band of the mean of recall and coverage (either alone when one is missing)."""
    parts = [x for x in (recall, coverage) if _finite(x)]
    if not parts:
        return None
    return band_stars(sum(parts) / len(parts))


def mode_coverage_stars(modes_captured: float | None, num_modes: int | None, reverse_kl: float | None) -> int | None:
    """Fraction of modes captured in bands (all = 5); one star less when reverse KL > 0.5 nats."""
    if not _finite(modes_captured) or not num_modes:
        return None
    f = modes_captured / num_modes
    if f >= 1 - 1e-12:
        stars = 5
    elif f >= 0.75:
        stars = 4
    elif f >= 0.5:
        stars = 3
    elif f >= 0.25:
        stars = 2
    else:
        stars = 1
    if reverse_kl is not None and (math.isinf(reverse_kl) or (_finite(reverse_kl) and reverse_kl > 0.5)):
        stars -= 1
    return _clip(stars)


def star_string(stars: int | None) -> str:
    """'★★★☆☆' for 3, '-' for None."""
    if stars is None:
        return "-"
    return "★" * stars + "☆" * (5 - stars)
