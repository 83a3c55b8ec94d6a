"""Star ratings (1-5) for the measured comparison table, from numbers by fixed rules.

Every rule is a small pure function of measured values so it can be unit-tested on
hand-made numbers, and :data:`RULES` holds the same rule in words for the report. A
rating is ``None`` (shown as "-") when the numbers it needs were not measured.

Relative rules compare a model with the best model *in the same table* (same dataset,
extractor and n), because FID and samples/s have no absolute scale across datasets,
extractors or machines; rules on fractions (precision, recall, coverage, modes) use
absolute bands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

KIND_STARS = {"exact": 5, "bound": 4, "estimate": 3, "none": 1}

RULES: dict[str, str] = {
    "density": (
        "By the likelihood the model provides: exact 5, bound (ELBO/VLB) 4, estimate (AIS, ODE with trace "
        "estimator) 3, none 1; one star less when its bits/dim (NLL in nats on 2-D data) is more than 10% "
        "worse than the best value in this table (never below 2 for a model with a likelihood)."
    ),
    "stability": (
        "Spread of the final quality metric (FID on images, % high-quality samples on 2-D mixtures) across "
        "the seeds that did not diverge, as coefficient of variation std/|mean|: < 5% 5, < 10% 4, < 20% 3, "
        "< 40% 2, otherwise 1; one star less per diverged or failed run (minimum 1). All runs diverged: 1. "
        "Fewer than 2 finished seeds and none diverged: not rated."
    ),
    "quality": (
        "Mean of an FID rating and a precision rating, rounded half up. FID: 5 minus one star per doubling "
        "of FID over the best FID in this table (5 - floor(log2(FID / best FID))), minimum 1. Precision p: "
        "p >= 0.8 5, >= 0.6 4, >= 0.4 3, >= 0.2 2, otherwise 1. With only one of the two, that one."
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


def density_stars(kind: str | None, value: float | None = None, best_value: float | None = None) -> int:
    """Explicit density: stars by likelihood kind, one less when ``value`` (bpd or NLL, lower is better)
    is more than 10% worse than ``best_value`` (the best value in the table).

    ``value``/``best_value`` may be negative (NLL in nats of 2-D data): "10% worse" is
    ``value - best > 0.1 * |best|``.
    """
    kind = kind or "none"
    if kind not in KIND_STARS:
        raise ValueError(f"unknown likelihood kind {kind!r}; expected one of {sorted(KIND_STARS)}")
    stars = KIND_STARS[kind]
    if kind != "none" and _finite(value) and _finite(best_value) and value - best_value > 0.1 * abs(best_value):
        stars = max(2, stars - 1)
    return stars


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """std (ddof=1) / |mean| of finite values; None for fewer than 2; inf when the mean is 0 and std > 0."""
    v = [float(x) for x in values if _finite(x)]
    if len(v) < 2:
        return None
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
    if std == 0:
        return 0.0
    return math.inf if mean == 0 else std / abs(mean)


def stability_stars(values: Sequence[float], n_diverged: int) -> int | None:
    """Training stability from the quality metric of the finished seeds and the diverged-run count."""
    finished = [x for x in values if _finite(x)]
    if not finished:
        return 1 if n_diverged > 0 else None
    cv = coefficient_of_variation(finished)
    if cv is None:
        return _clip(5 - n_diverged) if n_diverged else None
    stars = 1
    for s, hi in ((5, 0.05), (4, 0.10), (3, 0.20), (2, 0.40)):
        if cv < hi:
            stars = s
            break
    return _clip(stars - n_diverged)


def fid_stars(fid: float | None, best_fid: float | None) -> int | None:
    """5 - floor(log2(fid / best_fid)), clipped to [1, 5]; best_fid <= 0 counts as a tiny positive value."""
    if not _finite(fid) or not _finite(best_fid):
        return None
    best = max(best_fid, 1e-12)
    if fid <= best:
        return 5
    return _clip(5 - math.floor(math.log2(fid / best) + 1e-12))


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def quality_stars(fid: float | None, best_fid: float | None, precision: float | None) -> int | None:
    """Sample quality: mean of :func:`fid_stars` and the precision band, rounded half up."""
    parts = [s for s in (fid_stars(fid, best_fid), band_stars(precision)) if s is not None]
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
